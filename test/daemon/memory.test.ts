import assert from "node:assert/strict";
import { test } from "node:test";
import { collectNow, memoryCounters } from "../../src/daemon/memory.js";

test("memory counters: process.memoryUsage() in kB, the live heap 0 until a full GC ran", () => {
  const c = memoryCounters();
  assert.deepEqual(Object.keys(c).sort(), [
    "memory.externalKb",
    "memory.heapTotalKb",
    "memory.heapUsedKb",
    "memory.liveHeapKb",
    "memory.rssKb",
  ]);
  assert.equal(c["memory.liveHeapKb"], 0);
  assert.ok(c["memory.rssKb"]! > c["memory.heapUsedKb"]!, JSON.stringify(c));
  assert.ok(c["memory.heapTotalKb"]! >= c["memory.heapUsedKb"]!, JSON.stringify(c));
});

test("memory counters: a full GC without --expose-gc; its heap used becomes the live heap", () => {
  assert.equal(typeof (globalThis as { gc?: unknown }).gc, "undefined", "gc is not exposed globally");
  const garbage = Array.from({ length: 50_000 }, (_, i) => ({ i, s: `x${i}` }));
  assert.equal(garbage.length, 50_000);
  const live = collectNow();
  assert.ok(live > 0);
  assert.equal(memoryCounters()["memory.liveHeapKb"], live);
  // a second one reuses the same gc function
  assert.ok(collectNow() > 0);
  assert.equal(typeof (globalThis as { gc?: unknown }).gc, "undefined", "still not exposed globally");
});
