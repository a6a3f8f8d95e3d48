/**
 * Run by the slow-disk tier (slow-disk.test.ts) under the slow-fsync shim: the real runtime with
 * the real store and write worker on a real file, charging, then an emergency stop, a plug
 * pulled and a silent meter. Prints one JSON line: the fsync the shim gives, a synchronous store
 * write on this disk, and how long each event took to write the contactor open.
 */
import { closeSync, fsyncSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { openStore } from "../../src/store/index.js";
import { charge, type DiskRig, diskRig, waitFor } from "./disk-rig.js";

// Above the accept path's own durable writes on this disk (the code with its session start, then
// the store's identity marks: three fsyncs of 500 ms, on the loop, nothing live yet), so the meter
// is still fresh when the code's record is acknowledged.
const STALE_MS = 3000;

function probe(): { fsyncMs: number; storeWriteMs: number } {
  const dir = mkdtempSync(join(tmpdir(), "piled-slow-"));
  try {
    const fd = openSync(join(dir, "probe"), "w");
    writeSync(fd, "x");
    let t = performance.now();
    fsyncSync(fd);
    const fsyncMs = performance.now() - t;
    closeSync(fd);
    const s = openStore(join(dir, "probe.db"));
    t = performance.now();
    s.audit.append({ at: Date.now(), actor: "daemon", action: "probe", outcome: "ok" });
    const storeWriteMs = performance.now() - t;
    s.close();
    return { fsyncMs, storeWriteMs };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function charging(): Promise<DiskRig> {
  // the latencies measured here are real ones, under a disk that really stalls
  const r = await diskRig({
    realTime: true,
    writer: true,
    progressEveryMs: 300,
    config: (c) => {
      c.statusIntervalMs = 100;
      c.deadlines.meterStaleMs = STALE_MS;
    },
  });
  await charge(r);
  // let progress records pile up in the worker, each stalled by the disk
  await r.sleep(1200);
  return r;
}

async function openedAfter(r: DiskRig, t0: number): Promise<number> {
  await waitFor("the contactor written open", () => r.contactorWrites.some((w) => !w.closed && w.at >= t0));
  return r.contactorWrites.find((w) => !w.closed && w.at >= t0)!.at - t0;
}

async function main(): Promise<void> {
  const out: Record<string, number> = {};
  Object.assign(out, probe());
  let r = await charging();
  let t0 = performance.now();
  r.plant.pressEmergencyStop();
  out["emergencyStopMs"] = await openedAfter(r, t0);
  out["offLoopWrites"] = r.runtime.counters["store.offLoop"] ?? 0;
  out["liveSyncWrites"] = r.writes.filter((w) => w.live).length;
  await r.close();

  r = await charging();
  t0 = performance.now();
  r.plant.pullPlug();
  out["plugRemovedMs"] = await openedAfter(r, t0);
  out["liveSyncWrites"] += r.writes.filter((w) => w.live).length;
  await r.close();

  r = await charging();
  r.meter.silent = true;
  // a reading already on its way may still land: the limit runs from the last one the loop got
  await r.sleep(300);
  const deadline = r.runtime.lastMeter!.takenAt + STALE_MS;
  out["staleMeterMs"] = await openedAfter(r, deadline);
  out["liveSyncWrites"] += r.writes.filter((w) => w.live).length;
  await r.close();
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
