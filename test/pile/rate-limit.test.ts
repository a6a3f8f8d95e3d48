import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { protocolRateLimit, RateLimiter } from "../../src/pile/index.js";
import { Reason } from "../../src/protocol/index.js";
import { Carrier, issue, Rig } from "./rig.js";

const S = 1000;
const H = 3_600_000;

test("4 failed proofs within 60 s do not block; the 5th blocks HELLO for 30 s", () => {
  const rl = new RateLimiter();
  for (let i = 0; i < 4; i++) assert.equal(rl.failure(i * 10 * S), undefined);
  assert.equal(rl.blocked(40 * S), false);
  assert.equal(rl.failure(59 * S), 30 * S);
  assert.equal(rl.blocked(59 * S), true);
  assert.equal(rl.blocked(89 * S - 1), true);
  assert.equal(rl.blocked(89 * S), false);
});

test("failures spread wider than the window never block", () => {
  const rl = new RateLimiter();
  for (let i = 0; i < 50; i++) assert.equal(rl.failure(i * 15 * S + 1), undefined);
  assert.equal(rl.blocked(1000 * S), false);
});

function rounds(n: number, midBlockFailure: boolean): number[] {
  const rl = new RateLimiter();
  let t = 0;
  const lengths: number[] = [];
  for (let round = 0; round < n; round++) {
    let len: number | undefined;
    for (let i = 0; i < 5; i++) len = rl.failure(t + i) ?? len;
    lengths.push(len! / S);
    // An exchange that was past CHALLENGE fails half-way through the block: it counts.
    if (midBlockFailure) rl.failure(t + 4 + len! / 2);
    t += 4 + len! + 10 * S;
  }
  return lengths;
}

test("each repeat doubles the block, up to one hour", () => {
  assert.deepEqual(rounds(10, true), [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
});

test("a one-hour block with no failure in it is an hour without a failure: back to 30 s", () => {
  assert.deepEqual(rounds(9, false), [30, 60, 120, 240, 480, 960, 1920, 3600, 30]);
});

test("an hour without a failure returns the block to 30 s", () => {
  const rl = new RateLimiter();
  for (let i = 0; i < 5; i++) rl.failure(i);
  for (let i = 0; i < 5; i++) rl.failure(40 * S + i);
  assert.equal(rl.snapshot(41 * S).level, 2);
  const quiet = 40 * S + 4 + H;
  assert.equal(rl.snapshot(quiet - 1).level, 2);
  let len: number | undefined;
  for (let i = 0; i < 5; i++) len = rl.failure(quiet + i) ?? len;
  assert.equal(len, 30 * S);
});

test("a failure just short of an hour keeps the doubling", () => {
  const rl = new RateLimiter();
  for (let i = 0; i < 5; i++) rl.failure(i);
  rl.failure(H - 1 + 4);
  let len: number | undefined;
  for (let i = 1; i < 5; i++) len = rl.failure(H + 10 + i) ?? len;
  assert.equal(len, 60 * S);
});

test("property: never blocked without 5 failures inside one window; a block never exceeds the cap", () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 200 * S }), { maxLength: 40 }), (gaps) => {
      const rl = new RateLimiter();
      let t = 0;
      const times: number[] = [];
      for (const g of gaps) {
        t += g;
        times.push(t);
        const len = rl.failure(t);
        if (len !== undefined) {
          assert.ok(len <= protocolRateLimit.maxBlockMs && len >= protocolRateLimit.blockMs);
          const inWindow = times.filter((x) => t - x < protocolRateLimit.windowMs).length;
          assert.ok(inWindow >= 5);
        }
      }
    }),
  );
});

test("through the pile: 5 bad proofs make every HELLO RATE_LIMITED for 30 s; an exchange past CHALLENGE finishes", () => {
  const rig = new Rig();
  rig.boot();
  const pending = new Carrier(rig, "ok", issue());
  pending.hello();
  const attacker = new Carrier(rig, "evil", issue());
  for (let i = 0; i < 3; i++) {
    attacker.hello();
    attacker.present({ proof: new Uint8Array(32) });
  }
  for (let i = 0; i < 2; i++) {
    attacker.hello();
    attacker.stop({ proof: new Uint8Array(32) });
  }
  assert.deepEqual(attacker.lastReason(), { type: "RESULT", reason: Reason.BAD_PROOF });
  attacker.hello();
  assert.deepEqual(attacker.lastReason(), { type: "ERROR", reason: Reason.RATE_LIMITED });
  const honest = new Carrier(rig, "late", issue());
  honest.hello();
  assert.deepEqual(honest.lastReason(), { type: "ERROR", reason: Reason.RATE_LIMITED });
  // The exchange already past CHALLENGE is not cut off.
  rig.meter();
  pending.present();
  assert.ok(rig.log.some((e) => e.type === "recordCode"));
  assert.equal(rig.core.snapshot().rateLimit.blocked, true);
  rig.advance(30 * S - 1);
  honest.hello();
  assert.deepEqual(honest.lastReason(), { type: "ERROR", reason: Reason.RATE_LIMITED });
  rig.advance(1);
  honest.hello();
  assert.equal(honest.pileAuthentic, true);
  assert.equal(rig.core.snapshot().counters.rateLimited, 3);
});

test("through the pile: failures of an exchange that started before the block still count", () => {
  const rig = new Rig();
  rig.boot();
  const cars = [0, 1, 2, 3, 4, 5].map((i) => new Carrier(rig, `c${i}`, issue()));
  for (const c of cars) c.hello();
  for (const c of cars.slice(0, 5)) c.present({ proof: new Uint8Array(32) });
  const last = cars[5]!;
  last.present({ proof: new Uint8Array(32) });
  assert.deepEqual(last.lastReason(), { type: "RESULT", reason: Reason.BAD_PROOF });
  assert.equal(rig.core.snapshot().rateLimit.recentFailures, 1, "counted toward the next block");
});
