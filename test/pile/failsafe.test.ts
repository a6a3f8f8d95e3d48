/**
 * Fail-safes of DESIGN.md, one field report each. Every scenario checks the ORDER of effects
 * (the contactor opens first) and the configured deadline on fake monotonic time.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { PileEffect } from "../../src/pile/index.js";
import { PileState, Reason, toHex } from "../../src/protocol/index.js";
import { brief, Carrier, issue, Rig } from "./rig.js";

const ended = (fx: PileEffect[]) => fx.find((e) => e.type === "sessionEnded");
const everReleased = (rig: Rig, from = 0) => brief(rig.log.slice(from)).includes("lock:false");
const closes = (fx: PileEffect[]) => brief(fx).filter((s) => s === "contactor:true").length;

test("weld at boot: contactor reads closed at start, driven open first, lock kept engaged, FAULTED at the deadline", () => {
  const rig = new Rig();
  const fx = rig.feed({
    type: "boot",
    feedback: { contactorClosed: true, lockEngaged: true, vehicle: true, emergencyStop: false },
    floor: 0n,
  });
  assert.equal(brief(fx)[0], "contactor:false");
  assert.equal(everReleased(rig), false, "the lock is not released while the contactor may be live");
  assert.equal(rig.core.nextDeadline(), rig.mono + rig.cfg.contactorOpenMs);
  assert.deepEqual(brief(rig.advance(rig.cfg.contactorOpenMs - 1)), []);
  const weld = rig.advance(1);
  assert.deepEqual(brief(weld), ["contactor:false", "lock:true", "fault:WELD", "state:FAULTED"]);
  assert.equal(everReleased(rig), false);
  // The technician cannot clear it while the contactor reads closed.
  const refused = rig.feed({ type: "technician", command: "clearFault" });
  assert.deepEqual(
    refused.map((e) => (e.type === "rejected" ? e.code : e.type)),
    ["UNSAFE"],
  );
  assert.equal(rig.state(), "FAULTED");
});

test("contactor left energised by a crash opens when commanded: no fault, lock released after it reads open", () => {
  const rig = new Rig();
  rig.feed({
    type: "boot",
    feedback: { contactorClosed: true, lockEngaged: true, vehicle: true, emergencyStop: false },
    floor: 0n,
  });
  rig.meter();
  rig.mono += 150;
  const fx = rig.feed({ type: "contactorFeedback", closed: false });
  assert.deepEqual(brief(fx), ["lock:false"]);
  const done = rig.feed({ type: "lockFeedback", engaged: false });
  assert.deepEqual(brief(done), ["state:AVAILABLE"]);
});

test("field report: a latched weld is undone by the stop step: boot re-engages a lock found at rest while WELD is latched", () => {
  const rig = new Rig();
  // The stop step of an older build released the lock although WELD was latched; the aux
  // contact reads open now.
  const fx = rig.feed({
    type: "boot",
    feedback: { contactorClosed: false, lockEngaged: false, vehicle: true, emergencyStop: false },
    floor: 0n,
    latched: ["WELD"],
  });
  assert.deepEqual(
    brief(fx).slice(0, 2),
    ["contactor:false", "lock:true"],
    "contactor open first, then the lock engaged",
  );
  assert.equal(rig.state(), "FAULTED");
  rig.feed({ type: "lockFeedback", engaged: true });
  rig.advance(rig.cfg.lockReleaseMs + rig.cfg.lockConfirmMs);
  assert.equal(everReleased(rig), false, "never released while WELD is latched");
  assert.deepEqual(rig.core.snapshot().faults, ["WELD"]);
  assert.equal(rig.core.snapshot().phase, "idle");
});

test("boot with lockSafeState engaged: contactor open first, lock engaged, never released", () => {
  const rig = new Rig({ lockSafeState: "engaged" });
  const fx = rig.boot({ lockEngaged: false });
  assert.deepEqual(brief(fx).slice(0, 2), ["contactor:false", "lock:true"]);
  rig.feed({ type: "lockFeedback", engaged: true });
  assert.equal(rig.state(), "AVAILABLE");
  assert.equal(everReleased(rig), false);
});

test("emergency stop at boot: FAULTED from the start", () => {
  const rig = new Rig();
  const fx = rig.boot({ emergencyStop: true });
  assert.equal(brief(fx)[0], "contactor:false");
  assert.ok(brief(fx).includes("fault:EMERGENCY_STOP"));
  assert.equal(rig.state(), "FAULTED");
});

test("contactor welded after a STOP: lock stays engaged, FAULTED latched, the STOP answered FAULTED", () => {
  const rig = new Rig();
  rig.boot();
  const { carrier } = rig.startCharging();
  const mark = rig.log.length;
  const stop = carrier.stop();
  assert.equal(brief(stop)[0], "contactor:false");
  assert.deepEqual(
    brief(rig.advance(rig.cfg.contactorOpenMs - 1)).filter((s) => s.startsWith("fault")),
    [],
  );
  const weld = rig.advance(1);
  const b = brief(weld);
  assert.equal(b[0], "contactor:false");
  assert.ok(b.indexOf("sessionEnded:CARRIER_STOP") < b.indexOf("send:c1:RESULT:13"), "record before report");
  assert.ok(b.includes("fault:WELD"));
  const rec = ended(weld);
  assert.ok(rec && rec.type === "sessionEnded");
  assert.deepEqual(rec.record.faults, ["WELD"]);
  assert.deepEqual(carrier.lastReason(), { type: "RESULT", reason: Reason.FAULTED });
  assert.equal(rig.sent("c1").at(-1)?.type, "STATUS");
  assert.equal(everReleased(rig, mark), false, "never release a live plug");
  assert.equal(rig.state(), "FAULTED");
  // Latched: a weld that later reads open stays FAULTED until a technician clears it.
  rig.feed({ type: "contactorFeedback", closed: false });
  rig.advance(60_000);
  assert.equal(rig.state(), "FAULTED");
  const cleared = rig.feed({ type: "technician", command: "clearFault" });
  assert.deepEqual(brief(cleared), ["lock:false", "faultCleared", "state:FINISHING"]);
  rig.feed({ type: "lockFeedback", engaged: false });
  rig.meter();
  assert.equal(rig.state(), "AVAILABLE");
});

test("contactor welded after the plug is pulled: lock stays engaged", () => {
  const rig = new Rig();
  rig.boot();
  rig.startCharging();
  const mark = rig.log.length;
  const fx = rig.feed({ type: "vehicle", present: false });
  assert.equal(brief(fx)[0], "contactor:false");
  rig.advance(rig.cfg.contactorOpenMs);
  assert.deepEqual(rig.core.snapshot().faults, ["WELD"]);
  assert.equal(everReleased(rig, mark), false);
});

test("contactor that reads closed while idle is a weld at once", () => {
  const rig = new Rig();
  rig.boot();
  const fx = rig.feed({ type: "contactorFeedback", closed: true });
  assert.deepEqual(brief(fx), ["contactor:false", "lock:true", "fault:WELD", "state:FAULTED"]);
});

test("contactor does not close in time: opened, session ended FAULT, lock released once it reads open", () => {
  const rig = new Rig();
  rig.boot();
  const car = new Carrier(rig, "c1", issue());
  car.hello();
  rig.ackRecord(car.present());
  const closing = rig.feed({ type: "lockFeedback", engaged: true });
  assert.deepEqual(brief(closing).slice(0, 1), ["contactor:true"]);
  assert.deepEqual(
    brief(rig.advance(rig.cfg.contactorCloseMs - 1)).filter((s) => s.startsWith("fault")),
    [],
  );
  const fx = rig.advance(1);
  const b = brief(fx);
  assert.equal(b[0], "contactor:false");
  assert.ok(b.includes("fault:CONTACTOR_CLOSE_TIMEOUT"));
  assert.ok(b.includes("sessionEnded:FAULT"));
  assert.ok(b.includes("lock:false"));
  rig.feed({ type: "lockFeedback", engaged: false });
  assert.equal(rig.state(), "FAULTED");
  assert.equal(rig.sent("c1").at(-1)?.type, "STATUS");
});

test("lock does not engage in time: the contactor never closes, FAULTED", () => {
  const rig = new Rig();
  rig.boot();
  const car = new Carrier(rig, "c1", issue());
  car.hello();
  rig.ackRecord(car.present());
  rig.advance(rig.cfg.lockConfirmMs - 1);
  assert.equal(rig.state(), "PREPARING");
  const fx = rig.advance(1);
  assert.equal(brief(fx)[0], "contactor:false");
  assert.ok(brief(fx).includes("fault:LOCK_ENGAGE_TIMEOUT"));
  assert.equal(closes(rig.log), 0);
  assert.equal(rig.state(), "FAULTED");
});

test("lock feedback lost while charging: contactor opens under load first, LOCK_LOST latched", () => {
  const rig = new Rig();
  rig.boot();
  rig.startCharging();
  const fx = rig.feed({ type: "lockFeedback", engaged: false });
  const b = brief(fx);
  assert.equal(b[0], "contactor:false");
  assert.ok(b.indexOf("fault:LOCK_LOST") > 0);
  const open = rig.feed({ type: "contactorFeedback", closed: false });
  const rec = ended(open);
  assert.ok(rec && rec.type === "sessionEnded");
  assert.equal(rec.record.stopReason, "FAULT");
  assert.deepEqual(rec.record.faults, ["LOCK_LOST"]);
  assert.equal(rig.state(), "FAULTED");
});

test("meter silent while charging: the session stops meterStaleMs after the last reading", () => {
  const rig = new Rig();
  rig.boot();
  rig.startCharging();
  rig.meter(10_050);
  const last = rig.mono;
  for (let i = 0; i < 4; i++) rig.advance(1000);
  assert.equal(rig.state(), "CHARGING");
  rig.mono = last + rig.cfg.meterStaleMs - 1;
  assert.equal(rig.state(), "CHARGING");
  assert.equal(rig.core.nextDeadline(), last + rig.cfg.meterStaleMs);
  rig.mono = last + rig.cfg.meterStaleMs;
  const fx = rig.feed({ type: "tick" });
  assert.equal(brief(fx)[0], "contactor:false");
  const open = rig.feed({ type: "contactorFeedback", closed: false });
  const rec = ended(open);
  assert.ok(rec && rec.type === "sessionEnded");
  assert.equal(rec.record.stopReason, "METER_LOST");
  assert.equal(rec.record.energyWh, 50);
  rig.feed({ type: "lockFeedback", engaged: false });
  assert.deepEqual(rig.core.snapshot().faults, [], "a meter outage stops the session but latches nothing");
  assert.equal(rig.state(), "UNAVAILABLE", "a stale meter cannot take a session");
  rig.meter();
  assert.equal(rig.state(), "AVAILABLE", "a fresh reading makes the pile available again");
});

test("field report: the pile reads UNAVAILABLE while its meter is stale or its radio down, and the snapshot says why", () => {
  const rig = new Rig();
  rig.boot();
  rig.meter();
  assert.equal(rig.state(), "AVAILABLE");
  assert.deepEqual(rig.core.snapshot().unavailableBecause, []);
  rig.mono += rig.cfg.meterStaleMs;
  const err = rig.feed({ type: "meterError", code: "TIMEOUT" });
  assert.ok(brief(err).includes("state:UNAVAILABLE"), brief(err).join(" "));
  assert.deepEqual(rig.core.snapshot().unavailableBecause, ["meter stale"]);
  assert.ok(brief(rig.meter()).includes("state:AVAILABLE"));
  const down = rig.feed({ type: "radio", up: false });
  assert.ok(brief(down).includes("state:UNAVAILABLE"));
  assert.deepEqual(rig.core.snapshot().unavailableBecause, ["radio down"]);
  assert.ok(brief(rig.feed({ type: "radio", up: true })).includes("state:AVAILABLE"));
  const bad = rig.feed({ type: "radio", up: "yes" } as never);
  assert.deepEqual(
    bad.map((e) => e.type),
    ["rejected"],
  );
  assert.equal(rig.state(), "AVAILABLE");
});

test("meter erroring while charging: errors do not keep it fresh, the session stops", () => {
  const rig = new Rig();
  rig.boot();
  rig.startCharging();
  const last = rig.mono;
  for (let t = 1; t <= 5; t++) {
    rig.mono = last + t * 1000;
    rig.feed({ type: "meterError", code: "TIMEOUT" });
  }
  assert.ok(brief(rig.log).includes("sessionEnded:METER_LOST") || rig.state() === "FINISHING");
  assert.equal(rig.core.snapshot().counters.meterErrors, 5);
});

test("stale meter readings (old takenAt) neither keep a session alive nor let the contactor close", () => {
  const rig = new Rig({ lockConfirmMs: 20_000 });
  rig.boot();
  const car = new Carrier(rig, "c1", issue());
  car.hello();
  rig.ackRecord(car.present());
  rig.advance(rig.cfg.meterStaleMs);
  // Lock confirmed, but the newest reading is exactly meterStaleMs old: stale.
  rig.feed({ type: "meterReading", reading: { energyImportWh: 1, powerW: 1, takenAt: 0 } });
  const fx = rig.feed({ type: "lockFeedback", engaged: true });
  assert.equal(closes(fx), 0);
  const fresh = rig.meter();
  assert.deepEqual(
    brief(fresh).slice(0, 1),
    ["contactor:true"],
    "the contactor closes once a fresh reading arrives",
  );
});

test("lock confirmed but the meter never becomes fresh: the session ends without closing", () => {
  const rig = new Rig({ lockConfirmMs: 20_000 });
  rig.boot();
  const car = new Carrier(rig, "c1", issue());
  car.hello();
  rig.ackRecord(car.present());
  rig.advance(rig.cfg.meterStaleMs);
  rig.feed({ type: "lockFeedback", engaged: true });
  rig.advance(rig.cfg.meterStaleMs);
  assert.equal(closes(rig.log), 0);
  assert.ok(brief(rig.log).includes("sessionEnded:METER_LOST"));
});

test("emergency stop while charging: contactor opens first, FAULTED latched until released and cleared", () => {
  const rig = new Rig();
  rig.boot();
  rig.startCharging();
  const fx = rig.feed({ type: "emergencyStop", active: true });
  const b = brief(fx);
  assert.equal(b[0], "contactor:false");
  assert.ok(b.includes("fault:EMERGENCY_STOP"));
  rig.feed({ type: "contactorFeedback", closed: false });
  rig.feed({ type: "lockFeedback", engaged: false });
  assert.ok(brief(rig.log).includes("sessionEnded:EMERGENCY_STOP"), "the session record says why it ended");
  const refused = rig.feed({ type: "technician", command: "clearFault" });
  assert.equal(refused[0]?.type === "rejected" && refused[0].code, "UNSAFE");
  rig.feed({ type: "emergencyStop", active: false });
  assert.equal(rig.state(), "FAULTED");
  rig.feed({ type: "technician", command: "clearFault" });
  assert.equal(rig.state(), "AVAILABLE");
});

test("plug removed while charging: contactor opens first, session PLUG_REMOVED, lock released after", () => {
  const rig = new Rig();
  rig.boot();
  rig.startCharging();
  const fx = rig.feed({ type: "vehicle", present: false });
  assert.deepEqual(brief(fx), [
    "contactor:false",
    `send:c1:STATUS:${PileState.FINISHING}`,
    "state:FINISHING",
  ]);
  const open = rig.feed({ type: "contactorFeedback", closed: false });
  assert.deepEqual(brief(open), ["sessionEnded:PLUG_REMOVED", "lock:false"]);
  rig.feed({ type: "lockFeedback", engaged: false });
  assert.equal(rig.state(), "AVAILABLE");
});

test("lock does not release after a session: LOCK_RELEASE_TIMEOUT at the deadline", () => {
  const rig = new Rig();
  rig.boot();
  rig.startCharging();
  rig.feed({ type: "technician", command: "stop" });
  rig.feed({ type: "contactorFeedback", closed: false });
  rig.advance(rig.cfg.lockReleaseMs - 1);
  assert.equal(rig.state(), "FINISHING");
  const fx = rig.advance(1);
  assert.deepEqual(brief(fx).slice(0, 2), ["contactor:false", `send:c1:STATUS:${PileState.FAULTED}`]);
  assert.ok(brief(fx).includes("fault:LOCK_RELEASE_TIMEOUT"));
  assert.equal(rig.state(), "FAULTED");
});

test("energy limit of the code ends the session at maxEnergyWh", () => {
  const rig = new Rig();
  rig.boot();
  rig.startCharging(issue({ maxEnergyWh: 100 }));
  rig.advance(500);
  rig.meter(10_099);
  assert.equal(rig.state(), "CHARGING");
  const fx = rig.meter(10_100);
  assert.equal(brief(fx)[0], "contactor:false");
  const open = rig.feed({ type: "contactorFeedback", closed: false });
  const rec = ended(open);
  assert.ok(rec && rec.type === "sessionEnded");
  assert.equal(rec.record.stopReason, "ENERGY_LIMIT");
  assert.equal(rec.record.energyStartWh, 10_000);
  assert.equal(rec.record.energyStopWh, 10_100);
  assert.equal(rec.record.energyWh, 100);
});

test("duration limit of the code ends the session maxDurationS after the contactor closed", () => {
  const rig = new Rig();
  rig.boot();
  rig.startCharging(issue({ maxDurationS: 3 }));
  const closedAt = rig.mono;
  rig.advance(1000);
  rig.meter();
  rig.advance(1000);
  rig.meter();
  rig.mono = closedAt + 2999;
  rig.meter();
  assert.equal(rig.state(), "CHARGING");
  rig.mono = closedAt + 3000;
  const fx = rig.feed({ type: "tick" });
  assert.equal(brief(fx)[0], "contactor:false");
  rig.feed({ type: "contactorFeedback", closed: false });
  assert.ok(brief(rig.log).includes("sessionEnded:DURATION_LIMIT"));
});

test("technician stop, and clearFault refused when nothing is latched", () => {
  const rig = new Rig();
  rig.boot();
  const none = rig.feed({ type: "technician", command: "stop" });
  assert.equal(none[0]?.type === "rejected" && none[0].code, "NO_SESSION");
  const nf = rig.feed({ type: "technician", command: "clearFault" });
  assert.equal(nf[0]?.type === "rejected" && nf[0].code, "NOT_FAULTED");
  rig.startCharging();
  const fx = rig.feed({ type: "technician", command: "stop" });
  assert.equal(brief(fx)[0], "contactor:false");
  rig.feed({ type: "contactorFeedback", closed: false });
  assert.ok(brief(rig.log).includes("sessionEnded:TECHNICIAN"));
});

test("contactor drops out under load: CONTACTOR_LOST latched", () => {
  const rig = new Rig();
  rig.boot();
  rig.startCharging();
  const fx = rig.feed({ type: "contactorFeedback", closed: false });
  assert.equal(brief(fx)[0], "contactor:false");
  assert.ok(brief(fx).includes("fault:CONTACTOR_LOST"));
  assert.ok(brief(fx).includes("sessionEnded:FAULT"));
});

test("relay test: only when safe; closes, confirms, reopens, confirms", () => {
  const rig = new Rig();
  rig.boot();
  const refused = rig.feed({ type: "technician", command: "relayTest" });
  assert.equal(refused[0]?.type === "rejected" && refused[0].code, "UNSAFE", "a vehicle is plugged in");
  rig.feed({ type: "vehicle", present: false });
  const fx = rig.feed({ type: "technician", command: "relayTest" });
  assert.deepEqual(brief(fx).slice(0, 1), ["contactor:true"]);
  assert.deepEqual(brief(rig.feed({ type: "contactorFeedback", closed: true })), ["contactor:false"]);
  const done = rig.feed({ type: "contactorFeedback", closed: false });
  const r = done.find((e) => e.type === "relayTestDone");
  assert.ok(r && r.type === "relayTestDone" && r.ok);
  assert.equal(rig.state(), "AVAILABLE");
});

test("relay test finds a weld: FAULTED", () => {
  const rig = new Rig();
  rig.boot({ vehicle: false });
  rig.feed({ type: "technician", command: "relayTest" });
  rig.feed({ type: "contactorFeedback", closed: true });
  rig.advance(rig.cfg.contactorOpenMs);
  assert.deepEqual(rig.core.snapshot().faults, ["WELD"]);
  const r = rig.log.find((e) => e.type === "relayTestDone");
  assert.ok(r && r.type === "relayTestDone" && !r.ok);
});

test("a plug inserted during a relay test aborts it: the contactor opens", () => {
  const rig = new Rig();
  rig.boot({ vehicle: false });
  rig.feed({ type: "technician", command: "relayTest" });
  rig.advance(10);
  const fx = rig.feed({ type: "vehicle", present: true });
  assert.equal(brief(fx)[0], "contactor:false");
  const r = fx.find((e) => e.type === "relayTestDone");
  assert.ok(r && r.type === "relayTestDone" && !r.ok, "it never read closed: over at once");
  assert.equal(rig.state(), "AVAILABLE");
});

test("UNAVAILABLE for maintenance, and back", () => {
  const rig = new Rig();
  rig.boot();
  rig.feed({ type: "technician", command: "setAvailable", available: false });
  assert.equal(rig.state(), "UNAVAILABLE");
  rig.feed({ type: "technician", command: "setAvailable", available: true });
  assert.equal(rig.state(), "AVAILABLE");
});

test("the store refusing a code record: RESULT FAULTED, nothing moves, the code can be presented again", () => {
  const rig = new Rig();
  rig.boot();
  const issued = issue();
  const car = new Carrier(rig, "c1", issued);
  car.hello();
  const failed = rig.ackRecord(car.present(), false);
  assert.deepEqual(brief(failed), ["send:c1:RESULT:13", "state:AVAILABLE"]);
  car.hello();
  const again = car.present();
  assert.ok(brief(again).includes("recordCode"));
});

test("no acknowledgement of the code record in time: RESULT FAULTED at recordTimeoutMs", () => {
  const rig = new Rig();
  rig.boot();
  const car = new Carrier(rig, "c1", issue());
  car.hello();
  car.present();
  rig.advance(rig.cfg.recordTimeoutMs - 1);
  assert.equal(rig.state(), "AUTHORIZING");
  rig.advance(1);
  assert.deepEqual(car.lastReason(), { type: "RESULT", reason: Reason.FAULTED });
  assert.equal(closes(rig.log), 0);
});

test("the plug pulled while the code is being recorded: NO_VEHICLE, nothing moves", () => {
  const rig = new Rig();
  rig.boot();
  const car = new Carrier(rig, "c1", issue());
  car.hello();
  const fx = car.present();
  rig.feed({ type: "vehicle", present: false });
  rig.ackRecord(fx);
  assert.deepEqual(car.lastReason(), { type: "RESULT", reason: Reason.NO_VEHICLE });
  assert.equal(brief(rig.log).includes("lock:true"), false);
});

test("a pile whose lock rests engaged (lockSafeState engaged) keeps it engaged after a session and after a fault is cleared", () => {
  const rig = new Rig({ lockSafeState: "engaged" });
  rig.boot({ lockEngaged: true });
  rig.startCharging();
  const from = rig.log.length;
  rig.feed({ type: "technician", command: "stop" });
  rig.feed({ type: "contactorFeedback", closed: false });
  assert.ok(brief(rig.log.slice(from)).includes("sessionEnded:TECHNICIAN"));
  assert.equal(everReleased(rig, from), false, "the lock stays at its rest position, engaged");
  assert.equal(rig.state(), "AVAILABLE");
  rig.feed({ type: "emergencyStop", active: true });
  rig.feed({ type: "emergencyStop", active: false });
  const cleared = rig.feed({ type: "technician", command: "clearFault" });
  assert.ok(cleared.some((e) => e.type === "faultCleared"));
  assert.equal(everReleased(rig, from), false);
  assert.equal(rig.state(), "AVAILABLE");
});

test("field report: inputs that go quiet: a feedback line that cannot be read opens the contactor first, FEEDBACK_UNREADABLE latched", () => {
  const rig = new Rig();
  rig.boot();
  rig.startCharging();
  assert.equal(rig.core.snapshot().phase, "charging");
  const from = rig.log.length;
  const fx = rig.feed({ type: "inputHealth", line: "contactorFeedback", readable: false });
  const b = brief(fx);
  assert.equal(b[0], "contactor:false", "contactor opens first");
  assert.ok(b.includes("fault:FEEDBACK_UNREADABLE"), b.join(" "));
  assert.equal(b.indexOf("lock:false"), -1, "the lock is not released on an unknown contactor");
  assert.equal(rig.state(), "FAULTED");
  assert.ok(rig.core.snapshot().faults.includes("FEEDBACK_UNREADABLE"), "visible in status");
  // the contactor never confirmed open: a weld for all the pile can tell, the plug stays locked
  rig.advance(rig.cfg.contactorOpenMs + rig.cfg.lockReleaseMs);
  assert.equal(everReleased(rig, from), false);
  assert.ok(rig.core.snapshot().faults.includes("WELD"));
});

test("FEEDBACK_UNREADABLE cannot be cleared while the line still cannot be read", () => {
  const rig = new Rig();
  rig.boot();
  rig.feed({ type: "inputHealth", line: "lockFeedback", readable: false });
  assert.deepEqual(rig.core.snapshot().faults, ["FEEDBACK_UNREADABLE"]);
  const refused = rig.feed({ type: "technician", command: "clearFault" });
  assert.deepEqual(
    refused.map((e) => (e.type === "rejected" ? `${e.code}:${e.detail}` : e.type)),
    ["UNSAFE:cannot read lockFeedback"],
  );
  rig.feed({ type: "inputHealth", line: "lockFeedback", readable: true });
  const cleared = rig.feed({ type: "technician", command: "clearFault" });
  const codes = cleared.flatMap((e) => (e.type === "faultCleared" ? e.codes : []));
  assert.deepEqual(codes, ["FEEDBACK_UNREADABLE"]);
  assert.equal(rig.state(), "AVAILABLE");
  const bad = rig.feed({ type: "inputHealth", line: "plug", readable: false } as never);
  assert.deepEqual(
    bad.map((e) => (e.type === "rejected" ? e.code : e.type)),
    ["BAD_INPUT"],
  );
});

test("field report: the lock moves only after the session's end is recorded and the carrier told", () => {
  const rig = new Rig();
  rig.boot();
  const { carrier } = rig.startCharging();
  carrier.hello();
  carrier.stop();
  const open = rig.feed({ type: "contactorFeedback", closed: false });
  const b = brief(open);
  const recorded = b.indexOf("sessionEnded:CARRIER_STOP");
  const told = b.indexOf(`send:c1:RESULT:${Reason.STOPPED}`);
  const released = b.indexOf("lock:false");
  assert.ok(recorded >= 0 && recorded < told && told < released, b.join(" "));
  // Whatever the batch, a lock release never precedes a session record of the same batch.
  for (const { effects } of rig.batches) {
    const bb = brief(effects);
    const rel = bb.indexOf("lock:false");
    if (rel >= 0) assert.ok(!bb.slice(rel).some((e) => e.startsWith("session")), bb.join(" "));
  }
});

test("field report: a STATUS never carries more energy than the durable record holds", () => {
  const rig = new Rig();
  rig.boot();
  rig.startCharging();
  const start = rig.energyWh;
  rig.mono += 400;
  rig.meter(start + 1.3);
  rig.advance(rig.cfg.statusIntervalMs - 400);
  rig.mono += 400;
  rig.meter(start + 3);
  rig.feed({ type: "vehicle", present: false });
  rig.feed({ type: "contactorFeedback", closed: false });
  rig.feed({ type: "lockFeedback", engaged: false });
  let recorded = 0;
  let statuses = 0;
  for (const e of rig.log) {
    if (e.type === "sessionUpdate" || e.type === "sessionEnded") recorded = e.record.energyWh;
    if (e.type === "send" && e.message.type === "STATUS") {
      statuses++;
      assert.ok(e.message.energyWh <= recorded, `STATUS ${e.message.energyWh} Wh, record ${recorded} Wh`);
    }
  }
  assert.ok(statuses >= 3);
  const finishing = rig.sent("c1").find((m) => m.type === "STATUS" && m.state === PileState.FINISHING);
  assert.ok(finishing?.type === "STATUS" && finishing.energyWh === 3, JSON.stringify(finishing));
});

test("field report: a code spent without moving anything has its session record closed", () => {
  const rig = new Rig();
  rig.boot();
  const car = new Carrier(rig, "c1", issue());
  car.hello();
  const fx = car.present();
  const rec = fx.find((e) => e.type === "recordCode");
  assert.ok(rec?.type === "recordCode");
  assert.equal(toHex(rec.session.codeId), toHex(rec.codeId));
  assert.equal(rec.session.carrier, car.issued.claims.carrier);
  assert.equal(rec.session.deviceId, car.issued.claims.deviceId);
  // The plug goes before the record is acknowledged: the code is spent, nothing moves.
  rig.feed({ type: "vehicle", present: false });
  const acked = rig.ackRecord(fx);
  const closed = ended(acked);
  assert.ok(closed?.type === "sessionEnded");
  assert.equal(toHex(closed.record.sessionId), toHex(rec.session.sessionId));
  assert.equal(closed.record.stopReason, "PLUG_REMOVED");
  assert.equal(closed.record.energyWh, 0);
  assert.deepEqual(car.lastReason(), { type: "RESULT", reason: Reason.NO_VEHICLE });
  assert.equal(
    brief(acked).some((e) => e.startsWith("lock") || e.startsWith("contactor")),
    false,
  );
  // Acknowledged only after the pile gave up: the record the store opened is closed.
  rig.feed({ type: "vehicle", present: true });
  const late = new Carrier(rig, "c2", issue());
  late.hello();
  const lateFx = late.present();
  rig.advance(rig.cfg.recordTimeoutMs);
  assert.deepEqual(late.lastReason(), { type: "RESULT", reason: Reason.FAULTED });
  const after = rig.ackRecord(lateFx);
  const lateEnd = ended(after);
  assert.ok(lateEnd?.type === "sessionEnded", brief(after).join(" "));
  assert.equal(lateEnd.record.energyWh, 0);
  assert.equal(
    brief(after).some((e) => e.startsWith("lock") || e.startsWith("rejected")),
    false,
  );
});

test("field report: session starts and ends, faults and their clearing are told by their effects, not logged twice", () => {
  const rig = new Rig();
  rig.boot();
  const { carrier } = rig.startCharging();
  carrier.stop();
  rig.advance(rig.cfg.contactorOpenMs);
  rig.feed({ type: "contactorFeedback", closed: false });
  rig.feed({ type: "technician", command: "clearFault" });
  const kinds = new Set(rig.log.map((e) => e.type));
  for (const k of ["sessionStarted", "sessionEnded", "fault", "faultCleared"] as const)
    assert.ok(kinds.has(k), k);
  const events = rig.log.flatMap((e) => (e.type === "log" ? [e.event] : []));
  for (const twice of ["session.started", "session.ended", "fault", "fault.cleared"])
    assert.ok(!events.includes(twice), `${twice} is logged besides its effect: ${events.join(" ")}`);
});

test("field report: a store that cannot take a session's records makes the pile UNAVAILABLE with the reason; codes are refused FAULTED, none recorded", () => {
  const rig = new Rig();
  rig.boot();
  rig.meter();
  const fx = rig.feed({
    type: "store",
    problems: ["store fault: sessions.finish not written (SQLITE_FULL)"],
  });
  assert.ok(brief(fx).includes("state:UNAVAILABLE"), brief(fx).join(" "));
  assert.deepEqual(rig.core.snapshot().unavailableBecause, [
    "store fault: sessions.finish not written (SQLITE_FULL)",
  ]);
  const carrier = new Carrier(rig, "c1", issue());
  rig.feed({ type: "connected", connId: "c1" });
  carrier.hello();
  const presented = carrier.present();
  assert.equal(
    presented.some((e) => e.type === "recordCode"),
    false,
    "no code is recorded while the store is faulted",
  );
  assert.deepEqual(carrier.lastReason(), { type: "RESULT", reason: Reason.FAULTED });
  assert.ok(brief(rig.feed({ type: "store", problems: [] })).includes("state:AVAILABLE"));
  for (const bad of [{ problems: "full" }, { problems: [""] }, { problems: Array(9).fill("x") }]) {
    assert.deepEqual(
      rig.feed({ type: "store", ...bad } as never).map((e) => e.type),
      ["rejected"],
    );
  }
  assert.equal(rig.state(), "AVAILABLE");
  rig.startCharging();
});
