/** The `ocpp` config section and the password file's checks. */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { loadConfig, validateConfig } from "../../src/daemon/config.js";
import { simPileConfig } from "../../src/daemon/sim-config.js";
import { OCPP_DEFAULTS, OcppConfigSchema } from "../../src/ocpp/config.js";
import { connectErrorText, linkOptions, readClientKey, readPassword } from "../../src/ocpp/link.js";

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

const p3 = {
  enabled: true,
  url: "wss://csms.example/ocpp",
  identity: "pile-3",
  securityProfile: 3,
  certFile: "/etc/piled/station.pem",
  keyFile: "/etc/piled/station.key",
};

const issuesOf = (v: unknown) => {
  const r = OcppConfigSchema.safeParse(v);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
};

test("security profile 3 needs wss://, certFile and keyFile, and takes no password file", () => {
  assert.deepEqual(issuesOf(p3), []);
  assert.equal(OcppConfigSchema.parse(p3).passwordFile, undefined);
  assert.deepEqual(issuesOf({ ...p3, url: "ws://csms.example/ocpp" }), [
    "url: security profile 3 needs wss://",
  ]);
  assert.deepEqual(issuesOf({ ...p3, certFile: undefined, keyFile: undefined }), [
    "certFile: required (security profile 3)",
    "keyFile: required (security profile 3)",
  ]);
  const withPassword = issuesOf({ ...p3, passwordFile: "/x" });
  assert.equal(withPassword.length, 1);
  assert.match(withPassword[0]!, /^passwordFile: not used by security profile 3/);
  assert.deepEqual(issuesOf({ ...p3, securityProfile: 4 }).length, 1);
  // A client certificate is only for profile 3; profile 2 still wants its password file.
  assert.deepEqual(issuesOf({ ...p3, securityProfile: 2 }), [
    "passwordFile: required (security profile 1/2)",
    "certFile: only with security profile 3",
    "keyFile: only with security profile 3",
  ]);
});

test("the daemon's config: a profile 3 section without its key is a typed refusal at ocpp.keyFile; relative paths resolved", () => {
  const base = simPileConfig({ pileId: "P3-CFG", dir, blePath: "/dev/null", meterPollMs: 200 });
  const bad = validateConfig({ ...base, ocpp: { ...p3, keyFile: undefined } }, "piled.json");
  assert.ok(!bad.ok);
  assert.equal(bad.error.code, "INVALID");
  assert.deepEqual(bad.error.issues, [{ path: "ocpp.keyFile", message: "required (security profile 3)" }]);
  const cfgPath = join(dir, "piled-p3.json");
  writeFileSync(cfgPath, JSON.stringify({ ...base, ocpp: { ...p3, certFile: "s.pem", keyFile: "s.key" } }));
  const loaded = loadConfig(cfgPath);
  assert.ok(loaded.ok, loaded.ok ? "" : loaded.error.message);
  assert.equal(loaded.value.ocpp.certFile, join(dir, "s.pem"));
  assert.equal(loaded.value.ocpp.keyFile, join(dir, "s.key"));
});

test("profile 3 link options: the key file has the password file's checks, cert and key must match, no password sent", () => {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"];
  for (const n of ["a", "b"])
    execFileSync(
      "openssl",
      ["req", "-x509", ...ec, "-subj", `/CN=${n}`, "-keyout", `${n}.key`, "-out", `${n}.pem`],
      {
        cwd: dir,
        stdio: "pipe",
      },
    );
  const [certA, keyA, keyB] = [join(dir, "a.pem"), join(dir, "a.key"), join(dir, "b.key")];
  chmodSync(keyA, 0o600);
  chmodSync(keyB, 0o600);
  const body = readFileSync(keyA, "utf8").split("\n")[1]!;
  const cfg = (keyFile: string) => OcppConfigSchema.parse({ ...p3, certFile: certA, keyFile });
  const good = linkOptions(cfg(keyA));
  assert.ok(good.ok);
  assert.equal(good.value.password, null, "no Basic auth in profile 3");
  assert.match(good.value.cert ?? "", /BEGIN CERTIFICATE/);
  assert.ok(good.value.key?.includes(body));
  const other = linkOptions(cfg(keyB));
  assert.ok(!other.ok);
  assert.equal(
    other.error.message,
    `OCPP client key file ${keyB} is not the key of the certificate in ${certA}`,
  );
  chmodSync(keyA, 0o644);
  const loose = readClientKey(keyA);
  assert.ok(!loose.ok);
  assert.equal(loose.error.code, "MODE");
  const lo = linkOptions(cfg(keyA));
  assert.ok(!lo.ok);
  assert.match(lo.error.message, new RegExp(`^OCPP client key file ${keyA} has mode 0644`));
  assert.ok(!lo.error.message.includes(body), "the key's content is never in the error");
  const missingCert = linkOptions(
    OcppConfigSchema.parse({ ...p3, certFile: join(dir, "none.pem"), keyFile: keyB }),
  );
  assert.ok(!missingCert.ok);
  assert.match(missingCert.error.message, /OCPP client certificate file .*none\.pem cannot be read/);
});

test("a CSMS's TLS alerts about the client certificate are said in words", () => {
  const tlsErr = (code: string) => Object.assign(new Error("ssl alert"), { code });
  assert.match(
    connectErrorText(tlsErr("ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED")),
    /^TLS: the CSMS requires a client certificate \(security profile 3\) and the station sent none/,
  );
  assert.match(
    connectErrorText(tlsErr("ERR_SSL_TLSV1_ALERT_UNKNOWN_CA")),
    /^TLS: the CSMS refused the station's client certificate \(ERR_SSL_TLSV1_ALERT_UNKNOWN_CA\)/,
  );
  const hangUp = Object.assign(new Error("socket hang up"), { code: "ECONNRESET" });
  assert.equal(connectErrorText(hangUp, 2), "Error: socket hang up");
  assert.match(connectErrorText(hangUp, 3), /may have refused the station's client certificate/);
});
