/**
 * "A typo in the config made the daemon start with defaults and drive the wrong relay": the built
 * daemon refuses a broken configuration (or key file) with every problem named by its path, exits
 * non-zero, and touches nothing — no store, no socket, no line.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { simPileConfig } from "../../src/daemon/sim-config.js";

const PILED = resolve(fileURLToPath(import.meta.url), "..", "..", "..", "src", "daemon", "piled.js");
const work = mkdtempSync(join(tmpdir(), "piled-cfg-"));
after(() => rmSync(work, { recursive: true, force: true }));

const good = () => simPileConfig({ pileId: "CFG-1", dir: work });

function run(config: unknown, ...extra: string[]) {
  const file = join(work, "piled.json");
  writeFileSync(file, typeof config === "string" ? config : JSON.stringify(config));
  return spawnSync(process.execPath, [PILED, "--config", file, ...extra], {
    encoding: "utf8",
    timeout: 20_000,
  });
}

function assertNothingTouched(): void {
  assert.equal(existsSync(join(work, "state")), false, "no state directory, no database");
  assert.equal(existsSync(join(work, "control.sock")), false, "no control socket");
}

test("every broken field is reported with its path, exit 2, nothing touched", () => {
  const c = good() as Record<string, unknown> & {
    gpio: Record<string, unknown>;
    meter: Record<string, unknown>;
  };
  c.meter.baud = 9601;
  c.meter.model = "sdm999";
  (c.gpio.contactor as Record<string, unknown>).line = -1;
  c.gpio.contactr = { chip: "x", line: 1 };
  c.clockSkewMs = "lots";
  const r = run(c);
  assert.equal(r.status, 2, r.stderr);
  for (const path of ["meter.baud", "meter.model", "gpio.contactor.line", "gpio.contactr", "clockSkewMs"]) {
    assert.match(
      r.stderr,
      new RegExp(`^\\s+${path.replace(".", "\\.")}: `, "m"),
      `${path} named in:\n${r.stderr}`,
    );
  }
  assertNothingTouched();
});

test("a file that is not JSON, and a missing file: exit 2, nothing touched", () => {
  const r = run("{ pileId: 'x', // comment\n}");
  assert.equal(r.status, 2);
  assert.match(r.stderr, /not valid JSON/);
  const missing = spawnSync(process.execPath, [PILED, "--config", join(work, "nope.json")], {
    encoding: "utf8",
  });
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /NOT_FOUND/);
  assertNothingTouched();
});

test("--check-config validates without running", () => {
  const file = join(work, "check.json");
  writeFileSync(file, JSON.stringify(good()));
  const r = spawnSync(process.execPath, [PILED, "--check-config", file], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /ok/);
  assertNothingTouched();
});

test("--check-config reads the console secret hash file: a malformed or missing one is refused by name", () => {
  const file = join(work, "check-console.json");
  const hashFile = join(work, "console.hash");
  const c = { ...good(), console: { enabled: true, port: "/dev/null", secretHashFile: hashFile } };
  writeFileSync(file, JSON.stringify(c));
  writeFileSync(hashFile, "not-a-hash\n", { mode: 0o600 });
  const bad = spawnSync(process.execPath, [PILED, "--check-config", file], { encoding: "utf8" });
  assert.equal(bad.status, 2, bad.stdout);
  assert.match(bad.stderr, /console secret hash file .*console\.hash refused/);
  rmSync(hashFile);
  const missing = spawnSync(process.execPath, [PILED, "--check-config", file], { encoding: "utf8" });
  assert.equal(missing.status, 2, missing.stdout);
  assert.match(missing.stderr, /console\.hash/);
  assertNothingTouched();
});

test("--check-config reads the OCPP files: a password file readable by others is refused by name", () => {
  const file = join(work, "check-ocpp.json");
  const pw = join(work, "ocpp-password");
  const c = {
    ...good(),
    ocpp: {
      enabled: true,
      url: "ws://127.0.0.1:9/",
      identity: "cfg-1",
      securityProfile: 1,
      passwordFile: pw,
    },
  };
  writeFileSync(file, JSON.stringify(c));
  writeFileSync(pw, "a-password-of-the-station\n", { mode: 0o644 });
  chmodSync(pw, 0o644);
  const loose = spawnSync(process.execPath, [PILED, "--check-config", file], { encoding: "utf8" });
  assert.equal(loose.status, 2, loose.stdout);
  assert.match(loose.stderr, /ocpp-password/);
  assert.doesNotMatch(loose.stderr + loose.stdout, /a-password-of-the-station/);
  chmodSync(pw, 0o600);
  const fine = spawnSync(process.execPath, [PILED, "--check-config", file], { encoding: "utf8" });
  assert.equal(fine.status, 0, fine.stderr);
  rmSync(pw);
  assertNothingTouched();
});

test("a key file readable by others is refused by name: exit 2, no line opened, no socket", () => {
  mkdirSync(join(work, "keys"), { recursive: true });
  const key = join(work, "keys", "key-3.json");
  writeFileSync(key, JSON.stringify({ keyId: 3, key: "ab".repeat(32) }));
  chmodSync(key, 0o644);
  const r = run(good());
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /key-3\.json/);
  assert.match(r.stderr, /0644/);
  assert.doesNotMatch(r.stderr + r.stdout, /abababab/, "the key never reaches any output");
  assert.equal(existsSync(join(work, "control.sock")), false);
  rmSync(key);
  assertNothingTouched();
});

test("field report: a malformed console hash file, or one asking for 4 GiB per login, refuses the start by name: exit 2, nothing touched", () => {
  mkdirSync(join(work, "keys"), { recursive: true });
  const hashFile = join(work, "console.hash");
  const salt = "A".repeat(22);
  const hash = "B".repeat(43);
  for (const [text, reason] of [
    ["not a hash at all\n", /not a scrypt\$N\$r\$p\$salt\$hash string/],
    [`scrypt$1048576$32$1$${salt}==$${hash}=\n`, /scrypt N=1048576 is above 131072/],
    [`scrypt$131072$32$1$${salt}==$${hash}=\n`, /scrypt r=32 is outside 1\.\.16/],
    [`scrypt$16384$8$16$${salt}==$${hash}=\n`, /scrypt p=16 is outside 1\.\.4/],
  ] as const) {
    writeFileSync(hashFile, text, { mode: 0o600 });
    const c = {
      ...good(),
      console: { enabled: true, port: join(work, "console.pty"), secretHashFile: hashFile },
    };
    const r = run(c);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /console secret hash file .*console\.hash refused: /);
    assert.match(r.stderr, reason);
    assertNothingTouched();
  }
});

test("field report: duplicate keys and a byte order mark are refused with a clear line: exit 2, nothing touched", () => {
  const dup = run(`{"pileId":"CFG-1","pileId":"CFG-2",${JSON.stringify(good()).slice(1)}`);
  assert.equal(dup.status, 2, dup.stderr);
  assert.match(dup.stderr, /^\s+pileId: given twice/m);
  const bom = run(`\uFEFF${JSON.stringify(good())}`);
  assert.equal(bom.status, 2, bom.stderr);
  assert.match(bom.stderr, /byte order mark \(BOM\): save it as UTF-8 without BOM/);
  assertNothingTouched();
});

test("field report: a state directory the daemon's user cannot write is named, not SQLITE_CANTOPEN", (t) => {
  if (process.geteuid?.() !== 0) {
    t.skip("needs root to start the daemon as another user (nobody) over a root-owned state directory");
    return;
  }
  // The daemon runs as nobody; its state directory belongs to root (0755), as after a botched install.
  const box = mkdtempSync(join(tmpdir(), "piled-ro-"));
  try {
    chmodSync(box, 0o755);
    mkdirSync(join(box, "keys"), { mode: 0o700 });
    chownSync(join(box, "keys"), 65534, 65534);
    mkdirSync(join(box, "state"), { mode: 0o755 });
    const file = join(box, "piled.json");
    writeFileSync(file, JSON.stringify(simPileConfig({ pileId: "CFG-RO", dir: box })), { mode: 0o644 });
    // The checkout may sit where nobody cannot reach it (under /root): the built tree is bound
    // onto a folder nobody can enter, in a private mount namespace, and run from there.
    const repo = resolve(PILED, "..", "..", "..", "..");
    const code = mkdtempSync(join(tmpdir(), "piled-code-"));
    chmodSync(code, 0o755);
    const script =
      'mount --bind "$0" "$1" && exec setpriv --reuid=65534 --regid=65534 --clear-groups "$2" "$1/dist/src/daemon/piled.js" --config "$3"';
    const r = spawnSync(
      "unshare",
      ["-m", "--propagation", "private", "sh", "-c", script, repo, code, process.execPath, file],
      { encoding: "utf8", timeout: 20_000 },
    );
    rmSync(code, { recursive: true, force: true }); // the bind ended with its namespace
    assert.equal(r.error, undefined, "needs unshare and setpriv (util-linux, scripts/system-deps.txt)");
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /state directory .*state is not writable by this user \(EACCES\)/);
    assert.doesNotMatch(r.stderr, /SQLITE_CANTOPEN/);
    assert.equal(existsSync(join(box, "control.sock")), false, "no control socket");
  } finally {
    rmSync(box, { recursive: true, force: true });
  }
});
