import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { after, test } from "node:test";
import { collectNow, memoryCounters } from "../../src/daemon/memory.js";
import { type PileProc, startPile } from "../helpers/pile-proc.js";

const stops: (() => Promise<void>)[] = [];
after(async () => {
  for (const s of stops.splice(0)) await s().catch(() => undefined);
});

test("memory counters: process.memoryUsage() in kB, the live heap 0 until a full GC ran", () => {
  const c = memoryCounters();
  assert.deepEqual(Object.keys(c).sort(), [
    "memory.externalKb",
    "memory.heapTotalKb",
    "memory.heapUsedKb",
    "memory.liveHeapKb",
    "memory.optimizingCompiler",
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

/** A hot function's V8 optimization status (bit 4: optimized) in a child node, with or without the call. */
function hotFunctionOptimized(call: boolean): boolean {
  const memory = new URL("../../src/daemon/memory.js", import.meta.url).href;
  const src = `
    import { withoutOptimizingCompiler } from ${JSON.stringify(memory)};
    ${call ? "withoutOptimizingCompiler();" : ""}
    function f(x) { return x * 2 + 1; }
    let s = 0;
    for (let i = 0; i < 2e6; i++) s += f(i);
    process.stdout.write(String(%GetOptimizationStatus(f)));`;
  const out = execFileSync(process.execPath, ["--allow-natives-syntax", "--input-type=module", "-e", src], {
    encoding: "utf8",
  });
  return (Number(out) & 0x10) !== 0;
}

test("without the optimizing compiler: a hot function stays unoptimized (and is optimized otherwise)", () => {
  assert.equal(hotFunctionOptimized(false), true, "the control: V8 optimizes a hot function by default");
  assert.equal(hotFunctionOptimized(true), false);
});

test("the built daemon runs without V8's optimizing compiler, and says so in its counters", async () => {
  const pile: PileProc = await startPile({ pileId: "MEM-V8" });
  stops.push(() => pile.stop());
  const s = await pile.status();
  assert.equal(s.counters["memory.optimizingCompiler"], 0, JSON.stringify(s.counters));
});
