/**
 * A feedback handed over late (the loop stalled; after a stall due timers run before the I/O
 * poll) answers its relay's deadline when it matches the command, and only then: a relay that
 * did not move is still a timeout, a contactor that stays closed is still a weld.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { brief, Carrier, issue, Rig } from "./rig.js";

const faults = (fx: ReturnType<Rig["feed"]>) => brief(fx).filter((s) => s.startsWith("fault"));

test("field report: a contactor feedback that arrived in time but is handed over after a 1 s stall latches no CONTACTOR_CLOSE_TIMEOUT", () => {
  const rig = new Rig();
  rig.boot();
  const car = new Carrier(rig, "c1", issue());
  car.hello();
  rig.ackRecord(car.present());
  assert.deepEqual(brief(rig.feed({ type: "lockFeedback", engaged: true })).slice(0, 1), ["contactor:true"]);
  rig.mono += 1000;
  const fx = rig.feed({ type: "contactorFeedback", closed: true });
  assert.deepEqual(faults(fx), []);
  assert.equal(rig.state(), "CHARGING");
});

test("field report: a lock feedback handed over late answers its deadline, and the contactor then gets its full closing time", () => {
  const rig = new Rig();
  rig.boot();
  const car = new Carrier(rig, "c1", issue());
  car.hello();
  rig.ackRecord(car.present());
  rig.mono += rig.cfg.lockConfirmMs + 1000;
  const fx = rig.feed({ type: "lockFeedback", engaged: true });
  assert.deepEqual(faults(fx), []);
  assert.ok(brief(fx).includes("contactor:true"), brief(fx).join(" "));
  rig.meter();
  assert.deepEqual(faults(rig.advance(rig.cfg.contactorCloseMs - 1)), []);
  assert.deepEqual(faults(rig.feed({ type: "contactorFeedback", closed: true })), []);
  assert.equal(rig.state(), "CHARGING");
});

test("field report: a contactor reading open, handed over late after the opening, is no weld", () => {
  const rig = new Rig();
  rig.boot();
  rig.startCharging();
  assert.ok(brief(rig.feed({ type: "vehicle", present: false })).includes("contactor:false"));
  rig.mono += 1000;
  assert.deepEqual(faults(rig.feed({ type: "contactorFeedback", closed: false })), []);
  assert.deepEqual(rig.core.snapshot().faults, []);
});

test("field report: after a stall a contactor that did not open is still a weld, one that did not close still a timeout", () => {
  const welded = new Rig();
  welded.boot();
  welded.startCharging();
  welded.feed({ type: "vehicle", present: false });
  welded.mono += 1000;
  assert.ok(faults(welded.feed({ type: "tick" })).includes("fault:WELD"));

  const stuck = new Rig();
  stuck.boot();
  const car = new Carrier(stuck, "c1", issue());
  car.hello();
  stuck.ackRecord(car.present());
  stuck.feed({ type: "lockFeedback", engaged: true });
  stuck.mono += 1000;
  // a feedback that does not match the command answers nothing
  assert.ok(
    faults(stuck.feed({ type: "lockFeedback", engaged: true })).includes("fault:CONTACTOR_CLOSE_TIMEOUT"),
  );
});

/** A session stopped while its contactor's closing is still unconfirmed: the relay may still pass through closed. */
function stoppedWhileClosing(): Rig {
  const rig = new Rig();
  rig.boot();
  const car = new Carrier(rig, "c1", issue());
  car.hello();
  rig.ackRecord(car.present());
  assert.ok(brief(rig.feed({ type: "lockFeedback", engaged: true })).includes("contactor:true"));
  rig.meter();
  assert.ok(brief(car.stop()).includes("contactor:false"));
  return rig;
}

test("field report: a contactor told to open before its closing was confirmed, reading closed late, is no weld", () => {
  const rig = stoppedWhileClosing();
  rig.mono += 30;
  assert.deepEqual(faults(rig.feed({ type: "contactorFeedback", closed: true })), []);
  rig.mono += 20;
  const fx = rig.feed({ type: "contactorFeedback", closed: false });
  assert.deepEqual(faults(fx), []);
  assert.ok(brief(fx).includes("lock:false"), brief(fx).join(" "));
  assert.deepEqual(rig.core.snapshot().faults, []);
});

test("field report: a contactor told to open before it ever moved finishes the opening at its deadline, no fault", () => {
  const rig = stoppedWhileClosing();
  const fx = rig.advance(rig.cfg.contactorOpenMs + 1);
  assert.deepEqual(faults(fx), []);
  assert.ok(brief(fx).includes("lock:false"), brief(fx).join(" "));
});

test("a contactor told to open before its closing was confirmed, still closed at the opening deadline, is a weld", () => {
  const rig = stoppedWhileClosing();
  rig.feed({ type: "contactorFeedback", closed: true });
  assert.ok(faults(rig.advance(rig.cfg.contactorOpenMs + 1)).includes("fault:WELD"));
});

test("a relay test aborted before its contactor read closed is over at once, and a contactor closing late then stays a weld", () => {
  const rig = new Rig();
  rig.boot({ vehicle: false });
  rig.feed({ type: "technician", command: "relayTest" });
  rig.advance(10);
  const fx = rig.feed({ type: "vehicle", present: true });
  assert.ok(fx.some((e) => e.type === "relayTestDone"));
  assert.deepEqual(faults(rig.feed({ type: "contactorFeedback", closed: true })), []);
  assert.ok(faults(rig.advance(rig.cfg.contactorOpenMs + 1)).includes("fault:WELD"));
});

test("a fault while the contactor's closing is unconfirmed keeps the lock until the opening is confirmed", () => {
  const rig = new Rig();
  rig.boot();
  const car = new Carrier(rig, "c1", issue());
  car.hello();
  rig.ackRecord(car.present());
  rig.feed({ type: "lockFeedback", engaged: true });
  rig.meter();
  const fx = rig.feed({ type: "emergencyStop", active: true });
  assert.ok(brief(fx).includes("contactor:false"));
  assert.ok(!brief(fx).includes("lock:false"), brief(fx).join(" "));
  assert.deepEqual(faults(rig.feed({ type: "contactorFeedback", closed: true })), []);
  assert.ok(brief(rig.feed({ type: "contactorFeedback", closed: false })).includes("lock:false"));
});
