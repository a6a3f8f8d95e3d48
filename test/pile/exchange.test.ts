import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { PileCore, type PileEffect, validateInput } from "../../src/pile/index.js";
import {
  deriveVerifySecret,
  deviceProof,
  encodeMessage,
  type PileMessage,
  PileState,
  Reason,
  toHex,
} from "../../src/protocol/index.js";
import { nodeSuite } from "../../src/protocol/node-suite.js";
import { brief, Carrier, issue, KEY, KEY_ID, Rig } from "./rig.js";

const result = (reason: number) => ({ type: "RESULT", reason });
const error = (reason: number) => ({ type: "ERROR", reason });
const moves = (fx: PileEffect[]) => fx.filter((e) => e.type === "contactor" || e.type === "lock");

function booted(cfg = {}): Rig {
  const rig = new Rig(cfg);
  rig.boot();
  return rig;
}

test("HELLO is answered with a CHALLENGE whose pileProof the carrier verifies", () => {
  const rig = booted();
  const car = new Carrier(rig, "c1", issue());
  const fx = car.hello();
  const ch = fx.find((e) => e.type === "send");
  assert.ok(ch && ch.type === "send" && ch.message.type === "CHALLENGE");
  assert.equal(ch.message.pileNonce.length, 16);
  assert.equal(car.pileAuthentic, true);
  assert.deepEqual(moves(fx), []);
});

test("every HELLO gets a fresh pile nonce", () => {
  const rig = booted();
  const car = new Carrier(rig, "c1", issue());
  car.hello();
  const n1 = toHex(car.pileNonce!);
  car.hello();
  assert.notEqual(toHex(car.pileNonce!), n1);
});

test("HELLO refusals: version, unknown key", () => {
  const rig = booted();
  const car = new Carrier(rig, "c1", issue());
  car.hello({ version: 2 });
  assert.deepEqual(car.lastReason(), error(Reason.UNSUPPORTED_VERSION));
  car.hello({ keyId: KEY_ID + 1 });
  assert.deepEqual(car.lastReason(), error(Reason.UNKNOWN_KEY));
  // A refused HELLO leaves no exchange behind.
  car.present();
  assert.deepEqual(car.lastReason(), error(Reason.OUT_OF_ORDER));
});

test("PRESENT or STOP without a HELLO, and a second PRESENT, are OUT_OF_ORDER", () => {
  const rig = booted();
  const car = new Carrier(rig, "c1", issue());
  car.present();
  assert.deepEqual(car.lastReason(), error(Reason.OUT_OF_ORDER));
  car.stop();
  assert.deepEqual(car.lastReason(), error(Reason.OUT_OF_ORDER));
  car.hello();
  car.present({ proof: new Uint8Array(32) });
  assert.deepEqual(car.lastReason(), result(Reason.BAD_PROOF));
  car.present();
  assert.deepEqual(car.lastReason(), error(Reason.OUT_OF_ORDER));
});

test("a wrong deviceProof is BAD_PROOF and moves nothing", () => {
  const rig = booted();
  const car = new Carrier(rig, "c1", issue());
  car.hello();
  const fx = car.present({ proof: new Uint8Array(32).fill(1) });
  assert.deepEqual(car.lastReason(), result(Reason.BAD_PROOF));
  assert.deepEqual(moves(fx), []);
  assert.equal(
    fx.some((e) => e.type === "recordCode"),
    false,
  );
  assert.equal(rig.core.snapshot().counters.badProofs, 1);
});

test("the deviceProof is checked before the code: garbage code with a bad proof is BAD_PROOF", () => {
  const rig = booted();
  const car = new Carrier(rig, "c1", issue());
  car.hello();
  car.present({ proof: new Uint8Array(32), code: new Uint8Array(80) });
  assert.deepEqual(car.lastReason(), result(Reason.BAD_PROOF));
});

test("code checks answer in §2 order", async (t) => {
  const wall = new Rig().wall!;
  const cases: { name: string; carrier: (rig: Rig) => Carrier; expect: number }[] = [
    {
      name: "tampered ciphertext → BAD_CODE",
      carrier: (rig) => {
        const a = issue();
        const code = a.code.slice();
        code[40] = code[40]! ^ 1;
        return new Carrier(rig, "c1", { ...a, code });
      },
      expect: Reason.BAD_CODE,
    },
    {
      name: "code under a key the pile does not hold → UNKNOWN_KEY",
      carrier: (rig) => {
        const foreign = issue({ keyId: 77, key: new Uint8Array(32).fill(9) });
        // The HELLO names a held key, so a CHALLENGE comes; the code itself is foreign.
        const v = deriveVerifySecret(nodeSuite, KEY, foreign.codeId);
        return new Carrier(rig, "c1", { ...foreign, keyId: KEY_ID, v });
      },
      expect: Reason.UNKNOWN_KEY,
    },
    {
      name: "HELLO for another code id → CODE_MISMATCH",
      carrier: (rig) => {
        const a = issue();
        const b = issue();
        return new Carrier(rig, "c1", { ...a, codeId: b.codeId, v: b.v });
      },
      expect: Reason.CODE_MISMATCH,
    },
    {
      name: "another pile's code → WRONG_PILE",
      carrier: (rig) => new Carrier(rig, "c1", issue({ pileId: "PILE-8" })),
      expect: Reason.WRONG_PILE,
    },
    {
      name: "issued beyond the skew in the future → NOT_YET_VALID",
      carrier: (rig) => new Carrier(rig, "c1", issue({ issuedAt: BigInt(wall + 120_001) })),
      expect: Reason.NOT_YET_VALID,
    },
    {
      name: "window plus skew over → EXPIRED",
      carrier: (rig) =>
        new Carrier(rig, "c1", issue({ issuedAt: BigInt(wall - 60_000 - 120_001), validFor: 60 })),
      expect: Reason.EXPIRED,
    },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      const rig = booted();
      const car = c.carrier(rig);
      car.hello();
      assert.equal(car.pileNonce?.length, 16);
      const fx = car.present();
      assert.deepEqual(car.lastReason(), result(c.expect));
      assert.deepEqual(moves(fx), []);
      assert.equal(rig.state(), "AVAILABLE");
    });
  }
});

test("the edges of the window with skew are inclusive", () => {
  const rig = booted();
  const wall = rig.wall!;
  const early = new Carrier(rig, "c1", issue({ issuedAt: BigInt(wall + 120_000) }));
  early.hello();
  early.present();
  assert.equal(
    rig.log.some((e) => e.type === "recordCode"),
    true,
  );
  const rig2 = booted();
  const late = new Carrier(rig2, "c1", issue({ issuedAt: BigInt(wall - 60_000 - 120_000), validFor: 60 }));
  late.hello();
  late.present();
  assert.equal(
    rig2.log.some((e) => e.type === "recordCode"),
    true,
  );
});

test("ACCEPTED: the code is recorded before anything moves, then lock, session, RESULT, STATUS", () => {
  const rig = booted();
  const car = new Carrier(rig, "c1", issue());
  car.hello();
  const fx = car.present();
  assert.deepEqual(brief(fx), ["recordCode", "state:AUTHORIZING"]);
  const rec = fx[0];
  assert.ok(rec && rec.type === "recordCode");
  assert.equal(toHex(rec.codeId), toHex(car.issued.codeId));
  assert.equal(rec.expiresAt, car.issued.claims.issuedAt + 3600_000n + 120_000n);
  const acked = rig.ackRecord(fx);
  assert.deepEqual(brief(acked), [
    "lock:true",
    "sessionStarted",
    "send:c1:RESULT:0",
    `send:c1:STATUS:${PileState.PREPARING}`,
    "state:PREPARING",
  ]);
  const res = acked.find((e) => e.type === "send" && e.message.type === "RESULT");
  assert.ok(res && res.type === "send" && res.message.type === "RESULT");
  assert.equal(res.message.sessionId?.length, 16);
  assert.equal(rig.core.snapshot().session?.sessionId, toHex(res.message.sessionId!));
});

test("preconditions: BUSY while a session runs, FAULTED when latched or UNAVAILABLE, NO_VEHICLE", () => {
  const rig = booted();
  rig.startCharging();
  const other = new Carrier(rig, "c2", issue());
  other.hello();
  other.present();
  assert.deepEqual(other.lastReason(), result(Reason.BUSY));

  const r2 = booted();
  r2.feed({ type: "technician", command: "setAvailable", available: false });
  assert.equal(r2.state(), "UNAVAILABLE");
  const c2 = new Carrier(r2, "c1", issue());
  c2.hello();
  c2.present();
  assert.deepEqual(c2.lastReason(), result(Reason.FAULTED));

  const r3 = booted();
  r3.feed({ type: "emergencyStop", active: true });
  r3.feed({ type: "emergencyStop", active: false });
  assert.equal(r3.state(), "FAULTED");
  const c3 = new Carrier(r3, "c1", issue());
  c3.hello();
  c3.present();
  assert.deepEqual(c3.lastReason(), result(Reason.FAULTED));

  const r4 = booted();
  r4.feed({ type: "vehicle", present: false });
  const c4 = new Carrier(r4, "c1", issue());
  c4.hello();
  c4.present();
  assert.deepEqual(c4.lastReason(), result(Reason.NO_VEHICLE));

  const r5 = booted();
  r5.feed({ type: "vehicle", present: undefined });
  const c5 = new Carrier(r5, "c1", issue());
  c5.hello();
  assert.deepEqual(brief(c5.present()), ["recordCode", "state:AUTHORIZING"]);
});

test("a meter that has gone silent refuses a PRESENT as FAULTED", () => {
  const rig = booted();
  rig.advance(5000);
  const car = new Carrier(rig, "c1", issue());
  car.hello();
  car.present();
  assert.deepEqual(car.lastReason(), result(Reason.FAULTED));
});

test("exchange timeout: ERROR TIMEOUT 10 s after HELLO, and the exchange is gone", () => {
  const rig = booted();
  const car = new Carrier(rig, "c1", issue());
  car.hello();
  assert.equal(rig.core.nextDeadline(), rig.mono + 10_000);
  rig.advance(9999);
  assert.equal(car.lastReason(), undefined);
  const fx = rig.advance(1);
  assert.deepEqual(brief(fx), ["send:c1:ERROR:16"]);
  car.present();
  assert.deepEqual(car.lastReason(), error(Reason.OUT_OF_ORDER));
});

test("the exchange clock stops when the PRESENT arrives", () => {
  const rig = booted();
  const car = new Carrier(rig, "c1", issue());
  car.hello();
  rig.advance(4000);
  rig.meter();
  car.present({ proof: new Uint8Array(32) });
  rig.advance(20_000);
  assert.equal(
    rig.sent("c1").some((m) => m.type === "ERROR" && m.reason === Reason.TIMEOUT),
    false,
  );
});

test("a new HELLO starts a new exchange: the old nonce no longer verifies", () => {
  const rig = booted();
  const car = new Carrier(rig, "c1", issue());
  car.hello();
  const oldPile = car.pileNonce!;
  const oldClient = car.clientNonce;
  car.hello();
  car.present({ proof: deviceProof(nodeSuite, car.issued.v, car.issued.codeId, oldPile, oldClient) });
  assert.deepEqual(car.lastReason(), result(Reason.BAD_PROOF));
  car.hello();
  car.present();
  assert.equal(
    rig.log.some((e) => e.type === "recordCode"),
    true,
  );
});

test("STOP: bad proof, no session, another code", () => {
  const rig = booted();
  const car = new Carrier(rig, "c1", issue());
  car.hello();
  car.stop({ proof: new Uint8Array(32) });
  assert.deepEqual(car.lastReason(), result(Reason.BAD_PROOF));
  car.stop();
  assert.deepEqual(car.lastReason(), result(Reason.OUT_OF_ORDER));
  rig.startCharging(issue(), "c2");
  car.stop();
  assert.deepEqual(car.lastReason(), result(Reason.OUT_OF_ORDER));
  assert.equal(rig.state(), "CHARGING");
});

test("the session survives its carrier's disconnect; a STOP from a later connection ends it", () => {
  const rig = booted();
  const issued = issue();
  const { carrier } = rig.startCharging(issued, "c1");
  rig.feed({ type: "disconnected", connId: "c1" });
  rig.advance(3000);
  rig.meter();
  assert.equal(rig.state(), "CHARGING");
  const later = new Carrier(rig, "c9", issued);
  rig.feed({ type: "connected", connId: "c9" });
  later.hello();
  const fx = later.stop();
  assert.deepEqual(brief(fx), [
    "contactor:false",
    `send:c9:STATUS:${PileState.FINISHING}`,
    "state:FINISHING",
  ]);
  assert.equal(later.lastReason(), undefined, "no answer before the contactor reads open");
  const open = rig.feed({ type: "contactorFeedback", closed: false });
  assert.deepEqual(brief(open), ["sessionEnded:CARRIER_STOP", "send:c9:RESULT:17", "lock:false"]);
  const released = rig.feed({ type: "lockFeedback", engaged: false });
  assert.deepEqual(brief(released), [`send:c9:STATUS:${PileState.AVAILABLE}`, "state:AVAILABLE"]);
  assert.equal(carrier.rig.sent("c1").at(-1)?.type, "STATUS");
});

test("disconnect mid-exchange leaves nothing behind", () => {
  const rig = booted();
  const car = new Carrier(rig, "c1", issue());
  car.hello();
  rig.feed({ type: "disconnected", connId: "c1" });
  assert.equal(rig.core.snapshot().connections, 0);
  assert.equal(rig.core.nextDeadline(), undefined, "no exchange deadline left");
  car.present();
  assert.deepEqual(car.lastReason(), error(Reason.OUT_OF_ORDER));
});

test("STATUS about once a second while charging, ending with the state the session left", () => {
  const rig = booted();
  rig.startCharging();
  const before = rig.sent("c1").length;
  for (let i = 0; i < 5; i++) {
    rig.advance(1000);
    rig.meter(rig.energyWh + 2);
  }
  const statuses = rig.sent("c1").slice(before) as PileMessage[];
  assert.equal(statuses.length, 5);
  const last = statuses.at(-1);
  assert.ok(last && last.type === "STATUS");
  assert.equal(last.state, PileState.CHARGING);
  assert.equal(last.energyWh, 8);
  assert.equal(last.powerW, 7000);
  assert.equal(last.elapsedS, 5);
  rig.feed({ type: "technician", command: "stop" });
  rig.feed({ type: "contactorFeedback", closed: false });
  rig.feed({ type: "lockFeedback", engaged: false });
  const end = rig.sent("c1").at(-1);
  assert.ok(end && end.type === "STATUS");
  assert.equal(end.state, PileState.AVAILABLE);
});

test("a late tick yields one STATUS, not one per missed second", () => {
  const rig = booted();
  rig.startCharging();
  rig.advance(900);
  rig.meter();
  const before = rig.sent("c1").length;
  rig.mono += 3000;
  rig.feed({ type: "meterReading", reading: { energyImportWh: 10_000, powerW: 1, takenAt: rig.mono } });
  assert.equal(rig.sent("c1").length - before, 1);
});

test("fragment errors and malformed messages are ERROR BAD_MESSAGE and counted", () => {
  const rig = booted();
  rig.feed({ type: "fragmentError", connId: "c1" });
  rig.feed({ type: "message", connId: "c1", bytes: new Uint8Array([0x01, 1, 2]) });
  rig.feed({ type: "message", connId: "c1", bytes: new Uint8Array() });
  rig.feed({ type: "message", connId: "c1", bytes: encodeMessage({ type: "ERROR", reason: 1 }) });
  assert.deepEqual(
    rig.sent("c1").map((m) => (m.type === "ERROR" ? m.reason : -1)),
    [1, 1, 1, 1],
  );
  const s = rig.core.snapshot();
  assert.equal(s.counters.fragmentErrors, 1);
  assert.equal(s.counters.badMessages, 3);
});

test("random bytes never throw and never move an output", () => {
  const rig = booted();
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
      const fx = rig.feed({ type: "message", connId: "fuzz", bytes });
      assert.deepEqual(moves(fx), []);
      for (const e of fx) {
        if (e.type === "send") assert.ok(["ERROR", "RESULT", "CHALLENGE"].includes(e.message.type));
      }
    }),
    { numRuns: 2000 },
  );
  assert.equal(rig.state(), "AVAILABLE");
});

test("arbitrary input objects never throw; malformed ones are rejected and change nothing", () => {
  const rig = booted();
  const view = () => JSON.stringify({ ...rig.core.snapshot(), counters: undefined });
  const before = view();
  fc.assert(
    fc.property(
      fc.oneof(
        fc.anything().filter((x) => validateInput(x) !== undefined),
        fc
          .record({
            type: fc.constantFrom("tick", "message", "boot", "vehicle", "technician"),
            mono: fc.anything(),
          })
          .filter((x) => validateInput(x) !== undefined),
        fc.record({
          type: fc.constantFrom("meterReading", "contactorFeedback", "codeRecorded", "technician"),
          mono: fc.constant(Number.NaN),
        }),
      ),
      (junk) => {
        // biome-ignore lint/suspicious/noExplicitAny: deliberately ill-typed input
        const fx = rig.core.handle(junk as any);
        assert.ok(Array.isArray(fx));
        assert.deepEqual(moves(fx), []);
        assert.ok(fx.every((e) => e.type === "rejected"));
      },
    ),
    { numRuns: 1000 },
  );
  assert.equal(view(), before);
  assert.ok(rig.core.snapshot().counters.rejectedInputs >= 1000);
  const core = new PileCore(rig.cfg, {
    suite: nodeSuite,
    keys: { get: () => undefined },
    ledger: { isUsed: () => false },
    random: () => new Uint8Array(16),
  });
  const fx = core.handle({ type: "tick", mono: 0 });
  assert.deepEqual(
    fx.map((e) => (e.type === "rejected" ? e.code : e.type)),
    ["NOT_BOOTED"],
  );
});

test("keys, V and proofs never appear in an effect or the snapshot", () => {
  const rig = booted();
  const issued = issue();
  const { carrier } = rig.startCharging(issued);
  carrier.hello();
  carrier.stop();
  rig.feed({ type: "contactorFeedback", closed: false });
  const hex = (v: unknown): unknown =>
    v instanceof Uint8Array ? toHex(v) : typeof v === "bigint" ? v.toString() : v;
  const all = JSON.stringify(rig.log, (_k, v) => hex(v)) + JSON.stringify(rig.core.snapshot());
  assert.ok(all.includes(toHex(issued.codeId)), "the dump does carry ids (the check can fail)");
  for (const secret of [KEY, issued.v]) assert.equal(all.includes(toHex(secret)), false);
});

test("a session's STOP on the carrier's own exchange works without a new HELLO", () => {
  const rig = booted();
  const { carrier } = rig.startCharging();
  carrier.stop();
  rig.feed({ type: "contactorFeedback", closed: false });
  assert.deepEqual(carrier.lastReason(), result(Reason.STOPPED));
});

test("field report: a refusal other than a bad proof is logged once at info with its reason, no code or secret", () => {
  const rig = booted();
  const issued = issue({ pileId: "PILE-8" });
  const car = new Carrier(rig, "c1", issued);
  car.hello();
  const fx = car.present();
  assert.deepEqual(car.lastReason(), { type: "RESULT", reason: Reason.WRONG_PILE });
  const logs = fx.filter((e) => e.type === "log" && e.event === "refused");
  assert.equal(logs.length, 1, JSON.stringify(fx));
  const line = logs[0];
  assert.ok(line && line.type === "log");
  assert.equal(line.level, "info");
  assert.deepEqual(line.fields, { connId: "c1", message: "RESULT", reason: "WRONG_PILE" });
  const text = JSON.stringify(
    rig.log.filter((e) => e.type === "log").map((e) => e.type === "log" && e.fields),
  );
  for (const secret of [toHex(issued.v), toHex(issued.code), toHex(KEY)]) assert.ok(!text.includes(secret));
});
