import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { TimeFloor } from "../../src/pile/index.js";
import { Reason } from "../../src/protocol/index.js";
import { Carrier, issue, Rig, T0 } from "./rig.js";

test("now is the board clock, never below the floor; no clock means the floor", () => {
  const f = new TimeFloor(1000n);
  assert.equal(f.now(5000), 5000n);
  assert.equal(f.now(10), 1000n);
  assert.equal(f.now(undefined), 1000n);
  assert.equal(f.now(Number.NaN), 1000n);
  assert.equal(f.now(-5), 1000n);
  f.raise(400n);
  assert.equal(f.floor, 1000n);
  f.raise(2n ** 64n - 1n);
  assert.equal(f.now(Date.now()), 2n ** 64n - 1n);
});

function accept(rig: Rig, issuedAt: bigint, validFor = 3600): number | undefined {
  const car = new Carrier(rig, "c1", issue({ issuedAt, validFor }));
  rig.meter();
  car.hello();
  const fx = car.present();
  const acked = rig.ackRecord(fx);
  if (acked.length === 0) return car.lastReason()?.reason;
  // End the session so the pile is free again.
  rig.feed({ type: "technician", command: "stop" });
  rig.feed({ type: "lockFeedback", engaged: false });
  return Reason.ACCEPTED;
}

test("a pile whose clock reads 1970 keeps time by its floor: old codes expire, fresh ones pass", () => {
  const rig = new Rig();
  rig.wall = 0;
  rig.boot({}, BigInt(T0));
  assert.equal(accept(rig, BigInt(T0 + 60_000)), Reason.ACCEPTED, "within the skew of the floor");
  assert.equal(rig.core.snapshot().timeFloorMs, String(T0 + 60_000));
  // Issued two hours before the floor, valid one hour: expired, whatever the board clock says.
  assert.equal(accept(rig, BigInt(T0 - 2 * 3_600_000)), Reason.EXPIRED);
  // Issued well after the floor: not yet valid, the pile cannot know better.
  assert.equal(accept(rig, BigInt(T0 + 3_600_000)), Reason.NOT_YET_VALID);
});

test("the floor rises only when the code record is acknowledged", () => {
  const rig = new Rig();
  rig.boot({}, 10n);
  const car = new Carrier(rig, "c1", issue());
  car.hello();
  const fx = car.present();
  assert.equal(rig.core.snapshot().timeFloorMs, "10");
  rig.ackRecord(fx, false);
  assert.equal(rig.core.snapshot().timeFloorMs, "10");
});

test("property: the floor is never below the newest accepted issuedAt", () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: -100_000, max: 100_000 }), { minLength: 1, maxLength: 6 }),
      (offsets) => {
        const rig = new Rig();
        rig.wall = undefined;
        rig.boot({}, BigInt(T0));
        let newest = BigInt(T0);
        for (const off of offsets) {
          const at = BigInt(T0 + off);
          if (accept(rig, at) === Reason.ACCEPTED && at > newest) newest = at;
          assert.ok(BigInt(rig.core.snapshot().timeFloorMs) >= newest);
        }
        assert.equal(rig.core.snapshot().timeFloorMs, newest.toString());
      },
    ),
    { numRuns: 25 },
  );
});
