/** The `ocpp` config section and the password file's checks. */
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { OCPP_DEFAULTS, OcppConfigSchema } from "../../src/ocpp/config.js";
import { linkOptions, readPassword } from "../../src/ocpp/link.js";

const dir = mkdtempSync(join(tmpdir(), "piled-ocpp-cfg-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("off by default; enabled needs url, identity and a password file", () => {
  assert.equal(OCPP_DEFAULTS.enabled, false);
  const r = OcppConfigSchema.safeParse({ enabled: true });
  assert.ok(!r.success);
  const paths = r.error.issues.map((i) => i.path.join("."));
  assert.deepEqual(paths.sort(), ["identity", "passwordFile", "url"]);
});

test("security profile 2 needs wss://; unknown keys and bad identities are refused", () => {
  const base = { enabled: true, identity: "pile-1", passwordFile: "/x" };
  assert.ok(!OcppConfigSchema.safeParse({ ...base, url: "ws://csms.example/ocpp" }).success);
  assert.ok(OcppConfigSchema.safeParse({ ...base, url: "wss://csms.example/ocpp" }).success);
  assert.ok(
    OcppConfigSchema.safeParse({ ...base, url: "ws://csms.example/ocpp", securityProfile: 1 }).success,
  );
  assert.ok(!OcppConfigSchema.safeParse({ ...base, url: "http://csms.example", securityProfile: 1 }).success);
  assert.ok(!OcppConfigSchema.safeParse({ ...base, url: "wss://c", identity: "a/b" }).success);
  assert.ok(!OcppConfigSchema.safeParse({ ...base, url: "wss://c", pasword: "typo" }).success);
});

test("a password file looser than 0600 is refused, and its content never appears in the error", () => {
  const p = join(dir, "pw");
  writeFileSync(p, "hunter2-secret\n", { mode: 0o600 });
  const ok = readPassword(p);
  assert.ok(ok.ok);
  assert.equal(ok.value, "hunter2-secret");
  chmodSync(p, 0o640);
  const bad = readPassword(p);
  assert.ok(!bad.ok);
  assert.equal(bad.error.code, "MODE");
  const cfg = OcppConfigSchema.parse({
    enabled: true,
    url: "wss://c",
    identity: "p",
    passwordFile: p,
  });
  const lo = linkOptions(cfg);
  assert.ok(!lo.ok);
  assert.ok(!lo.error.message.includes("hunter2"));
});
