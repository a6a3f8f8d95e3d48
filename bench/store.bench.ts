/**
 * Store figures: durable ledger records per second (WAL, synchronous=FULL: one fsync per commit),
 * sessions.progress per second, ledger lookups per second, and the time to open the store so
 * written (quick_check included; `ledgerEntriesWritten` says how large it was). Medians; the
 * temp store lives on the OS temp dir's file system, and fsync rates swing with other disk load.
 * Durable progress writes per hour of charging at the configured intervals: one per status
 * interval, each a synchronous fsync on the control loop before, on the write worker now (none on
 * the loop while the contactor may be live), with the disk time those writes take here.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { validateConfig } from "../src/daemon/config.js";
import { simPileConfig } from "../src/daemon/sim-config.js";
import { parsePileCoreConfig } from "../src/pile/index.js";
import { openStore } from "../src/store/index.js";
import { median, opsPerSecond } from "./util.js";

export const name = "store";

export async function run(): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), "piled-bench-store-"));
  try {
    const path = join(dir, "bench.db");
    const store = openStore(path);
    const ids: Uint8Array[] = [];
    let issuedAt = 1_700_000_000_000n;
    const ledgerRecordPerS = opsPerSecond(() => {
      const codeId = new Uint8Array(randomBytes(16));
      ids.push(codeId);
      issuedAt += 1n;
      store.ledger.record({
        codeId,
        keyId: 1,
        issuedAt,
        expiresAt: issuedAt + 3_600_000n,
        deviceId: "VD-bench",
      });
    });
    let i = 0;
    const ledgerIsUsedPerS = opsPerSecond(() => {
      store.ledger.isUsed(ids[i++ % ids.length]!);
    });

    const sessionId = new Uint8Array(randomBytes(16));
    store.sessions.begin({
      sessionId,
      codeId: ids[0]!,
      keyId: 1,
      deviceId: "VD-bench",
      carrier: "vehicle",
      startedAt: 1,
      meterStartWh: 0,
    });
    let wh = 0;
    const sessionProgressPerS = opsPerSecond(() => {
      wh += 1;
      store.sessions.progress(sessionId, { energyWh: wh, lastMeterWh: wh, at: wh });
    });
    const ledgerEntries = store.ledger.count();
    store.close();

    // Open time (marker, schema, quick_check, WAL) of the store just written.
    const opens: number[] = [];
    for (let r = 0; r < 7; r++) {
      const t0 = performance.now();
      openStore(path).close();
      opens.push(performance.now() - t0);
    }
    const cfg = validateConfig(simPileConfig({ pileId: "BENCH", dir }));
    const statusMs = cfg.ok ? cfg.value.statusIntervalMs : 1000;
    const before = Math.ceil(3_600_000 / statusMs);
    const core = parsePileCoreConfig({ pileId: "BENCH", statusIntervalMs: statusMs });
    const progressMs = core.ok ? Math.max(statusMs, core.value.progressIntervalMs) : statusMs;
    const after = Math.ceil(3_600_000 / progressMs);
    return {
      progressWritesPerChargingHour: { before, after },
      // disk time of those writes on this disk: before all of it on the control loop, now on the worker
      progressDiskSPerChargingHour: {
        before: Math.round((before / sessionProgressPerS) * 100) / 100,
        after: Math.round((after / sessionProgressPerS) * 100) / 100,
      },
      ledgerRecordPerS,
      ledgerIsUsedPerS,
      sessionProgressPerS,
      ledgerEntriesWritten: ledgerEntries,
      openMsMedian: Math.round(median(opens) * 100) / 100,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
