import assert from "node:assert/strict";
import test from "node:test";
import { poll, waitFor } from "./poll.js";

test("poll: the first answer that is neither undefined nor false", async () => {
  let n = 0;
  assert.equal(await poll(() => (++n >= 3 ? n : undefined), { everyMs: 0 }), 3);
  let m = 0;
  assert.equal(await poll(() => ++m >= 2, { everyMs: 0 }), true);
  assert.equal(await poll(async () => "yes"), "yes");
});

test("poll: undefined when no answer comes in time; waitFor throws naming what it waited for", async () => {
  assert.equal(await poll(() => false, { timeoutMs: 20, everyMs: 1 }), undefined);
  await assert.rejects(
    waitFor("the moon", () => undefined, { timeoutMs: 20, everyMs: 0, detail: () => "log: empty" }),
    /timed out waiting for the moon; log: empty/,
  );
});

test("a probe that throws fails the wait at once", async () => {
  await assert.rejects(
    waitFor("x", () => {
      throw new Error("probe broke");
    }),
    /probe broke/,
  );
});
