/**
 * The pile core with a pilot MCU (IEC 61851): PWM only once the code is recorded and the lock
 * confirmed, the contactor only in C, B ends the session (VEHICLE_DONE), A unplugs, and E, F, a
 * missing diode, a silent or reset MCU latch a pilot fault that clears at A or B when idle.
 */
import assert from "node:assert/strict";
import test from "node:test";
import type { PileEffect } from "../../src/pile/index.js";
import { Carrier, issue, Rig } from "./rig.js";

const pilotFx = (fx: PileEffect[]) => fx.filter((e) => e.type === "pilot");
const contactor = (fx: PileEffect[]) => fx.filter((e) => e.type === "contactor");

/** Boots a pilot pile at B, accepts a code and confirms the lock: PWM asked, waiting for C. */
function plugged(cfg = {}): { rig: Rig; carrier: Carrier; lockFx: PileEffect[] } {
  const rig = new Rig(cfg);
  const bootFx = rig.boot({ pilot: "A", vehicle: false });
  assert.deepEqual(pilotFx(bootFx), [{ type: "pilot", command: "pwm", currentA: null }]);
  rig.feed({ type: "pilot", state: "B" });
  const carrier = new Carrier(rig, "c1", issue());
  rig.feed({ type: "connected", connId: "c1" });
  carrier.hello();
  const acked = rig.ackRecord(carrier.present());
  assert.deepEqual(pilotFx(acked), [], "no PWM before the lock is confirmed");
  const lockFx = rig.feed({ type: "lockFeedback", engaged: true });
  return { rig, carrier, lockFx };
}

test("session: PWM at the configured maximum after the lock, contactor only at C, B stops it", () => {
  const { rig, lockFx } = plugged({ pilotMaxCurrentA: 20 });
  assert.deepEqual(pilotFx(lockFx), [{ type: "pilot", command: "pwm", currentA: 20 }]);
  assert.deepEqual(contactor(lockFx), [], "B: the contactor stays open");
  assert.equal(rig.core.snapshot().phase, "locking");
  assert.equal(rig.state(), "PREPARING");
  rig.advance(3000);
  assert.equal(rig.core.snapshot().faults.length, 0, "waiting for C is no fault");
  rig.meter();
  const c = rig.feed({ type: "pilot", state: "C" });
  assert.deepEqual(contactor(c), [{ type: "contactor", closed: true }]);
  rig.feed({ type: "contactorFeedback", closed: true });
  assert.equal(rig.state(), "CHARGING");
  const b = rig.feed({ type: "pilot", state: "B" });
  assert.deepEqual(contactor(b), [{ type: "contactor", closed: false }]);
  assert.deepEqual(pilotFx(b), [{ type: "pilot", command: "pwm", currentA: null }]);
  rig.feed({ type: "contactorFeedback", closed: false });
  rig.feed({ type: "lockFeedback", engaged: false });
  const ended = rig.log.find((e) => e.type === "sessionEnded");
  assert.ok(ended?.type === "sessionEnded");
  assert.equal(ended.record.stopReason, "VEHICLE_DONE");
  assert.equal(rig.state(), "AVAILABLE");
  assert.equal(rig.core.snapshot().feedback.pilot?.pwmA, null);
});

test("D counts as asking for energy; A while charging is an unplug", () => {
  const { rig } = plugged();
  rig.meter();
  assert.deepEqual(contactor(rig.feed({ type: "pilot", state: "D" })), [{ type: "contactor", closed: true }]);
  rig.feed({ type: "contactorFeedback", closed: true });
  const a = rig.feed({ type: "pilot", state: "A" });
  assert.deepEqual(contactor(a), [{ type: "contactor", closed: false }]);
  assert.equal(rig.core.snapshot().session?.stopReason, "PLUG_REMOVED");
});

for (const [name, report, code] of [
  ["state E", { state: "E" }, "PILOT_FAULT"],
  ["state F", { state: "F" }, "PILOT_FAULT"],
  ["diode missing", { state: "C", diodeFailed: true }, "PILOT_FAULT"],
  ["MCU silent", { state: "lost" }, "PILOT_MCU"],
  ["MCU reset", { state: "reset" }, "PILOT_MCU"],
] as const) {
  test(`${name} while charging: contactor open, PWM off, ${code}; clears once idle at A`, () => {
    const { rig } = plugged();
    rig.meter();
    rig.feed({ type: "pilot", state: "C" });
    rig.feed({ type: "contactorFeedback", closed: true });
    const fx = rig.feed({ type: "pilot", ...report });
    assert.deepEqual(fx[0], { type: "contactor", closed: false }, "contactor open first");
    assert.ok(fx.some((e) => e.type === "fault" && e.code === code));
    assert.equal(rig.state(), "FAULTED");
    rig.feed({ type: "contactorFeedback", closed: false });
    rig.feed({ type: "lockFeedback", engaged: false });
    assert.equal(rig.core.snapshot().phase, "idle");
    const c = rig.feed({ type: "pilot", state: "C" });
    assert.deepEqual(contactor(c), [], "a C while faulted closes nothing");
    const back = rig.feed({ type: "pilot", state: "A" });
    assert.ok(back.some((e) => e.type === "faultCleared"));
    assert.equal(rig.state(), "AVAILABLE");
  });
}

test("a diode failure before C: the contactor never closes", () => {
  const { rig } = plugged();
  rig.meter();
  const fx = rig.feed({ type: "pilot", state: "C", diodeFailed: true });
  assert.ok(!fx.some((e) => e.type === "contactor" && e.closed));
  assert.equal(rig.state(), "FAULTED");
});

test("relay test asks the MCU's test permit with the line, and takes it back", () => {
  const rig = new Rig();
  rig.boot({ pilot: "A", vehicle: false });
  const fx = rig.feed({ type: "technician", command: "relayTest" });
  assert.deepEqual(pilotFx(fx), [{ type: "pilot", command: "test", on: true }]);
  rig.feed({ type: "contactorFeedback", closed: true });
  const done = rig.feed({ type: "contactorFeedback", closed: false });
  assert.deepEqual(pilotFx(done), [{ type: "pilot", command: "test", on: false }]);
  assert.ok(done.some((e) => e.type === "relayTestDone" && e.ok));
});

test("relay test refused with a vehicle at B", () => {
  const rig = new Rig();
  rig.boot({ pilot: "B", vehicle: true });
  const fx = rig.feed({ type: "technician", command: "relayTest" });
  assert.ok(fx.some((e) => e.type === "rejected" && e.code === "UNSAFE"));
  assert.deepEqual(pilotFx(fx), []);
});

test("without a pilot nothing of it appears (GPIO piles as before)", () => {
  const rig = new Rig();
  rig.boot();
  rig.startCharging();
  assert.deepEqual(pilotFx(rig.log), []);
  assert.equal(rig.core.snapshot().feedback.pilot, undefined);
});

test("the pilot back at A while the session still ends: the pilot fault clears once idle", () => {
  const { rig } = plugged();
  rig.meter();
  rig.feed({ type: "pilot", state: "C" });
  rig.feed({ type: "contactorFeedback", closed: true });
  rig.feed({ type: "pilot", state: "reset" });
  rig.feed({ type: "contactorFeedback", closed: false });
  assert.equal(rig.core.snapshot().phase, "unlocking");
  rig.feed({ type: "pilot", state: "A" });
  assert.equal(rig.state(), "FAULTED", "still ending: the fault stays");
  const fx = rig.feed({ type: "lockFeedback", engaged: false });
  assert.ok(fx.some((e) => e.type === "faultCleared"));
  assert.equal(rig.state(), "AVAILABLE");
});

test("the technician's current limit: the PWM offers the lower of it and the pile's maximum, and a running session follows it", () => {
  const rig = new Rig({ pilotMaxCurrentA: 32 });
  rig.boot({ pilot: "A", vehicle: false });
  const pre = rig.feed({ type: "technician", command: "setCurrentLimit", currentA: 16 });
  assert.deepEqual(pilotFx(pre), [], "no PWM is running: nothing is sent yet");
  rig.feed({ type: "pilot", state: "B" });
  const carrier = new Carrier(rig, "c1", issue());
  rig.feed({ type: "connected", connId: "c1" });
  carrier.hello();
  rig.ackRecord(carrier.present());
  const lockFx = rig.feed({ type: "lockFeedback", engaged: true });
  assert.deepEqual(pilotFx(lockFx), [{ type: "pilot", command: "pwm", currentA: 16 }]);
  rig.meter();
  rig.feed({ type: "pilot", state: "C" });
  rig.feed({ type: "contactorFeedback", closed: true });
  assert.equal(rig.state(), "CHARGING");
  const lower = rig.feed({ type: "technician", command: "setCurrentLimit", currentA: 10 });
  assert.deepEqual(pilotFx(lower), [{ type: "pilot", command: "pwm", currentA: 10 }]);
  assert.deepEqual(contactor(lower), [], "the session goes on");
  const above = rig.feed({ type: "technician", command: "setCurrentLimit", currentA: 63 });
  assert.deepEqual(
    pilotFx(above),
    [{ type: "pilot", command: "pwm", currentA: 32 }],
    "never above the maximum",
  );
  assert.deepEqual(pilotFx(rig.feed({ type: "technician", command: "setCurrentLimit", currentA: null })), []);
  assert.equal(rig.core.snapshot().session?.limits.pwmA, 32);
  const bad = rig.feed({ type: "technician", command: "setCurrentLimit", currentA: 5 } as never);
  assert.ok(
    bad.some((e) => e.type === "rejected"),
    "below 6 A is refused",
  );
  assert.equal(rig.core.snapshot().feedback.pilot?.pwmA, 32);
});
