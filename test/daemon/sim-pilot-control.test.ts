/**
 * `pilectl sim` on a pile whose vehicle is the simulated pilot MCU: plug-in / plug-out play the
 * vehicle's B / A, vehicle-X and the diode switches reach the harness, and the pilot actions are
 * refused on a pile without a simulated MCU.
 */
import assert from "node:assert/strict";
import test from "node:test";
import type { PileRuntime } from "../../src/daemon/runtime.js";
import { simControl } from "../../src/daemon/sim-control.js";
import type { SimPilot } from "../../src/sim/pilot-sim.js";
import { ManualClock, SimPlant } from "../../src/sim/plant.js";

function fakePilot() {
  const calls: string[] = [];
  const pilot = {
    setVehicle: (v: string) => calls.push(`vehicle ${v}`),
    setDiode: (on: boolean) => calls.push(`diode ${on}`),
    setAuto: (on: boolean) => calls.push(`auto ${on}`),
    freeze: () => calls.push("freeze"),
    reset: () => calls.push("reset"),
    state: () => ({ vehicle: "B", diode: true, permit: false, auto: true, dutyPercent: null }),
  };
  return { pilot: pilot as unknown as SimPilot, calls };
}

const runtime = { snapshot: () => ({ state: "AVAILABLE" }) } as unknown as PileRuntime;

test("pilot actions reach the simulated MCU's vehicle; the result shows the pilot", () => {
  const { pilot, calls } = fakePilot();
  const plant = new SimPlant({ permitInSeries: true });
  const c = simControl({ plant, pilot }, runtime);
  for (const a of [
    "plug-in",
    "vehicle-c",
    "diode-break",
    "diode-fix",
    "plug-out",
    "mcu-freeze",
    "vehicle-auto",
  ]) {
    const r = c.run(a);
    assert.ok(r.ok, a);
    assert.deepEqual((r.result as { pilot: unknown }).pilot, pilot.state());
  }
  assert.deepEqual(calls, [
    "vehicle B",
    "auto false",
    "vehicle C",
    "diode false",
    "diode true",
    "vehicle A",
    "freeze",
    "auto true",
  ]);
  assert.equal(plant.state().plugPresent, false, "the plug line is not what a pilot pile senses");
});

test("without a simulated MCU the pilot actions are refused, nothing moves", () => {
  const plant = new SimPlant({ plugPresent: false });
  const c = simControl({ plant }, runtime);
  for (const a of ["vehicle-c", "diode-break", "mcu-reset"]) {
    const r = c.run(a);
    assert.ok(!r.ok, a);
    assert.equal(r.error.code, "NOT_SIMULATED");
  }
  assert.ok(c.run("plug-in").ok);
  assert.equal(plant.state().plugPresent, true);
});

test("the permit in series: the contactor closes only with the line and the permit on", async () => {
  const clock = new ManualClock();
  const plant = new SimPlant({ permitInSeries: true, contactorMs: 1, timers: clock });
  await plant.contactor.write(true);
  clock.advance(20);
  assert.equal(plant.state().feedback.contactor, false, "line on, permit off: open");
  plant.setPermit(true);
  clock.advance(20);
  assert.equal(plant.state().feedback.contactor, true);
  plant.setPermit(false);
  clock.advance(20);
  assert.equal(plant.state().feedback.contactor, false, "the permit alone opens it");
  plant.dispose();
});
