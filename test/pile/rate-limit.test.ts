import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { type PileEffect, ProofFailureWatch, protocolProofPolicy } from "../../src/pile/index.js";
import { PileState, Reason } from "../../src/protocol/index.js";
import { Carrier, issue, Rig } from "./rig.js";

const S = 1000;
const bad = { proof: new Uint8Array(32) };
const drops = (fx: PileEffect[]) =>
  fx.filter((e) => e.type === "disconnect").map((e) => e.type === "disconnect" && e.connId);
const events = (fx: PileEffect[]) => fx.filter((e) => e.type === "securityEvent");

test("the protocol's figures: 3 per connection, more than 20 in 60 s, idle drop after 30 s", () => {
  assert.deepEqual(protocolProofPolicy, {
    perConnection: 3,
    securityEventFailures: 20,
    securityEventWindowMs: 60_000,
    idleDropMs: 30_000,
  });
});

test("watch: 20 failures within 60 s raise nothing; the 21st raises one event; none again until the window falls back", () => {
  const w = new ProofFailureWatch();
  for (let i = 0; i < 20; i++) assert.equal(w.failure(i * S), false);
  assert.equal(w.failure(20 * S), true);
  assert.equal(w.failure(21 * S), false, "one event per burst");
  assert.deepEqual(w.snapshot(21 * S), { recentFailures: 22, alarm: true });
  // 60 s after the first ones they have left the window.
  assert.deepEqual(w.snapshot(100 * S), { recentFailures: 0, alarm: false });
  for (let i = 0; i < 20; i++) assert.equal(w.failure(100 * S + i), false);
  assert.equal(w.failure(100 * S + 20), true, "a new burst raises a new event");
});

test("watch property: an event is raised exactly when a failure takes the window from 20 to 21 after it was at most 20", () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 10_000 }), { maxLength: 200 }), (gaps) => {
      const w = new ProofFailureWatch();
      const times: number[] = [];
      let t = 0;
      let alarm = false;
      for (const g of gaps) {
        t += g;
        const before = times.filter((x) => t - x < 60_000).length;
        if (before <= 20) alarm = false;
        times.push(t);
        const raised = w.failure(t);
        const expect: boolean = !alarm && before + 1 > 20;
        assert.equal(raised, expect);
        if (expect) alarm = true;
      }
    }),
  );
});

test("field report: 3 bad proofs limit that connection only; a second carrier is not locked out by a brute-forcing first", () => {
  const rig = new Rig();
  rig.boot();
  const attacker = new Carrier(rig, "evil", issue());
  rig.feed({ type: "connected", connId: "evil" });
  for (let i = 0; i < 2; i++) {
    attacker.hello();
    attacker.present(bad);
  }
  attacker.hello();
  attacker.stop(bad);
  assert.deepEqual(attacker.lastReason(), { type: "RESULT", reason: Reason.BAD_PROOF });
  attacker.hello();
  assert.deepEqual(attacker.lastReason(), { type: "ERROR", reason: Reason.RATE_LIMITED });
  // Every further HELLO, right or wrong, known key or not.
  attacker.hello({ keyId: 0x01020304 });
  assert.deepEqual(attacker.lastReason(), { type: "ERROR", reason: Reason.RATE_LIMITED });
  rig.advance(3_600 * S);
  attacker.hello();
  assert.deepEqual(
    attacker.lastReason(),
    { type: "ERROR", reason: Reason.RATE_LIMITED },
    "until it disconnects",
  );
  assert.equal(rig.core.snapshot().rateLimitedConnections, 1);

  // The rightful carrier, meanwhile, unlocks.
  const honest = new Carrier(rig, "ok", issue());
  rig.feed({ type: "connected", connId: "ok" });
  honest.hello();
  assert.equal(honest.pileAuthentic, true);
  rig.meter();
  rig.ackRecord(honest.present());
  assert.deepEqual(honest.lastReason()?.reason, Reason.ACCEPTED);
  assert.equal(rig.core.snapshot().counters.rateLimited, 3);

  // A new connection (the attacker reconnecting) starts from zero, as §3 says.
  rig.feed({ type: "disconnected", connId: "evil" });
  const again = new Carrier(rig, "evil2", issue());
  again.hello();
  assert.equal(again.pileAuthentic, true);
  assert.equal(rig.core.snapshot().rateLimitedConnections, 0);
});

test("field report: the exchange past CHALLENGE when the limit is reached finishes, and its failure counts", () => {
  const rig = new Rig();
  rig.boot();
  const car = new Carrier(rig, "c1", issue());
  car.hello();
  car.present(bad);
  car.hello();
  car.present(bad);
  car.hello();
  assert.ok(car.pileNonce, "the third exchange got its CHALLENGE");
  car.present(bad);
  assert.deepEqual(car.lastReason(), { type: "RESULT", reason: Reason.BAD_PROOF });
  assert.equal(rig.core.snapshot().counters.badProofs, 3);
  car.hello();
  assert.deepEqual(car.lastReason(), { type: "ERROR", reason: Reason.RATE_LIMITED });
});

test("field report: more than 20 failed proofs within 60 s, over many connections, raise one security event", () => {
  const rig = new Rig();
  rig.boot();
  const raised: PileEffect[] = [];
  for (let i = 0; i < 7; i++) {
    const c = new Carrier(rig, `a${i}`, issue());
    for (let k = 0; k < 3; k++) {
      c.hello();
      raised.push(...events(c.present(bad)));
      rig.advance(S);
    }
    if (i < 6) assert.equal(raised.length, 0, `${(i + 1) * 3} failures raise nothing`);
  }
  assert.deepEqual(raised, [
    { type: "securityEvent", event: "PROOF_FAILURES", failures: 21, threshold: 20, windowMs: 60_000 },
  ]);
  const snap = rig.core.snapshot();
  assert.equal(snap.counters.securityEvents, 1);
  assert.deepEqual(snap.proofs, { recentFailures: 21, alarm: true });
  assert.ok(rig.log.some((e) => e.type === "log" && e.event === "security.proof_failures"));
  // Nobody is locked out by it.
  const honest = new Carrier(rig, "ok", issue());
  honest.hello();
  assert.equal(honest.pileAuthentic, true);
  rig.advance(61 * S);
  assert.deepEqual(rig.core.snapshot().proofs, { recentFailures: 0, alarm: false });
});

test("field report: an idle connection is dropped after 30 s; one with an exchange or a session of its own is not", () => {
  const rig = new Rig();
  rig.boot();
  rig.feed({ type: "connected", connId: "idle" });
  assert.deepEqual(drops(rig.advance(30 * S - 1)), []);
  assert.deepEqual(drops(rig.advance(1)), ["idle"]);
  assert.equal(rig.core.snapshot().counters.idleDrops, 1);
  // Asked again only after another idle period, if the link stayed.
  assert.deepEqual(drops(rig.advance(30 * S - 1)), []);
  assert.deepEqual(drops(rig.advance(1)), ["idle"]);
  rig.feed({ type: "disconnected", connId: "idle" });

  // A message restarts the idle time; an exchange in progress holds it (its own 10 s timeout ends it).
  const car = new Carrier(rig, "c2", issue());
  rig.feed({ type: "connected", connId: "c2" });
  rig.advance(20 * S);
  car.hello();
  const timedOut = rig.advance(10 * S);
  assert.deepEqual(car.lastReason(), { type: "ERROR", reason: Reason.TIMEOUT });
  assert.deepEqual(drops(timedOut), []);
  assert.deepEqual(drops(rig.advance(30 * S - 1)), []);
  assert.deepEqual(drops(rig.advance(1)), ["c2"], "30 s after its exchange ended");
  rig.feed({ type: "disconnected", connId: "c2" });

  // The carrier of a running session is never dropped while it lasts.
  rig.meter();
  const { carrier } = rig.startCharging(issue(), "c3");
  const during: PileEffect[] = [];
  for (let i = 0; i < 120; i++) {
    during.push(...rig.advance(S));
    rig.meter(rig.energyWh + 1);
  }
  assert.deepEqual(drops(during), []);
  assert.equal(rig.state(), "CHARGING");
  rig.feed({ type: "technician", command: "stop" });
  rig.feed({ type: "contactorFeedback", closed: false });
  rig.feed({ type: "lockFeedback", engaged: false });
  assert.equal(rig.state(), "AVAILABLE");
  assert.deepEqual(drops(rig.advance(30 * S - 1)), [], "30 s after the session ended, not before");
  assert.deepEqual(drops(rig.advance(1)), [carrier.connId]);
});

test("field report: the last STATUS of a session carries its totals (energyWh, elapsedS) and powerW 0", () => {
  const rig = new Rig();
  rig.boot();
  rig.startCharging(issue(), "c1");
  for (let i = 0; i < 5; i++) {
    rig.advance(S);
    rig.meter(rig.energyWh + 3);
  }
  rig.feed({ type: "technician", command: "stop" });
  rig.feed({ type: "contactorFeedback", closed: false });
  rig.feed({ type: "lockFeedback", engaged: false });
  const end = rig.sent("c1").at(-1);
  assert.ok(end && end.type === "STATUS");
  assert.equal(end.state, PileState.AVAILABLE);
  assert.equal(end.energyWh, 15);
  assert.equal(end.elapsedS, 5);
  assert.equal(end.powerW, 0);
});
