/**
 * The contactor interlock: the guard function on its own, and the whole core under random
 * input sequences (fast-check): no batch ever leaves the contactor commanded closed while any
 * condition is false, and every fault opens the contactor first.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import {
  contactorInterlocks,
  type InterlockFacts,
  mayCloseContactor,
  type PileEffect,
} from "../../src/pile/index.js";
import { brief, Carrier, issue, Rig } from "./rig.js";

const allTrue: InterlockFacts = {
  purpose: "session",
  codeAccepted: true,
  lockConfirmed: true,
  vehicle: true,
  faultLatched: false,
  emergencyStop: false,
  meterFresh: true,
};

test("the guard: all conditions hold → may close; each failing condition alone forbids it", () => {
  assert.equal(mayCloseContactor(allTrue), true);
  assert.equal(mayCloseContactor({ ...allTrue, vehicle: undefined }), true, "cannot tell = pass");
  const single: [Partial<InterlockFacts>, string][] = [
    [{ codeAccepted: false }, "NO_CODE"],
    [{ lockConfirmed: false }, "LOCK"],
    [{ vehicle: false }, "VEHICLE"],
    [{ faultLatched: true }, "FAULT"],
    [{ emergencyStop: true }, "EMERGENCY_STOP"],
    [{ meterFresh: false }, "METER"],
  ];
  for (const [change, why] of single) assert.deepEqual(contactorInterlocks({ ...allTrue, ...change }), [why]);
});

test("the guard for a relay test: nothing plugged in (and the pile must be able to tell), no fault", () => {
  const relay: InterlockFacts = { ...allTrue, purpose: "relayTest", codeAccepted: false, vehicle: false };
  assert.equal(mayCloseContactor(relay), true);
  assert.deepEqual(contactorInterlocks({ ...relay, vehicle: undefined }), ["VEHICLE"]);
  assert.deepEqual(contactorInterlocks({ ...relay, vehicle: true }), ["VEHICLE"]);
  assert.deepEqual(contactorInterlocks({ ...relay, faultLatched: true, emergencyStop: true }), [
    "FAULT",
    "EMERGENCY_STOP",
  ]);
});

test("property: the guard allows closing exactly when every condition holds", () => {
  fc.assert(
    fc.property(
      fc.record({
        purpose: fc.constant("session" as const),
        codeAccepted: fc.boolean(),
        lockConfirmed: fc.boolean(),
        vehicle: fc.constantFrom(true, false, undefined),
        faultLatched: fc.boolean(),
        emergencyStop: fc.boolean(),
        meterFresh: fc.boolean(),
      }),
      (f) => {
        const all =
          f.codeAccepted &&
          f.lockConfirmed &&
          f.vehicle !== false &&
          !f.faultLatched &&
          !f.emergencyStop &&
          f.meterFresh;
        assert.equal(mayCloseContactor(f), all);
      },
    ),
  );
});

type Action =
  | { k: "tick"; dt: number }
  | { k: "lockFb"; v: boolean }
  | { k: "contactorFb"; v: boolean }
  | { k: "follow" }
  | { k: "vehicle"; v: boolean | undefined }
  | { k: "estop"; v: boolean }
  | { k: "meter"; age: number }
  | { k: "meterError" }
  | { k: "session"; ack: boolean }
  | { k: "stop" }
  | { k: "garbage"; bytes: Uint8Array }
  | { k: "tech"; cmd: "stop" | "clearFault" | "relayTest" | "available" | "unavailable" }
  | { k: "disconnect" };

const action: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({ k: fc.constant("tick" as const), dt: fc.integer({ min: 0, max: 1500 }) }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ k: fc.constant("tick" as const), dt: fc.integer({ min: 4000, max: 9000 }) }),
  },
  { weight: 3, arbitrary: fc.record({ k: fc.constant("lockFb" as const), v: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant("contactorFb" as const), v: fc.boolean() }) },
  { weight: 16, arbitrary: fc.constant({ k: "follow" as const }) },
  {
    weight: 2,
    arbitrary: fc.record({ k: fc.constant("vehicle" as const), v: fc.constantFrom(true, false, undefined) }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("estop" as const), v: fc.boolean() }) },
  {
    weight: 6,
    arbitrary: fc.record({ k: fc.constant("meter" as const), age: fc.integer({ min: 0, max: 8000 }) }),
  },
  { weight: 1, arbitrary: fc.constant({ k: "meterError" as const }) },
  {
    weight: 5,
    arbitrary: fc.record({
      k: fc.constant("session" as const),
      ack: fc.integer({ min: 0, max: 4 }).map((n) => n > 0),
    }),
  },
  { weight: 2, arbitrary: fc.constant({ k: "stop" as const }) },
  {
    weight: 1,
    arbitrary: fc.record({ k: fc.constant("garbage" as const), bytes: fc.uint8Array({ maxLength: 120 }) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant("tech" as const),
      cmd: fc.constantFrom("stop", "clearFault", "relayTest", "available", "unavailable") as fc.Arbitrary<
        "stop" | "clearFault" | "relayTest" | "available" | "unavailable"
      >,
    }),
  },
  { weight: 1, arbitrary: fc.constant({ k: "disconnect" as const }) },
);

/** Runs one random sequence, checking the invariants after every batch. Returns whether it charged. */
function run(actions: Action[], bootContactorClosed: boolean, slowLock: boolean): boolean {
  // A slow lock lets the meter go stale between the PRESENT and the lock's confirmation.
  const rig = new Rig(slowLock ? { lockConfirmMs: 20_000 } : {});
  const m = {
    lockFb: false,
    contactorFb: bootContactorClosed,
    vehicle: true as boolean | undefined,
    estop: false,
    takenAt: -Infinity,
    contactorCmd: false,
    lockCmd: undefined as boolean | undefined,
    relayTest: false,
  };
  let charged = false;
  let car: Carrier | undefined;
  let connSeq = 0;

  const check = (label: string, fx: PileEffect[], opensFirst: boolean) => {
    assert.ok(Array.isArray(fx), `${label}: an array`);
    const b = brief(fx);
    if (opensFirst || fx.some((e) => e.type === "fault"))
      assert.equal(b[0], "contactor:false", `${label}: the contactor opens first (${b.join(" ")})`);
    for (const e of fx) {
      if (e.type === "contactor") m.contactorCmd = e.closed;
      if (e.type === "lock") m.lockCmd = e.engaged;
      if (e.type === "relayTestDone") m.relayTest = false;
    }
    if (!m.contactorCmd) return;
    const snap = rig.core.snapshot();
    const why = `${label}: contactor commanded closed with ${JSON.stringify({ ...m, takenAt: rig.mono - m.takenAt, snap: snap.phase, faults: snap.faults })}`;
    assert.deepEqual(snap.faults, [], why);
    assert.equal(m.estop, false, why);
    if (m.relayTest) {
      assert.equal(m.vehicle, false, why);
      return;
    }
    assert.ok(snap.session !== undefined && (snap.phase === "closing" || snap.phase === "charging"), why);
    assert.equal(m.lockCmd, true, why);
    assert.equal(m.lockFb, true, why);
    assert.notEqual(m.vehicle, false, why);
    assert.ok(rig.mono - m.takenAt < rig.cfg.meterStaleMs, why);
    if (snap.phase === "charging") charged = true;
  };

  check(
    "boot",
    rig.feed({
      type: "boot",
      feedback: { contactorClosed: bootContactorClosed, lockEngaged: false, vehicle: true },
      floor: 0n,
    }),
    true,
  );
  for (const a of actions) {
    const wasClosed = m.contactorCmd;
    let fx: PileEffect[] = [];
    let opensFirst = false;
    switch (a.k) {
      case "tick":
        rig.mono += a.dt;
        fx = rig.feed({ type: "tick" });
        break;
      case "lockFb":
        m.lockFb = a.v;
        fx = rig.feed({ type: "lockFeedback", engaged: a.v });
        // A lock lost under load opens the contactor first; a relay test runs with the lock at rest.
        opensFirst = wasClosed && !a.v && !m.relayTest;
        break;
      case "contactorFb":
        m.contactorFb = a.v;
        fx = rig.feed({ type: "contactorFeedback", closed: a.v });
        break;
      case "follow":
        if (m.lockCmd !== undefined && m.lockFb !== m.lockCmd) {
          m.lockFb = m.lockCmd;
          fx = rig.feed({ type: "lockFeedback", engaged: m.lockCmd });
        } else if (m.contactorFb !== m.contactorCmd) {
          m.contactorFb = m.contactorCmd;
          fx = rig.feed({ type: "contactorFeedback", closed: m.contactorCmd });
        } else {
          m.takenAt = rig.mono;
          fx = rig.meter(rig.energyWh + 1);
        }
        break;
      case "vehicle":
        // A plug pulled while charging opens the contactor first; during a relay test (which needs
        // no vehicle) it is a vehicle appearing, or the pile losing sight of it, that does.
        opensFirst = wasClosed && (m.relayTest ? a.v !== false : a.v === false);
        m.vehicle = a.v;
        fx = rig.feed({ type: "vehicle", present: a.v });
        break;
      case "estop":
        m.estop = a.v;
        fx = rig.feed({ type: "emergencyStop", active: a.v });
        opensFirst = a.v;
        break;
      case "meter": {
        const takenAt = Math.max(0, rig.mono - a.age);
        m.takenAt = Math.max(m.takenAt, takenAt);
        fx = rig.feed({
          type: "meterReading",
          reading: { energyImportWh: rig.energyWh, powerW: 5000, takenAt },
        });
        break;
      }
      case "meterError":
        fx = rig.feed({ type: "meterError", code: "TIMEOUT" });
        break;
      case "session": {
        // The daemon polls the meter about once a second: a session usually meets a fresh reading.
        m.takenAt = rig.mono;
        check("meter", rig.meter(), false);
        car = new Carrier(rig, `s${connSeq++}`, issue());
        check("hello", car.hello(), false);
        fx = car.present();
        check("present", fx, false);
        fx = rig.ackRecord(fx, a.ack);
        break;
      }
      case "stop":
        if (!car) continue;
        check("stop-hello", car.hello(), false);
        fx = car.stop();
        break;
      case "garbage":
        fx = rig.feed({ type: "message", connId: "g", bytes: a.bytes });
        break;
      case "tech": {
        const input =
          a.cmd === "available" || a.cmd === "unavailable"
            ? ({ type: "technician", command: "setAvailable", available: a.cmd === "available" } as const)
            : ({ type: "technician", command: a.cmd } as const);
        fx = rig.feed(input);
        if (a.cmd === "relayTest" && brief(fx).includes("contactor:true")) m.relayTest = true;
        break;
      }
      case "disconnect":
        if (car) fx = rig.feed({ type: "disconnected", connId: car.connId });
        break;
    }
    check(a.k, fx, opensFirst);
  }
  return charged;
}

test("property: no random input sequence closes the contactor while a condition is false; faults open it first", () => {
  let charged = 0;
  fc.assert(
    fc.property(
      fc.array(action, { minLength: 1, maxLength: 60 }),
      fc.integer({ min: 0, max: 4 }),
      fc.boolean(),
      (actions, w, slowLock) => {
        if (run(actions, w === 0, slowLock)) charged++;
      },
    ),
    { numRuns: 600 },
  );
  // The property is only worth something if the random plant often reached CHARGING.
  assert.ok(charged >= 20, `only ${charged} runs reached CHARGING`);
});
