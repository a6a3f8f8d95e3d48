/**
 * The daemon's memory as the status view's counters report it: process.memoryUsage() in kB (a
 * few microseconds: RSS comes from /proc/self/stat) and the main isolate's live heap measured by
 * the last forced full GC (SIGUSR2, see daemon.ts; 0 until one ran). RSS counts V8's heap slack
 * too, which is why it can fall across sessions; the live heap after a full GC does not. The
 * write worker's isolate is in RSS but not in the heap figures (they are the main isolate's).
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

let liveHeapKb = 0;
let gcFn: (() => void) | undefined;
let optimizingCompiler = 1;

/**
 * The daemon runs its JavaScript on V8's interpreter and baseline compiler, without TurboFan.
 * TurboFan compiles a pile's hot paths over its first sessions, and the memory of each compile
 * stays in the malloc arena of V8's platform thread: on the simulated pile a daemon after its
 * first session took 83.8 MB against 78.4 MB without it, and 88.0 against 81.2 MB after 60 more
 * (medians of 3, docs/performance.md). The latency this costs is measured there too (the pile's
 * work between a PRESENT and its RESULT is mostly native: crypto, SQLite, fsync). V8's flags are
 * the process's, so the write worker started after this runs without it too; NODE_OPTIONS
 * refuses `--no-opt`, so the entry sets it before the daemon starts, before anything runs hot.
 */
export function withoutOptimizingCompiler(): void {
  setFlagsFromString("--no-opt");
  optimizingCompiler = 0;
}

const kb = (b: number) => Math.round(b / 1024);

export function memoryCounters(): Record<string, number> {
  const m = process.memoryUsage();
  return {
    "memory.rssKb": kb(m.rss),
    "memory.heapTotalKb": kb(m.heapTotal),
    "memory.heapUsedKb": kb(m.heapUsed),
    "memory.externalKb": kb(m.external),
    "memory.liveHeapKb": liveHeapKb,
    "memory.optimizingCompiler": optimizingCompiler,
  };
}

/**
 * A full GC now (a few ms to tens of ms on the control loop: only on a technician's signal, never
 * on a timer, and the daemon refuses it while the contactor may be live); returns the heap used
 * after it, kB. `gc` is exposed to one context made for it.
 */
export function collectNow(): number {
  if (!gcFn) {
    setFlagsFromString("--expose-gc");
    gcFn = runInNewContext("gc") as () => void;
  }
  gcFn();
  liveHeapKb = kb(process.memoryUsage().heapUsed);
  return liveHeapKb;
}
