import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { type ConfigInput, configSchema, loadConfig, validateConfig } from "../../src/daemon/config.js";
import { hashProblem, parseHash } from "../../src/daemon/console/secret.js";
import { repoRoot } from "./fake-pile-control.js";

const minimal = (): ConfigInput => ({
  pileId: "P-1",
  gpio: {
    contactor: { chip: "c", line: 1 },
    lock: { chip: "c", line: 2 },
    contactorFeedback: { chip: "c", line: 3 },
    lockFeedback: { chip: "c", line: 4 },
  },
  meter: { model: "sdm630" },
});

function issuesOf(value: unknown): Map<string, string> {
  const r = validateConfig(value);
  assert.equal(r.ok, false);
  if (r.ok) throw new Error("unreachable");
  assert.equal(r.error.code, "INVALID");
  return new Map(r.error.issues.map((i) => [i.path, i.message]));
}

test("a minimal config gets every default", () => {
  const r = validateConfig(minimal());
  assert.ok(r.ok);
  const c = r.value;
  assert.equal(c.gpio.driver, "sysfs");
  assert.equal(c.gpio.contactor.activeLow, false);
  assert.equal(c.meter.baud, 9600);
  assert.equal(c.meter.unit, 1);
  assert.equal(c.lockSafeState, "released");
  assert.equal(c.console.enabled, false);
  assert.equal(c.controlSocket.mode, "0660");
  assert.equal(c.deadlines.exchangeTimeoutMs, 10_000);
  assert.equal(c.logLevel, "info");
  // Defaults given inline agree with the schema's own defaults of those objects.
  assert.deepEqual(c.deadlines, configSchema.shape.deadlines.unwrap().parse({}));
  assert.deepEqual(c.console, configSchema.shape.console.unwrap().parse({}));
  assert.deepEqual(c.controlSocket, configSchema.shape.controlSocket.unwrap().parse({}));
});

test("every broken field is reported at once, each with its path", () => {
  const bad = {
    ...minimal(),
    pileId: "x".repeat(65),
    clockSkewMs: -1,
    gpio: {
      driver: "wiringpi",
      contactor: { chip: "c", line: 1024 },
      lock: { chip: "", line: 2 },
      contactorFeedback: { chip: "c", line: 1.5 },
      lockFeedback: { chip: "c", line: 4, activeLow: "yes" },
    },
    lockSafeState: "open",
    meter: { model: "sdm999", unit: 248, baud: 9601, parity: "mark", stopBits: 3, timeoutMs: 0 },
    ble: { controller: { kind: "usb" } },
    console: { enabled: true, lockoutAfter: 0 },
    controlSocket: { mode: "rw-rw----" },
    logLevel: "loud",
  };
  const m = issuesOf(bad);
  const expected = [
    "pileId",
    "clockSkewMs",
    "gpio.driver",
    "gpio.contactor.line",
    "gpio.lock.chip",
    "gpio.contactorFeedback.line",
    "gpio.lockFeedback.activeLow",
    "lockSafeState",
    "meter.model",
    "meter.unit",
    "meter.baud",
    "meter.parity",
    "meter.stopBits",
    "meter.timeoutMs",
    "ble.controller.kind",
    "console.lockoutAfter",
    "controlSocket.mode",
    "logLevel",
  ];
  for (const p of expected) assert.ok(m.has(p), `no issue at ${p}; got ${[...m.keys()].join(", ")}`);
  assert.match(m.get("meter.baud")!, /^must be one of 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200$/);
  assert.match(m.get("gpio.driver")!, /must be one of "sysfs", "sim"/);
  assert.match(m.get("pileId")!, /1\.\.64 UTF-8 bytes/);
});

test("pileId is measured in UTF-8 bytes, not characters", () => {
  assert.ok(validateConfig({ ...minimal(), pileId: "é".repeat(32) }).ok); // 64 bytes
  assert.ok(issuesOf({ ...minimal(), pileId: `${"é".repeat(32)}a` }).has("pileId")); // 65 bytes
  assert.ok(issuesOf({ ...minimal(), pileId: "" }).has("pileId"));
});

test("unknown keys are rejected at every level, each named", () => {
  const m = issuesOf({
    ...minimal(),
    contactr: 1,
    meter: { model: "sdm630", baudrate: 9600 },
    gpio: { ...minimal().gpio, lock: { chip: "c", line: 2, activelow: true } },
  });
  assert.equal(m.get("contactr"), "unknown key");
  assert.equal(m.get("meter.baudrate"), "unknown key");
  assert.equal(m.get("gpio.lock.activelow"), "unknown key");
});

test("missing required fields are reported", () => {
  const m = issuesOf({ pileId: "P" });
  assert.ok(m.has("gpio"));
  assert.ok(m.has("meter"));
});

test("console: an enabled console needs a hash; a secret in clear is not a hash", () => {
  assert.ok(issuesOf({ ...minimal(), console: { enabled: true } }).has("console.secretHashFile"));
  assert.ok(
    issuesOf({ ...minimal(), console: { enabled: true, secretHash: "hunter2" } }).has("console.secretHash"),
  );
  const hash = `scrypt$16384$8$1$${"A".repeat(22)}==$${"B".repeat(43)}=`;
  assert.ok(validateConfig({ ...minimal(), console: { enabled: true, secretHash: hash } }).ok);
  assert.ok(
    issuesOf({ ...minimal(), console: { enabled: true, secretHash: hash, secretHashFile: "/x" } }).has(
      "console.secretHash",
    ),
  );
});

test("ble controller: hci or uart, each with its own fields", () => {
  assert.ok(
    validateConfig({ ...minimal(), ble: { controller: { kind: "uart", path: "/dev/piled-ble" } } }).ok,
  );
  assert.ok(issuesOf({ ...minimal(), ble: { controller: { kind: "uart" } } }).has("ble.controller.path"));
  assert.ok(
    issuesOf({ ...minimal(), ble: { controller: { kind: "hci", device: 0, path: "/x" } } }).has(
      "ble.controller.path",
    ),
  );
});

test("loadConfig: missing file, not JSON, comments, invalid; each with its code and nothing written", () => {
  const dir = mkdtempSync(join(tmpdir(), "piled-config-"));
  try {
    const nf = loadConfig(join(dir, "absent.json"));
    assert.ok(!nf.ok && nf.error.code === "NOT_FOUND");

    writeFileSync(join(dir, "garbage.json"), "\u0000\u00ff not json");
    const g = loadConfig(join(dir, "garbage.json"));
    assert.ok(!g.ok && g.error.code === "PARSE");

    writeFileSync(join(dir, "comment.json"), `// pile\n${JSON.stringify(minimal())}`);
    const c = loadConfig(join(dir, "comment.json"));
    assert.ok(!c.ok && c.error.code === "PARSE");
    assert.match(c.error.issues[0]!.message, /comments are not allowed/);

    writeFileSync(join(dir, "invalid.json"), JSON.stringify({ ...minimal(), meter: { model: "x" } }));
    const i = loadConfig(join(dir, "invalid.json"));
    assert.ok(!i.ok && i.error.code === "INVALID");
    assert.equal(i.error.issues[0]!.path, "meter.model");
    assert.match(i.error.message, /meter\.model: must be one of/);

    assert.deepEqual(readdirSync(dir).sort(), ["comment.json", "garbage.json", "invalid.json"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("relative paths are taken relative to the config file's folder", () => {
  const dir = mkdtempSync(join(tmpdir(), "piled-config-"));
  try {
    writeFileSync(
      join(dir, "c.json"),
      JSON.stringify({ ...minimal(), stateDir: "state", controlSocket: { path: "../ctl.sock" } }),
    );
    const r = loadConfig(join(dir, "c.json"));
    assert.ok(r.ok);
    assert.equal(r.value.stateDir, join(dir, "state"));
    assert.equal(r.value.controlSocket.path, join(dir, "..", "ctl.sock"));
    assert.equal(r.value.keyDir, "/etc/piled/keys");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the shipped example and simulator configs are valid", async () => {
  const root = await repoRoot(import.meta.url);
  for (const f of ["config/piled.example.json", "config/sim.json"]) {
    const r = loadConfig(join(root, f));
    assert.ok(r.ok, `${f}: ${r.ok ? "" : r.error.message}`);
    // The file is the plain JSON the docs promise.
    JSON.parse(readFileSync(join(root, f), "utf8"));
  }
});

test("field report: loadConfig names every key given twice by its path", () => {
  const dir = mkdtempSync(join(tmpdir(), "piled-config-"));
  try {
    const text = JSON.stringify(minimal()).replace('"model":"sdm630"', '"model":"sdm630","model":"sdm120"');
    writeFileSync(join(dir, "dup.json"), `{"logLevel":"info","logLevel":"debug",${text.slice(1)}`);
    const r = loadConfig(join(dir, "dup.json"));
    assert.ok(!r.ok);
    assert.equal(r.error.code, "PARSE");
    assert.deepEqual(
      r.error.issues.map((i) => i.path),
      ["logLevel", "meter.model"],
    );
    assert.match(r.error.message, /meter\.model: given twice/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("field report: a config over 64 KiB or with a BOM is refused with a clear message, not read whole", () => {
  const dir = mkdtempSync(join(tmpdir(), "piled-config-"));
  try {
    writeFileSync(join(dir, "big.json"), `${JSON.stringify(minimal())}${" ".repeat(100 * 1024)}`);
    const big = loadConfig(join(dir, "big.json"));
    assert.ok(!big.ok && big.error.code === "PARSE");
    assert.match(big.error.message, /configuration .*big\.json is \d+ bytes, more than the 65536 allowed/);

    writeFileSync(join(dir, "bom.json"), `\uFEFF${JSON.stringify(minimal())}`);
    const bom = loadConfig(join(dir, "bom.json"));
    assert.ok(!bom.ok && bom.error.code === "PARSE");
    assert.match(bom.error.message, /byte order mark/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("field report: scrypt parameters are bounded (N ≤ 2^17, r ≤ 16, p ≤ 4, 256 MiB); the inline hash too", () => {
  const salt = `${"A".repeat(22)}==`;
  const key = `${"B".repeat(43)}=`;
  const h = (N: number, r: number, p: number) => `scrypt$${N}$${r}$${p}$${salt}$${key}`;
  assert.equal(hashProblem(h(16384, 8, 1)), undefined);
  assert.equal(hashProblem(h(131072, 16, 4)), undefined, "the bounds themselves are allowed");
  assert.ok(parseHash(h(131072, 16, 4)));
  for (const [N, r, p] of [
    [1 << 18, 8, 1],
    [1 << 20, 32, 1],
    [16384, 17, 1],
    [16384, 8, 5],
    [12345, 8, 1],
  ] as const) {
    assert.ok(hashProblem(h(N, r, p)), `N=${N} r=${r} p=${p} refused`);
    assert.equal(parseHash(h(N, r, p)), undefined);
  }
  const inline = issuesOf({ ...minimal(), console: { enabled: true, secretHash: h(1 << 20, 32, 1) } });
  assert.match(inline.get("console.secretHash") ?? "", /N=1048576 is above 131072/);
});

test("field report: a control socket writable by others is refused; the audit cap has a default and a range", () => {
  for (const mode of ["0666", "0662", "666", "0777", "0602"]) {
    const r = validateConfig({ ...minimal(), controlSocket: { mode } });
    assert.ok(!r.ok, mode);
    assert.equal(r.error.issues[0]!.path, "controlSocket.mode");
    assert.match(r.error.issues[0]!.message, /writable by others/);
  }
  for (const mode of ["0660", "0600", "0640", "0664"])
    assert.ok(validateConfig({ ...minimal(), controlSocket: { mode } }).ok, mode);
  const c = validateConfig(minimal());
  assert.ok(c.ok);
  assert.equal(c.value.audit.maxRows, 10_000);
  const bad = validateConfig({ ...minimal(), audit: { maxRows: 5 } });
  assert.ok(!bad.ok && bad.error.issues[0]!.path === "audit.maxRows");
});

test("an output line's debounceMs is refused (it would be ignored); an input's is taken", () => {
  const m = issuesOf({
    ...minimal(),
    gpio: {
      ...minimal().gpio,
      contactor: { chip: "c", line: 1, debounceMs: 20 },
      lock: { chip: "c", line: 2, debounceMs: 5 },
    },
  });
  assert.equal(m.get("gpio.contactor.debounceMs"), "unknown key");
  assert.equal(m.get("gpio.lock.debounceMs"), "unknown key");
  const r = validateConfig({
    ...minimal(),
    gpio: { ...minimal().gpio, contactorFeedback: { chip: "c", line: 3, debounceMs: 30 } },
  });
  assert.ok(r.ok);
  assert.equal(r.value.gpio.contactorFeedback.debounceMs, 30);
});

test("the site section: off by default, its problems reported with their full path", () => {
  const r = validateConfig(minimal());
  assert.ok(r.ok);
  assert.equal(r.value.site.http.enabled, false);
  assert.equal(r.value.site.mqtt.enabled, false);
  const on = validateConfig({ ...minimal(), site: { http: { enabled: true, port: 8443 } } });
  assert.ok(on.ok);
  assert.equal(on.value.site.http.port, 8443);
  assert.equal(on.value.site.http.host, "127.0.0.1");
  const issues = issuesOf({
    ...minimal(),
    site: {
      http: { port: 70000, tls: { certFile: "cert.pem", keyFile: "/k.pem" } },
      mqtt: { url: "http://broker", passwordFile: "/p", commands: { topic: "piled/#" } },
      ftp: {},
    },
  });
  assert.match(issues.get("site.http.port") ?? "", /at most 65535/);
  assert.match(issues.get("site.http.tls.certFile") ?? "", /absolute path/);
  assert.match(issues.get("site.mqtt.url") ?? "", /mqtt:\/\//);
  assert.match(issues.get("site.mqtt.commands.topic") ?? "", /wildcards/);
  assert.equal(issues.get("site.ftp"), "unknown key");
});
