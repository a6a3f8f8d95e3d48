import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "../../src/sim/plant/clock.js";
import { SimPlant } from "../../src/sim/plant.js";

test("ManualClock fires timers in due order, each at its own time", () => {
  const c = new ManualClock({ now: 1000, monotonic: 0 });
  const fired: [string, number, number][] = [];
  c.setTimeout(() => fired.push(["b", c.monotonic(), c.now()]), 20);
  c.setTimeout(() => {
    fired.push(["a", c.monotonic(), c.now()]);
    c.setTimeout(() => fired.push(["c", c.monotonic(), c.now()]), 5);
  }, 10);
  const dropped = c.setTimeout(() => fired.push(["x", c.monotonic(), c.now()]), 12);
  c.clearTimeout(dropped);
  c.advance(14);
  assert.deepEqual(fired, [["a", 10, 1010]]);
  assert.equal(c.monotonic(), 14);
  c.advance(100);
  assert.deepEqual(fired, [
    ["a", 10, 1010],
    ["c", 15, 1015],
    ["b", 20, 1020],
  ]);
  assert.equal(c.monotonic(), 114);
  assert.equal(c.now(), 1114);
  assert.equal(c.pendingCount, 0);
});

test("the wall clock can be set apart from the monotonic one", () => {
  const c = new ManualClock();
  c.setNow(5);
  c.advance(10);
  assert.equal(c.now(), 15);
  assert.equal(c.monotonic(), 10);
});

test("the plant runs on a ManualClock", async () => {
  const clock = new ManualClock();
  const p = new SimPlant({ timers: clock, contactorMs: 30, lockMs: 200 });
  await p.lock.write(true);
  clock.advance(199);
  assert.equal(p.state().feedback.lock, false);
  clock.advance(1);
  assert.equal(p.state().feedback.lock, true);
  await p.contactor.write(true);
  clock.advance(30);
  assert.equal(p.state().feedback.contactor, true);
});
