import assert from "node:assert/strict";
import { afterEach, beforeEach, mock, test } from "node:test";
import { SimPlant } from "../../src/sim/plant.js";

beforeEach(() => mock.timers.enable({ apis: ["setTimeout"] }));
afterEach(() => mock.timers.reset());

function plant(): SimPlant {
  return new SimPlant({ contactorMs: 30, lockMs: 200 });
}

/** Engages the lock and closes the contactor, both confirmed. */
async function charge(p: SimPlant): Promise<void> {
  await p.lock.write(true);
  mock.timers.tick(200);
  await p.contactor.write(true);
  mock.timers.tick(30);
}

test("the contactor feedback follows its coil after the contactor delay", async () => {
  const p = plant();
  await p.contactor.write(true);
  assert.equal(p.state().outputs.contactor, true);
  mock.timers.tick(29);
  assert.equal(await p.contactorFeedback.read(), false);
  mock.timers.tick(1);
  assert.equal(await p.contactorFeedback.read(), true);
  await p.contactor.write(false);
  mock.timers.tick(29);
  assert.equal(p.state().feedback.contactor, true);
  mock.timers.tick(1);
  assert.equal(p.state().feedback.contactor, false);
});

test("the lock feedback follows after the lock delay, and watchers hear each change once", async () => {
  const p = plant();
  const seen: boolean[] = [];
  p.lockFeedback.watch((v) => seen.push(v));
  await p.lock.write(true);
  mock.timers.tick(199);
  assert.deepEqual(seen, []);
  mock.timers.tick(1);
  assert.deepEqual(seen, [true]);
  await p.lock.write(false);
  mock.timers.tick(200);
  assert.deepEqual(seen, [true, false]);
});

test("a command reversed before the delay never shows on the feedback", async () => {
  const p = plant();
  const seen: boolean[] = [];
  p.contactorFeedback.watch((v) => seen.push(v));
  await p.contactor.write(true);
  mock.timers.tick(10);
  await p.contactor.write(false);
  mock.timers.tick(100);
  assert.deepEqual(seen, []);
});

test("onContactor reports power on and off as the contacts move", async () => {
  const p = plant();
  const power: boolean[] = [];
  const off = p.onContactor((closed) => power.push(closed));
  await charge(p);
  await p.contactor.write(false);
  mock.timers.tick(30);
  assert.deepEqual(power, [true, false]);
  off();
  await p.contactor.write(true);
  mock.timers.tick(30);
  assert.deepEqual(power, [true, false]);
});

test("weldContactor: the feedback stays closed after opening, and power keeps flowing", async () => {
  const p = plant();
  const power: boolean[] = [];
  p.onContactor((closed) => power.push(closed));
  await charge(p);
  p.weldContactor();
  await p.contactor.write(false);
  mock.timers.tick(1000);
  assert.equal(p.state().outputs.contactor, false);
  assert.equal(await p.contactorFeedback.read(), true);
  assert.deepEqual(power, [true]);
  assert.equal(p.state().faults.welded, true);
  p.clearFaults();
  mock.timers.tick(30);
  assert.equal(await p.contactorFeedback.read(), false);
  assert.deepEqual(power, [true, false]);
});

test("weldContactor while open: the next close welds", async () => {
  const p = plant();
  p.weldContactor();
  await p.contactor.write(true);
  mock.timers.tick(30);
  await p.contactor.write(false);
  mock.timers.tick(1000);
  assert.equal(p.state().feedback.contactor, true);
});

test("contactorNeverCloses: the coil is driven, the feedback never confirms", async () => {
  const p = plant();
  p.contactorNeverCloses();
  await p.contactor.write(true);
  mock.timers.tick(1000);
  assert.equal(p.state().outputs.contactor, true);
  assert.equal(await p.contactorFeedback.read(), false);
  p.clearFaults();
  mock.timers.tick(30);
  assert.equal(await p.contactorFeedback.read(), true);
});

test("lockStuckOpen: the lock feedback never confirms engaged", async () => {
  const p = plant();
  p.lockStuckOpen();
  await p.lock.write(true);
  mock.timers.tick(5000);
  assert.equal(p.state().outputs.lock, true);
  assert.equal(await p.lockFeedback.read(), false);
  p.clearFaults();
  mock.timers.tick(200);
  assert.equal(await p.lockFeedback.read(), true);
});

test("lockOpensUnderLoad: the lock lets go once current flows", async () => {
  const p = plant();
  p.lockOpensUnderLoad();
  await p.lock.write(true);
  mock.timers.tick(200);
  assert.equal(await p.lockFeedback.read(), true, "engages while no current flows");
  const lockSeen: boolean[] = [];
  p.lockFeedback.watch((v) => lockSeen.push(v));
  await p.contactor.write(true);
  mock.timers.tick(30);
  assert.equal(p.state().feedback.contactor, true);
  mock.timers.tick(199);
  assert.deepEqual(lockSeen, []);
  mock.timers.tick(1);
  assert.deepEqual(lockSeen, [false]);
  assert.equal(p.state().outputs.lock, true);
});

test("pullPlug and insertPlug drive the vehicle sense", async () => {
  const p = new SimPlant({ plugPresent: true });
  const seen: boolean[] = [];
  p.vehicle.watch((v) => seen.push(v));
  assert.equal(await p.vehicle.present(), true);
  p.pullPlug();
  assert.equal(await p.vehicle.present(), false);
  p.pullPlug();
  p.insertPlug();
  assert.deepEqual(seen, [false, true]);
  assert.equal(await new SimPlant().vehicle.present(), false);
});

test("pressEmergencyStop raises the emergency-stop input; release lowers it", async () => {
  const p = plant();
  const seen: boolean[] = [];
  p.emergencyStop.watch((v) => seen.push(v));
  p.pressEmergencyStop();
  assert.equal(await p.emergencyStop.read(), true);
  assert.equal(p.state().emergencyStop, true);
  p.clearFaults();
  assert.equal(await p.emergencyStop.read(), true, "clearFaults does not release the emergency stop");
  p.releaseEmergencyStop();
  assert.deepEqual(seen, [true, false]);
});

test("dispose freezes pending movements", async () => {
  const p = plant();
  await p.contactor.write(true);
  p.dispose();
  mock.timers.tick(1000);
  assert.equal(p.state().feedback.contactor, false);
});

test("pileLines hands out the plant's own lines", async () => {
  const p = plant();
  const lines = p.pileLines();
  await lines.contactor.write(true);
  mock.timers.tick(30);
  assert.equal(await lines.contactorFeedback.read(), true);
  assert.equal(await lines.vehicle.present(), false);
  await lines.close();
});
