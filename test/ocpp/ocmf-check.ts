/**
 * The independent OCMF checkers as the tiers use them: pyocmf (PyPI, in .venv-peers, through
 * test/peers/ocpp/ocmf_verify.py) and `openssl dgst -sha256 -verify` on the payload bytes.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { VENV_PYTHON } from "../peers/ocpp/csms-proc.js";

const VERIFY = fileURLToPath(new URL("../../../test/peers/ocpp/ocmf_verify.py", import.meta.url));

/** pyocmf's verdict on each record: {valid, pagination} or {error}. */
export function pyocmf(records: string[], publicKeyHex: string): Record<string, unknown>[] {
  const input = records.map((record) => JSON.stringify({ record, publicKey: publicKeyHex })).join("\n");
  const r = spawnSync(VENV_PYTHON, [VERIFY], { input: `${input}\n`, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** openssl's verdict on the record's signature over its payload bytes (files in a folder of `dir`). */
export function opensslVerify(dir: string, record: string, publicKeyHex: string): boolean {
  const [, payload, sig] = record.split("|");
  const sd = (JSON.parse(sig ?? "{}") as { SD: string }).SD;
  const d = mkdtempSync(join(dir, "openssl-"));
  writeFileSync(join(d, "payload"), payload ?? "");
  writeFileSync(join(d, "sd.der"), Buffer.from(sd, "hex"));
  writeFileSync(join(d, "pub.der"), Buffer.from(publicKeyHex, "hex"));
  const pem = join(d, "pub.pem");
  const conv = spawnSync("openssl", [
    "pkey",
    "-pubin",
    "-inform",
    "DER",
    "-in",
    join(d, "pub.der"),
    "-out",
    pem,
  ]);
  assert.equal(conv.status, 0, conv.stderr?.toString());
  const r = spawnSync("openssl", [
    "dgst",
    "-sha256",
    "-verify",
    pem,
    "-signature",
    join(d, "sd.der"),
    join(d, "payload"),
  ]);
  assert.ok(
    r.status === 0 || r.status === 1,
    `openssl failed to run: ${r.stderr?.toString()} ${r.error?.message}`,
  );
  return r.status === 0;
}
