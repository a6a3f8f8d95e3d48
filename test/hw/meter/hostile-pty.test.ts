/**
 * Field report 7, "a meter that answers twice is read wrong", over real pty pairs (socat): the
 * simulated meter turns hostile (replies repeated, late, shifted by one request, energy going
 * backwards, absurd values) against every register map. Whatever it does, an accepted reading's
 * energy is the meter's true energy (within one register step and one poll of accrual); the rest
 * is refused with a MeterError, which the daemon counts.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { ModbusBus } from "../../../src/hw/meter/bus.js";
import { METER_MAPS, METER_MODELS, type MeterModel } from "../../../src/hw/meter/maps.js";
import { ModbusMeter } from "../../../src/hw/meter/modbus-meter.js";
import { energyResolutionWh } from "../../../src/hw/meter/plausibility.js";
import { MeterError } from "../../../src/hw/ports.js";
import { type MeterFaults, SimMeter } from "../../../src/sim/meter/sim-meter.js";
import { ManualClock } from "../../../src/sim/plant.js";
import { openPtyPair, type PtyPair } from "../../helpers/pty.js";

/** The project's manual clock; wall and monotonic time start equal and move together. */
const manualClock = (start = 1000) => new ManualClock({ now: start, monotonic: start });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const POWER_W = 7360;
const STEP_MS = 1000;

interface Scenario {
  name: string;
  faults: Partial<MeterFaults>;
  reads: number;
  /** Every read of the scenario must be refused with this code. */
  allRefused?: string;
}

const SCENARIOS: Scenario[] = [
  { name: "duplicated", faults: { duplicateAfterMs: 8, delayMs: 15 }, reads: 4 },
  { name: "duplicated at once", faults: { duplicateAfterMs: 0 }, reads: 4 },
  { name: "late", faults: { delayMs: 120 }, reads: 3 },
  { name: "shifted", faults: { shifted: true }, reads: 3 },
  { name: "backwards", faults: { energyOffsetWh: -5000 }, reads: 3, allRefused: "IMPLAUSIBLE" },
  { name: "absurd energy", faults: { energyOffsetWh: 7_360_000 }, reads: 3, allRefused: "IMPLAUSIBLE" },
  { name: "absurd voltage", faults: { absurd: { voltageV: 0 } }, reads: 2, allRefused: "IMPLAUSIBLE" },
  { name: "absurd power", faults: { absurd: { powerW: 1e7 } }, reads: 2, allRefused: "IMPLAUSIBLE" },
];

let pair: PtyPair;
before(async () => {
  pair = await openPtyPair();
});
after(async () => {
  await pair.close();
});

async function hostileRun(model: MeterModel): Promise<void> {
  const clock = manualClock();
  const sim = new SimMeter({ model, clock, energyWh: 1_000_000 });
  sim.setPower(POWER_W);
  await sim.attach(pair.b);
  const bus = new ModbusBus({ path: pair.a, timeoutMs: 80, retries: 1, backoffMs: 5 });
  const meter = new ModbusMeter({ bus, model, unit: 1, clock, ownsBus: true });
  const map = METER_MAPS[model];
  // One register step, plus what one poll accrues (a stale reply to the same read).
  const tolerance = (e: number) => energyResolutionWh(map, e) + (2 * POWER_W * STEP_MS) / 3_600_000;
  const summary: string[] = [];
  try {
    const start = await meter.read();
    const startTrue = sim.values().energyImportWh;
    assert.ok(Math.abs(start.energyImportWh - startTrue) <= tolerance(startTrue));
    let lastSeen = start.energyImportWh;
    for (const sc of SCENARIOS) {
      sim.clearFaults();
      sim.setFaults(sc.faults);
      let accepted = 0;
      const refused: string[] = [];
      for (let i = 0; i < sc.reads; i++) {
        clock.advance(STEP_MS);
        try {
          const r = await meter.read();
          const truth = sim.values().energyImportWh;
          const e = r.energyImportWh;
          assert.ok(
            e <= truth + tolerance(truth) && e >= truth - tolerance(truth),
            `${model} ${sc.name}: energy ${e} Wh accepted, the meter's true energy is ${truth} Wh`,
          );
          assert.ok(e >= lastSeen, `${model} ${sc.name}: energy went back from ${lastSeen} to ${e}`);
          // The session's energy is never more than the meter really counted since its start.
          assert.ok(e - start.energyImportWh <= truth - startTrue + tolerance(truth));
          lastSeen = e;
          accepted++;
        } catch (err) {
          assert.ok(err instanceof MeterError, `${model} ${sc.name}: ${String(err)}`);
          refused.push(err.code);
        }
      }
      if (sc.allRefused) {
        assert.deepEqual(refused, new Array(sc.reads).fill(sc.allRefused), `${model} ${sc.name}`);
      }
      summary.push(`${sc.name}: ${accepted} accepted, refused [${refused.join(",")}]`);
      // Let late and repeated replies of this scenario drain before the next one.
      sim.clearFaults();
      await sleep(300);
    }
    // Every hostile behaviour off again: the meter reads right at once.
    clock.advance(STEP_MS);
    const r = await meter.read();
    const truth = sim.values().energyImportWh;
    assert.ok(Math.abs(r.energyImportWh - truth) <= tolerance(truth), `${r.energyImportWh} vs ${truth}`);
    assert.ok(sim.counters.duplicates > 0);
    const c = bus.counters();
    process.stdout.write(
      `# ${model}: ${summary.join("; ")}; strayFrames ${c.strayFrames}, rxDiscarded ${c.rxDiscarded}, timeouts ${c.timeouts}\n`,
    );
    assert.ok(c.strayFrames > 0, "some repeated or late reply met a request of another size");
  } finally {
    await meter.close();
    await sim.detach();
  }
}

for (const model of METER_MODELS) {
  test(`field report: a hostile ${model} (repeated, late, shifted, backwards, absurd replies) is refused, never read wrong`, async () => {
    await hostileRun(model);
  });
}
