/** `pilectl meter read` run as a child process (the built dist/src/cli/pilectl.js) against the simulated meter. */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { SimMeter } from "../../src/sim/meter/sim-meter.js";
import { openPtyPair, type PtyPair } from "../helpers/pty.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const pilectl = join(root, "dist", "src", "cli", "pilectl.js");

function runPilectl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [pilectl, ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

let pair: PtyPair;
before(async () => {
  pair = await openPtyPair();
});
after(async () => {
  await pair.close();
});

test("meter read prints the four values as one JSON line", async () => {
  const sim = new SimMeter({ model: "abb-b23", energyWh: 987_650, voltageV: 229.8, unit: 7 });
  sim.setPower(0);
  await sim.attach(pair.b);
  try {
    const r = await runPilectl(["meter", "read", "--port", pair.a, "--model", "abb-b23", "--unit", "7"]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.equal(lines.length, 1);
    assert.deepEqual(JSON.parse(lines[0]!), {
      voltageV: 229.8,
      currentA: 0,
      powerW: 0,
      energyImportWh: 987_650,
    });
  } finally {
    await sim.detach();
  }
});

test("meter read: a silent meter is exit 1 with error TIMEOUT; an exception is EXCEPTION", async () => {
  const sim = new SimMeter({ model: "sdm630" });
  await sim.attach(pair.b);
  try {
    sim.setFaults({ silent: true });
    const t = await runPilectl([
      "meter",
      "read",
      "--port",
      pair.a,
      "--model",
      "sdm630",
      "--timeout-ms",
      "100",
    ]);
    assert.equal(t.code, 1);
    assert.equal(JSON.parse(t.stdout).error, "TIMEOUT");
    sim.setFaults({ silent: false, exception: 2 });
    const x = await runPilectl(["meter", "read", "--port", pair.a, "--model", "sdm630"]);
    assert.equal(x.code, 1);
    assert.deepEqual(JSON.parse(x.stdout).error, "EXCEPTION");
    sim.setFaults({ exception: null, corruptCrc: true });
    const c = await runPilectl(["meter", "read", "--port", pair.a, "--model", "sdm630"]);
    assert.equal(c.code, 1);
    assert.equal(JSON.parse(c.stdout).error, "CRC");
  } finally {
    await sim.detach();
  }
});

test("meter read: a missing port is exit 1 with error PORT", async () => {
  const r = await runPilectl([
    "meter",
    "read",
    "--port",
    join(dirname(pair.a), "nothing"),
    "--model",
    "em340",
  ]);
  assert.equal(r.code, 1);
  assert.equal(JSON.parse(r.stdout).error, "PORT");
});

test("meter read: usage errors exit 2", async () => {
  for (const args of [
    ["meter", "read", "--model", "sdm630"],
    ["meter", "read", "--port", pair.a, "--model", "nope"],
    ["meter", "read", "--port", pair.a, "--model", "sdm630", "--unit", "0"],
    ["meter", "read", "--port", pair.a, "--model", "sdm630", "--parity", "mark"],
    ["meter", "read", "--port", pair.a, "--model", "sdm630", "--bogus"],
    ["meter", "frobnicate"],
  ]) {
    const r = await runPilectl(args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.equal(r.stdout, "");
  }
});

test("field report: meter read refuses an implausible reading (negative energy, a wrong model) and exits 1", async () => {
  const neg = new SimMeter({ model: "sdm630", energyWh: -5000 });
  await neg.attach(pair.b);
  try {
    const r = await runPilectl(["meter", "read", "--port", pair.a, "--model", "sdm630"]);
    assert.equal(r.code, 1, r.stdout);
    const out = JSON.parse(r.stdout);
    assert.equal(out.error, "IMPLAUSIBLE");
    assert.match(out.message, /energy -5000 Wh/);
    assert.equal(out.energyImportWh, undefined);
  } finally {
    await neg.detach();
  }
  // An EM340 read as an SDM630: its L1 voltage 2304 (×0.1 V) decodes as the float 1.5e-33 V.
  const em = new SimMeter({ model: "em340", voltageV: 230.4 });
  await em.attach(pair.b);
  try {
    const r = await runPilectl(["meter", "read", "--port", pair.a, "--model", "sdm630"]);
    assert.equal(r.code, 1, r.stdout);
    const out = JSON.parse(r.stdout);
    assert.equal(out.error, "IMPLAUSIBLE");
    assert.match(out.message, /voltage/);
  } finally {
    await em.detach();
  }
});
