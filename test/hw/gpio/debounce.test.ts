import assert from "node:assert/strict";
import { afterEach, beforeEach, mock, test } from "node:test";
import { Debouncer } from "../../../src/hw/gpio/debounce.js";
import { systemTimers } from "../../../src/hw/ports.js";

beforeEach(() => mock.timers.enable({ apis: ["setTimeout"] }));
afterEach(() => mock.timers.reset());

function recorder(d: Debouncer): boolean[] {
  const seen: boolean[] = [];
  d.onChange((v) => seen.push(v));
  return seen;
}

test("a change is reported only after it has held for debounceMs", () => {
  const d = new Debouncer(false, 20, systemTimers);
  const seen = recorder(d);
  d.feed(true);
  mock.timers.tick(19);
  assert.deepEqual(seen, []);
  assert.equal(d.level, false);
  mock.timers.tick(1);
  assert.deepEqual(seen, [true]);
  assert.equal(d.level, true);
});

test("a bounce that returns before debounceMs is never reported", () => {
  const d = new Debouncer(false, 20, systemTimers);
  const seen = recorder(d);
  d.feed(true);
  mock.timers.tick(5);
  d.feed(false);
  mock.timers.tick(100);
  assert.deepEqual(seen, []);
  assert.equal(d.level, false);
});

test("each bounce restarts the wait; the final level is reported once", () => {
  const d = new Debouncer(false, 20, systemTimers);
  const seen = recorder(d);
  for (let i = 0; i < 5; i++) {
    d.feed(true);
    mock.timers.tick(10);
    d.feed(false);
    mock.timers.tick(10);
  }
  d.feed(true);
  mock.timers.tick(19);
  assert.deepEqual(seen, []);
  mock.timers.tick(1);
  assert.deepEqual(seen, [true]);
});

test("repeated equal samples do not restart the wait", () => {
  const d = new Debouncer(true, 20, systemTimers);
  const seen = recorder(d);
  d.feed(false);
  for (let i = 0; i < 4; i++) {
    mock.timers.tick(5);
    d.feed(false);
  }
  assert.deepEqual(seen, [false]);
});

test("debounceMs 0 reports every change at once", () => {
  const d = new Debouncer(false, 0, systemTimers);
  const seen = recorder(d);
  d.feed(true);
  d.feed(false);
  d.feed(false);
  assert.deepEqual(seen, [true, false]);
});

test("dispose cancels a pending change and silences listeners", () => {
  const d = new Debouncer(false, 20, systemTimers);
  const seen = recorder(d);
  d.feed(true);
  d.dispose();
  mock.timers.tick(50);
  assert.deepEqual(seen, []);
  assert.equal(d.level, false);
});

test("an unsubscribed listener hears nothing more", () => {
  const d = new Debouncer(false, 0, systemTimers);
  const seen: boolean[] = [];
  const off = d.onChange((v) => seen.push(v));
  d.feed(true);
  off();
  d.feed(false);
  assert.deepEqual(seen, [true]);
});
