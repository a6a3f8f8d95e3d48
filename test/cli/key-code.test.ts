import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { main } from "../../src/cli/main.js";
import {
  deriveVerifySecret,
  fromBase64Url,
  fromHex,
  KeyRing,
  openCode,
  toHex,
} from "../../src/protocol/index.js";
import { nodeSuite } from "../../src/protocol/node-suite.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const dir = mkdtempSync(join(tmpdir(), "piled-cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(argv, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

const json = (s: string) => {
  const lines = s.trim().split("\n");
  assert.equal(lines.length, 1, "one JSON line");
  return JSON.parse(lines[0]!) as Record<string, unknown>;
};

const K1 = join(dir, "k1.json");
const K2 = join(dir, "k2.json");
const NOW = 1_767_225_600_000;

test("key new writes a 0600 key file and prints no key", async () => {
  const r = await cli("key", "new", "--key-id", "7", "--out", K1);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(json(r.out), { keyId: 7, file: K1 });
  assert.equal(statSync(K1).mode & 0o777, 0o600);
  const f = JSON.parse(readFileSync(K1, "utf8")) as { keyId: number; key: string };
  assert.equal(f.keyId, 7);
  assert.match(f.key, /^[0-9a-f]{64}$/);
  assert.ok(!r.out.includes(f.key) && !r.err.includes(f.key));
  assert.equal((await cli("key", "new", "--key-id", "4294967295", "--out", K2)).code, 0);
});

test("key new refuses to overwrite without --force, and bad key ids", async () => {
  const again = await cli("key", "new", "--key-id", "8", "--out", K1);
  assert.equal(again.code, 2);
  assert.match(again.err, /already exists.*--force/);
  assert.equal(JSON.parse(readFileSync(K1, "utf8")).keyId, 7);
  for (const id of ["-1", "4294967296", "x", "1.5"]) {
    const r = await cli("key", "new", "--key-id", id, "--out", join(dir, "never.json"));
    assert.equal(r.code, 2, id);
  }
  assert.equal((await cli("key", "new", "--out", join(dir, "never.json"))).code, 2);
  assert.equal((await cli("key", "old")).code, 2);
  const forced = join(dir, "forced.json");
  assert.equal((await cli("key", "new", "--key-id", "1", "--out", forced)).code, 0);
  assert.equal((await cli("key", "new", "--key-id", "2", "--out", forced, "--force")).code, 0);
  assert.equal(JSON.parse(readFileSync(forced, "utf8")).keyId, 2);
});

test("code issue prints one JSON line a pile opens, with V derived from the key", async () => {
  const r = await cli(
    "code",
    "issue",
    "--key",
    K1,
    "--device",
    "LSVAU2180N2183294",
    "--pile",
    "PILE-SZ-0042",
    "--valid-for",
    "600",
    "--issued-at",
    String(NOW),
    "--carrier",
    "mobile",
    "--max-energy-wh",
    "30000",
    "--max-duration-s",
    "3600",
  );
  assert.equal(r.code, 0, r.err);
  const o = json(r.out);
  assert.equal(o.keyId, 7);
  assert.equal(o.issuedAt, String(NOW));
  assert.equal(o.validFor, 600);
  assert.equal(o.carrier, "mobile");
  assert.equal(o.maxEnergyWh, 30000);
  assert.equal(o.maxDurationS, 3600);
  assert.equal(o.deviceId, "LSVAU2180N2183294");
  assert.equal(o.pileId, "PILE-SZ-0042");
  const key = fromHex((JSON.parse(readFileSync(K1, "utf8")) as { key: string }).key)!;
  const ring = new KeyRing(nodeSuite);
  ring.add(7, key);
  const opened = openCode(nodeSuite, ring, fromBase64Url(o.code as string)!);
  assert.ok(opened.ok);
  assert.equal(toHex(opened.value.codeId), o.codeId);
  assert.equal(o.verifySecret, toHex(deriveVerifySecret(nodeSuite, key, opened.value.codeId)));
  assert.ok(!r.out.includes(toHex(key)), "the key is never printed");
});

test("code issue: usage errors exit 2", async () => {
  const base = ["code", "issue", "--key", K1, "--device", "d", "--pile", "p"];
  for (const extra of [
    ["--valid-for", "0"],
    ["--valid-for", "2678401"],
    ["--carrier", "drone"],
    ["--issued-at", "18446744073709551616"],
    ["--issued-at", "-5"],
    ["--max-energy-wh", "4294967296"],
    ["--bogus"],
  ]) {
    const r = await cli(...base, ...extra);
    assert.equal(r.code, 2, extra.join(" "));
    assert.match(r.err, /^pilectl: /);
  }
  const long = await cli("code", "issue", "--key", K1, "--device", "x".repeat(65), "--pile", "p");
  assert.equal(long.code, 2);
  assert.match(long.err, /deviceId/);
  assert.equal((await cli("code", "issue", "--key", K1, "--pile", "p")).code, 2);
});

async function issued(pile = "PILE-SZ-0042", keyFile = K1, at = NOW, validFor = 600): Promise<string> {
  const r = await cli(
    "code",
    "issue",
    "--key",
    keyFile,
    "--device",
    "dev-1",
    "--pile",
    pile,
    "--issued-at",
    String(at),
    "--valid-for",
    String(validFor),
  );
  assert.equal(r.code, 0, r.err);
  return json(r.out).code as string;
}

test("code check: OK with fields, and every pure reason in §2 order", async () => {
  const code = await issued();
  const ok = await cli(
    "code",
    "check",
    "--key",
    K2,
    "--key",
    K1,
    "--pile",
    "PILE-SZ-0042",
    "--now",
    String(NOW + 1000),
    code,
  );
  assert.equal(ok.code, 0, ok.err);
  const o = json(ok.out);
  assert.equal(o.reason, "OK");
  assert.equal(o.keyId, 7);
  assert.equal(o.issuedAt, String(NOW));
  assert.equal(o.validFor, 600);
  assert.equal(o.maxEnergyWh, 0);
  assert.equal(o.maxDurationS, 0);
  assert.equal(o.carrier, "vehicle");
  assert.equal(o.deviceId, "dev-1");
  assert.equal(o.pileId, "PILE-SZ-0042");
  assert.match(o.codeId as string, /^[0-9a-f]{32}$/);
  assert.ok(!("verifySecret" in o));

  const cases: [string[], string][] = [
    [["--pile", "PILE-SZ-0043", "--now", String(NOW)], "WRONG_PILE"],
    [["--pile", "PILE-SZ-0042", "--now", String(NOW - 120_001)], "NOT_YET_VALID"],
    [["--pile", "PILE-SZ-0042", "--now", String(NOW - 120_000)], "OK"],
    [["--pile", "PILE-SZ-0042", "--now", String(NOW + 600_000 + 120_000)], "OK"],
    [["--pile", "PILE-SZ-0042", "--now", String(NOW + 600_000 + 120_001)], "EXPIRED"],
    [["--pile", "PILE-SZ-0042", "--now", String(NOW + 600_001), "--skew-ms", "0"], "EXPIRED"],
  ];
  for (const [opts, reason] of cases) {
    const r = await cli("code", "check", "--key", K1, ...opts, code);
    assert.equal(json(r.out).reason, reason, opts.join(" "));
    assert.equal(r.code, reason === "OK" ? 0 : 1);
  }
  const unknown = await cli("code", "check", "--key", K2, "--pile", "PILE-SZ-0042", code);
  assert.deepEqual(json(unknown.out), { reason: "UNKNOWN_KEY" });
  assert.equal(unknown.code, 1);
  const bytes = fromBase64Url(code)!;
  bytes[40]! ^= 1;
  const { toBase64Url } = await import("../../src/protocol/bytes.js");
  for (const bad of [toBase64Url(bytes), "not*base64", "AQ", code.slice(0, -1)]) {
    const r = await cli("code", "check", "--key", K1, "--pile", "PILE-SZ-0042", bad);
    assert.deepEqual(json(r.out), { reason: "BAD_CODE" }, bad);
    assert.equal(r.code, 1);
  }
});

test("code check: usage errors exit 2", async () => {
  const code = await issued();
  assert.equal((await cli("code", "check", "--pile", "p", code)).code, 2);
  assert.equal((await cli("code", "check", "--key", K1, code)).code, 2);
  assert.equal((await cli("code", "check", "--key", K1, "--pile", "p")).code, 2);
  assert.equal((await cli("code", "check", "--key", K1, "--pile", "p", code, code)).code, 2);
  assert.equal((await cli("code", "check", "--key", K1, "--key", K1, "--pile", "p", code)).code, 2);
  assert.equal((await cli("code", "check", "--key", K1, "--pile", "p", "--now", "soon", code)).code, 2);
  assert.equal((await cli("code", "frobnicate")).code, 2);
});

test("loose-permission, malformed and missing key files are refused with a clear message and exit 2", async () => {
  const loose = join(dir, "loose.json");
  writeFileSync(loose, readFileSync(K1));
  chmodSync(loose, 0o644);
  const malformed = join(dir, "malformed.json");
  writeFileSync(malformed, JSON.stringify({ keyId: 7, key: "abcd" }), { mode: 0o600 });
  const badId = join(dir, "bad-id.json");
  writeFileSync(badId, JSON.stringify({ keyId: 2 ** 32, key: "00".repeat(32) }), { mode: 0o600 });
  const cases: [string, RegExp][] = [
    [loose, /loose\.json has mode 0644: group\/other may access it/],
    [malformed, /malformed\.json: key must be 64 hex digits/],
    [badId, /bad-id\.json: keyId must be a whole number/],
    [join(dir, "absent.json"), /absent\.json does not exist/],
  ];
  for (const [file, message] of cases) {
    const i = await cli("code", "issue", "--key", file, "--device", "d", "--pile", "p");
    assert.equal(i.code, 2);
    assert.match(i.err, message);
    assert.equal(i.out, "");
    const c = await cli("code", "check", "--key", file, "--pile", "p", "AAAA");
    assert.equal(c.code, 2);
    assert.match(c.err, message);
  }
});

test("the built pilectl runs as a process: issue, then check", async () => {
  const bin = join(root, "dist", "src", "cli", "pilectl.js");
  const run = promisify(execFile);
  const i = await run(process.execPath, [bin, "code", "issue", "--key", K1, "--device", "d", "--pile", "P1"]);
  const code = (JSON.parse(i.stdout) as { code: string }).code;
  const c = await run(process.execPath, [bin, "code", "check", "--key", K1, "--pile", "P1", code]);
  assert.equal((JSON.parse(c.stdout) as { reason: string }).reason, "OK");
  const bad = await run(process.execPath, [bin, "code", "check", "--key", K1, "--pile", "P2", code]).then(
    () => assert.fail("exit 0 for a wrong pile"),
    (e: { code: number; stdout: string }) => e,
  );
  assert.equal(bad.code, 1);
  assert.equal((JSON.parse(bad.stdout) as { reason: string }).reason, "WRONG_PILE");
});

test("field report: pilectl constructor / __proto__ / toString is a usage error, not an internal error", async () => {
  for (const name of ["constructor", "__proto__", "toString", "hasOwnProperty", "valueOf"]) {
    const r = await cli(name);
    assert.equal(r.code, 2, `${name}: ${r.err}`);
    assert.match(r.err, new RegExp(`unknown command '${name}'`));
    assert.doesNotMatch(r.err, /at .*\.js:\d+/, "no stack trace");
  }
});
