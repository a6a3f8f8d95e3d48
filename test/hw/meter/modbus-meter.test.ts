/**
 * The Meter adapter against the simulated slave over real pty pairs (socat): every register map,
 * the slave's fault switches, and the pty vanishing under a running poll.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ModbusBus } from "../../../src/hw/meter/bus.js";
import { METER_MODELS } from "../../../src/hw/meter/maps.js";
import { ModbusMeter } from "../../../src/hw/meter/modbus-meter.js";
import { MeterError } from "../../../src/hw/ports.js";
import { SimMeter } from "../../../src/sim/meter/sim-meter.js";
import { ManualClock } from "../../../src/sim/plant.js";
import { openPtyPair, type PtyPair } from "../../helpers/pty.js";

/** The project's manual clock; wall and monotonic time start equal and move together. */
const manualClock = (start = 1000) => new ManualClock({ now: start, monotonic: start });

async function rejectsWith(p: Promise<unknown>, code: string): Promise<MeterError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof MeterError, `not a MeterError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`resolved, expected ${code}`);
}

let pair: PtyPair;
before(async () => {
  pair = await openPtyPair();
});
after(async () => {
  await pair.close();
});

for (const model of METER_MODELS) {
  test(`${model}: reads the four values from the simulated meter, energy follows the power`, async () => {
    const clock = manualClock();
    const sim = new SimMeter({ model, clock, energyWh: 1_000_000, voltageV: 230.4 });
    await sim.attach(pair.b);
    const bus = new ModbusBus({ path: pair.a, timeoutMs: 500 });
    const meter = new ModbusMeter({ bus, model, unit: 1, clock, ownsBus: true });
    try {
      sim.setPower(6900);
      const r1 = await meter.read();
      assert.equal(r1.takenAt, 1000);
      assert.ok(Math.abs(r1.voltageV - 230.4) < 0.01, `${r1.voltageV}`);
      assert.ok(Math.abs(r1.powerW - 6900) < 0.1, `${r1.powerW}`);
      const phases = model === "sdm120" ? 1 : 3;
      assert.ok(Math.abs(r1.currentA - 6900 / phases / 230.4) < 0.01, `${r1.currentA}`);
      assert.ok(Math.abs(r1.energyImportWh - 1_000_000) <= 100, `${r1.energyImportWh}`);
      clock.advance(3_600_000); // one hour at 6.9 kW
      const r2 = await meter.read();
      assert.equal(r2.takenAt, 3_601_000);
      // Resolution: 0.1 kWh on the EM340, 10 Wh on the B23, float32 on the SDMs.
      assert.ok(Math.abs(r2.energyImportWh - r1.energyImportWh - 6900) <= 100, `${r2.energyImportWh}`);
      assert.equal(bus.counters().requests, 2 * meter.plans.length);
    } finally {
      await meter.close();
      await sim.detach();
    }
  });
}

test("fault switches over the pty: CRC corruption, silence, exception, not-available energy, then recovery", async () => {
  const clock = manualClock();
  const sim = new SimMeter({ model: "abb-b23", clock, energyWh: 500 });
  await sim.attach(pair.b);
  const bus = new ModbusBus({ path: pair.a, timeoutMs: 150, retries: 1, backoffMs: 5 });
  const meter = new ModbusMeter({ bus, model: "abb-b23", unit: 1, clock, ownsBus: true });
  try {
    sim.setFaults({ corruptCrc: true });
    await rejectsWith(meter.read(), "CRC");
    assert.equal(bus.counters().rxCrcErrors, 2);
    sim.setFaults({ corruptCrc: false, silent: true });
    await rejectsWith(meter.read(), "TIMEOUT");
    assert.equal(bus.counters().timeouts, 2);
    sim.setFaults({ silent: false, exception: 4 });
    const ex = await rejectsWith(meter.read(), "EXCEPTION");
    assert.equal(ex.detail?.modbusCode, 4);
    sim.setFaults({ exception: null, energyNotAvailable: true });
    await rejectsWith(meter.read(), "NOT_AVAILABLE");
    sim.clearFaults();
    const r = await meter.read();
    assert.equal(r.energyImportWh, 500);
    // The same client served all of it: none of these faults is a port fault.
    assert.equal(bus.counters().opens, 1);
  } finally {
    await meter.close();
    await sim.detach();
  }
});

test("a slow reply past the deadline is TIMEOUT, and its late bytes do not spoil the next read", async () => {
  const clock = manualClock();
  const sim = new SimMeter({ model: "sdm630", clock, energyWh: 42_000 });
  await sim.attach(pair.b);
  const bus = new ModbusBus({ path: pair.a, timeoutMs: 60, retries: 0 });
  const meter = new ModbusMeter({ bus, model: "sdm630", unit: 1, clock, ownsBus: true });
  try {
    sim.setFaults({ delayMs: 120 });
    await rejectsWith(meter.read(), "TIMEOUT");
    // Wait for the late reply to come in while the bus is idle.
    const rx = bus.counters().bytesRx;
    for (let i = 0; i < 500 && bus.counters().bytesRx === rx; i++)
      await new Promise((r) => setTimeout(r, 10));
    sim.clearFaults();
    sim.setPower(1234);
    const r = await meter.read();
    assert.ok(Math.abs(r.powerW - 1234) < 0.01);
    assert.ok(Math.abs(r.energyImportWh - 42_000) < 5);
    assert.ok(bus.counters().rxDiscarded > 0, "the late reply was thrown away");
  } finally {
    await meter.close();
    await sim.detach();
  }
});

test("socat killed mid-read: PORT, PORT while gone, then a fresh client once the pty is back", async () => {
  const dir = mkdtempSync(join(tmpdir(), "piled-meter-"));
  let p1: PtyPair | undefined = await openPtyPair({ dir });
  let p2: PtyPair | undefined;
  const clock = manualClock();
  const sim = new SimMeter({ model: "sdm120", clock, energyWh: 7 });
  const bus = new ModbusBus({ path: p1.a, timeoutMs: 2000, retries: 0 });
  const meter = new ModbusMeter({ bus, model: "sdm120", unit: 1, clock, ownsBus: true });
  try {
    await sim.attach(p1.b);
    await meter.read();
    sim.setFaults({ delayMs: 1000 });
    const inFlight = rejectsWith(meter.read(), "PORT"); // checked from now, awaited below
    await new Promise((r) => setTimeout(r, 50));
    await p1.close(); // kills socat: the master's port closes under the pending request
    p1 = undefined;
    await inFlight;
    await rejectsWith(meter.read(), "PORT"); // the pty is gone: the open fails
    p2 = await openPtyPair({ dir });
    assert.equal(p2.a, bus.path);
    sim.clearFaults();
    await sim.attach(p2.b);
    const r = await meter.read();
    assert.ok(Math.abs(r.energyImportWh - 7) < 0.01);
    const c = bus.counters();
    assert.equal(c.opens, 3, "first client, the failed open, the fresh client");
    assert.ok(c.portErrors >= 2);
    assert.equal(c.writesDropped, 0);
  } finally {
    await meter.close();
    await sim.detach();
    await p1?.close();
    await p2?.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
