/**
 * `pilectl carrier unlock|stop`, the built program run as a child process, over the emulated
 * radio against the pile fixture (the pile core behind the GATT peripheral) in a process of its
 * own. Needs bluez-test-tools, socat, gcc and unshare (root or user namespaces); fails naming
 * what is missing.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { type PileEvent, PileProcess } from "../../bench/fixtures/pile-process.js";
import { type IssuedCode, Issuer } from "../../src/sdk/issuer.js";
import { checkRadioTools, type Radio, type RadioBridge, startRadio } from "../../src/sim/radio.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../../..");
const PILECTL = join(ROOT, "dist/src/cli/pilectl.js");
const PILE_ID = "CP-CLI-0007";
const KEY_ID = 0x00c1_0001;
const KEY = new Uint8Array(randomBytes(32));
const issuer = new Issuer({ keys: [{ keyId: KEY_ID, key: KEY }] });

let radio: Radio;
let pileBridge: RadioBridge;
let pile: PileProcess;

before(async () => {
  checkRadioTools(); // throws naming the Debian packages that are missing
  assert.ok(existsSync(PILECTL), `${PILECTL} missing: build first (npx tsc -p tsconfig.json)`);
  radio = await startRadio();
  pileBridge = await radio.bridge();
  pile = new PileProcess({ uart: pileBridge.path, pileId: PILE_ID, keyId: KEY_ID, key: KEY });
  await pile.up();
});

after(async () => {
  await pile?.kill();
  await pileBridge?.close();
  await radio?.close();
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built pilectl to its end (killed by PID past `guardMs`, which fails the test). */
function pilectl(args: string[], guardMs = 40_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [PILECTL, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, BLUETOOTH_HCI_SOCKET_UART_PORT: "" },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    const guard = setTimeout(() => {
      if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, "SIGKILL");
      reject(new Error(`pilectl ${args[0]} ${args[1]} did not end within ${guardMs} ms; stderr: ${stderr}`));
    }, guardMs);
    child.on("error", (e) => {
      clearTimeout(guard);
      reject(e);
    });
    child.on("close", (code) => {
      clearTimeout(guard);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A carrier command with a controller of its own on the radio, closed afterwards. */
async function carrier(sub: "unlock" | "stop", c: IssuedCode, verifySecretHex?: string): Promise<Run> {
  const bridge = await radio.bridge();
  try {
    return await pilectl([
      "carrier",
      sub,
      "--pile",
      PILE_ID,
      "--code",
      c.codeText,
      "--verify-secret",
      verifySecretHex ?? Buffer.from(c.verifySecret).toString("hex"),
      "--hci-uart",
      bridge.path,
    ]);
  } finally {
    await bridge.close();
  }
}

function issue(): IssuedCode {
  const r = issuer.issue({ deviceId: "VIN-CLI-0001", pileId: PILE_ID, validForS: 3600 });
  assert.ok(r.ok);
  return r.value;
}

/** The single JSON line a carrier command prints. */
function outcome(r: Run): Record<string, unknown> {
  const lines = r.stdout.split("\n").filter((l) => l.trim().length > 0);
  assert.equal(lines.length, 1, `one JSON line expected, got: ${r.stdout} / stderr: ${r.stderr}`);
  return JSON.parse(lines[0]!) as Record<string, unknown>;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

function assertNoSecrets(r: Run, c: IssuedCode): void {
  const all = `${r.stdout}${r.stderr}`.toLowerCase();
  assert.ok(!all.includes(hex(c.verifySecret)), "V never appears in the output");
  assert.ok(!all.includes(hex(KEY)), "the key never appears in the output");
}

test("unlock with the platform's code and V: exit 0, ACCEPTED with the pile's session id; stop ends it: exit 0, stopped", {
  timeout: 90_000,
}, async () => {
  const c = issue();
  const since = pile.events.length;
  const u = await carrier("unlock", c);
  assert.equal(u.code, 0, `unlock exit code; stdout: ${u.stdout} stderr: ${u.stderr}`);
  const o = outcome(u);
  assert.equal(o.outcome, "accepted");
  assert.equal(o.pileId, PILE_ID);
  assert.match(String(o.sessionId), /^[0-9a-f]{32}$/);
  assertNoSecrets(u, c);
  const started = await pile.waitFor((e) => e.ev === "session" && e.what === "started", 5000, since);
  assert.equal(started.sessionId, o.sessionId, "the receipt names the pile's own session record");
  const conn = await pile.waitFor((e) => e.ev === "connect", 5000, since);
  await pile.waitFor((e) => e.ev === "disconnect" && e.id === conn.id, 10_000, since);
  assert.deepEqual(
    pile.events
      .slice(since)
      .filter((e) => e.ev === "rx" && e.id === conn.id)
      .map((e) => e.type),
    ["HELLO", "PRESENT"],
    "the pile's log shows what it received (the same log the rogue case is checked against)",
  );
  const statsCharging = await pile.stats();
  assert.equal(statsCharging.session, o.sessionId, "the session outlives the carrier's connection");

  const sinceStop = pile.events.length;
  const s = await carrier("stop", c);
  assert.equal(s.code, 0, `stop exit code; stdout: ${s.stdout} stderr: ${s.stderr}`);
  assert.equal(outcome(s).outcome, "stopped");
  assertNoSecrets(s, c);
  const ended = await pile.waitFor((e) => e.ev === "session" && e.what === "ended", 5000, sinceStop);
  assert.equal(ended.sessionId, o.sessionId);
  assert.equal(ended.reason, "CARRIER_STOP");
  const idle = await pile.stats();
  assert.equal(idle.state, "AVAILABLE");
  assert.equal(idle.session, null);
});

test("a wrong verify secret: the carrier reports a rogue pile (exit 1) and the pile never receives a PRESENT", {
  timeout: 90_000,
}, async () => {
  const c = issue();
  const wrong = hex(new Uint8Array(randomBytes(32)));
  const before = await pile.stats();
  const since = pile.events.length;
  const r = await carrier("unlock", c, wrong);
  assert.equal(r.code, 1, `exit code; stdout: ${r.stdout} stderr: ${r.stderr}`);
  assert.equal(outcome(r).outcome, "rogue-pile");
  assert.ok(!`${r.stdout}${r.stderr}`.includes(wrong), "the secret given is not echoed");
  assertNoSecrets(r, c);

  // Everything the pile saw of that connection, up to its end.
  const conn = await pile.waitFor((e) => e.ev === "connect", 5000, since);
  await pile.waitFor((e) => e.ev === "disconnect" && e.id === conn.id, 10_000, since);
  const seen = pile.events.slice(since).filter((e: PileEvent) => e.id === conn.id);
  const rx = seen.filter((e) => e.ev === "rx").map((e) => e.type);
  assert.deepEqual(rx, ["HELLO"], "a HELLO arrived, and no PRESENT after it");
  assert.ok(
    seen.some((e) => e.ev === "tx" && e.type === "CHALLENGE"),
    "the pile answered with a CHALLENGE",
  );
  const stats = await pile.stats();
  assert.equal(stats.state, "AVAILABLE");
  assert.equal(stats.session, null);
  assert.equal(stats.ledger, before.ledger, "no code was recorded: this one was never presented");
  type Counters = { messages: number; accepted: number; badProofs: number };
  const was = before.counters as Counters;
  const now = stats.counters as Counters;
  assert.equal(now.messages, was.messages + 1, "the pile received one message: the HELLO");
  assert.equal(now.accepted, was.accepted);
  assert.equal(now.badProofs, was.badProofs);

  // The same code with its right V still unlocks: nothing was spent by the refusal.
  const ok = await carrier("unlock", c);
  assert.equal(ok.code, 0, `stdout: ${ok.stdout} stderr: ${ok.stderr}`);
  assert.equal(outcome(ok).outcome, "accepted");
  const s = await carrier("stop", c);
  assert.equal(s.code, 0, `stdout: ${s.stdout} stderr: ${s.stderr}`);
  assert.equal(outcome(s).outcome, "stopped");
});

test("usage errors exit 2 without touching the radio", { timeout: 60_000 }, async () => {
  const c = issue();
  const v = hex(c.verifySecret);
  const cases: Array<[string, string[]]> = [
    ["no subcommand", ["carrier"]],
    ["unknown subcommand", ["carrier", "open", "--pile", PILE_ID]],
    ["missing --pile", ["carrier", "unlock", "--code", c.codeText, "--verify-secret", v]],
    ["missing --code", ["carrier", "unlock", "--pile", PILE_ID, "--verify-secret", v]],
    ["missing --verify-secret", ["carrier", "stop", "--pile", PILE_ID, "--code", c.codeText]],
    [
      "code not base64url",
      ["carrier", "unlock", "--pile", PILE_ID, "--code", "not*base64", "--verify-secret", v],
    ],
    ["code too short", ["carrier", "unlock", "--pile", PILE_ID, "--code", "AQID", "--verify-secret", v]],
    [
      "secret not hex",
      ["carrier", "unlock", "--pile", PILE_ID, "--code", c.codeText, "--verify-secret", "zz".repeat(32)],
    ],
    [
      "secret too short",
      ["carrier", "unlock", "--pile", PILE_ID, "--code", c.codeText, "--verify-secret", v.slice(2)],
    ],
    [
      "unknown option",
      ["carrier", "unlock", "--pile", PILE_ID, "--code", c.codeText, "--verify-secret", v, "--bogus"],
    ],
    [
      "timeout out of range",
      [
        "carrier",
        "unlock",
        "--pile",
        PILE_ID,
        "--code",
        c.codeText,
        "--verify-secret",
        v,
        "--timeout-ms",
        "5",
      ],
    ],
  ];
  const since = pile.events.length;
  const runs = await Promise.all(cases.map(([, args]) => pilectl(args, 30_000)));
  runs.forEach((r, i) => {
    const what = cases[i]![0];
    assert.equal(r.code, 2, `${what}: exit code; stderr: ${r.stderr}`);
    assert.equal(r.stdout, "", `${what}: nothing on stdout`);
    assert.ok(r.stderr.length > 0, `${what}: the reason is on stderr`);
    assert.ok(!r.stderr.includes(v), `${what}: V is not echoed`);
  });
  const stats = await pile.stats();
  assert.equal(
    pile.events.slice(since).filter((e) => e.ev === "connect").length,
    0,
    "no usage error reached the pile",
  );
  assert.equal(stats.state, "AVAILABLE");
});

test("no pile of that name on the air: exit 1 with a link error NOT_FOUND", { timeout: 60_000 }, async () => {
  const c = issue();
  const bridge = await radio.bridge();
  try {
    const r = await pilectl([
      "carrier",
      "unlock",
      "--pile",
      "CP-NOBODY",
      "--code",
      c.codeText,
      "--verify-secret",
      hex(c.verifySecret),
      "--hci-uart",
      bridge.path,
      "--timeout-ms",
      "1500",
    ]);
    assert.equal(r.code, 1, `stdout: ${r.stdout} stderr: ${r.stderr}`);
    const o = outcome(r);
    assert.equal(o.outcome, "link-error");
    assert.equal(o.code, "NOT_FOUND");
    assertNoSecrets(r, c);
  } finally {
    await bridge.close();
  }
});
