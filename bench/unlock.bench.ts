/**
 * Unlock latency inside the daemon's control loop (bench/fixtures/unlock-rig.ts: the real
 * PileRuntime and pile core, the state opened by the daemon's openState, the store on a real file
 * with its identity file, the write worker, the daemon's logger at "info"): from the last
 * fragment of a PRESENT handed to the pile's BLE handlers to the RESULT ACCEPTED handed back to
 * the radio. Each round issues a fresh code, unlocks with the SDK carrier, STOPs and waits for
 * AVAILABLE; then, in the same round and in the same folder, the references: one durable SQLite
 * commit (better-sqlite3, WAL, synchronous=FULL, as the store opens its file: one row of a
 * ledger's size) and one bare fsync (4 KiB written in place, then fsync). p50/p99 of each and
 * the ratios. Goal (issue 12): unlock p99 ≤ 1.5 × the commit's p99.
 *
 * Then the breakdown, over more rounds of the same rig with the time spent inside the window
 * summed per part: the core's `handle`, the store's `beginWithCode` (ledger row and session in
 * one transaction, the marks read back, the identity file written), of which the identity file's
 * calls (open, write, fsync, close, rename, directory fsync: node:fs patched for the window), the
 * free-space statfs, the log lines written; and one such line's cost through the daemon's logger
 * (src/daemon/log.ts) beside pino with the wildcard redaction paths the daemon used before.
 *
 * Parameters (environment): PILED_BENCH_UNLOCKS (default 1,000; 200 with PILED_BENCH_QUICK=1),
 * PILED_BENCH_DIR (parent folder of the store; default the OS temp dir), PILED_BENCH_UNLOCK_GAP_MS
 * (idle time after each round of the main phase, default 0: back to back). Reproduce:
 * `npm run bench -- unlock`.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import fs, { closeSync, fsyncSync, openSync, writeSync } from "node:fs";
import { syncBuiltinESMExports } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { pino } from "pino";
import { unitNodeOptions } from "../prove/rig.js";
import { createLogger, REDACTED, SECRET_FIELDS } from "../src/daemon/log.js";
import type { PileCore } from "../src/pile/index.js";
import { nodeSuite } from "../src/protocol/node-suite.js";
import { stop, unlock } from "../src/sdk/carrier.js";
import type { Store } from "../src/store/index.js";
import { RIG_PILE, type UnlockRig, unlockRig } from "./fixtures/unlock-rig.js";
import { fsType, machine, round } from "./machine.js";
import { median, percentile } from "./util.js";

export const name = "unlock";

const quick = process.env.PILED_BENCH_QUICK === "1";
const UNLOCKS = Number(process.env.PILED_BENCH_UNLOCKS ?? (quick ? 200 : 1000));
const WARMUP = quick ? 20 : 50;
const BREAKDOWN = quick ? 100 : 300;
const PARENT = process.env.PILED_BENCH_DIR ?? tmpdir();
/** Idle time between rounds (a pile's unlocks are rare: its code paths are not kept hot). */
const GAP_MS = Number(process.env.PILED_BENCH_UNLOCK_GAP_MS ?? 0);
const CMD = `${GAP_MS > 0 ? `PILED_BENCH_UNLOCK_GAP_MS=${GAP_MS} ` : ""}${process.env.PILED_BENCH_DIR ? `PILED_BENCH_DIR=${PARENT} ` : ""}${process.env.PILED_BENCH_UNLOCKS ? `PILED_BENCH_UNLOCKS=${UNLOCKS} ` : ""}${quick ? "PILED_BENCH_QUICK=1 " : ""}npm run bench -- unlock`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One unlock and its STOP through the rig; returns PRESENT → RESULT ACCEPTED, ms. */
async function oneUnlock(r: UnlockRig, i: number): Promise<number> {
  const issued = r.issuer.issue({ deviceId: `VIN-U${i}`, pileId: RIG_PILE, validForS: 3600 });
  if (!issued.ok) throw new Error(`issuer refused: ${issued.error.code}`);
  const c = issued.value;
  const link = r.radio.connect();
  const common = { verifySecret: c.verifySecret, pileId: RIG_PILE, timeoutMs: 10_000, suite: nodeSuite };
  const outcome = await unlock(link, { ...common, code: c.code });
  if (outcome.kind !== "accepted") throw new Error(`unlock ${i}: ${JSON.stringify(outcome)}`);
  const ms = r.radio.acceptedAt - r.radio.presentAt;
  const s = await stop(link, { ...common, codeId: c.codeId, keyId: c.keyId });
  if (s.kind !== "stopped") throw new Error(`stop ${i}: ${JSON.stringify(s)}`);
  await link.close();
  for (let k = 0; r.runtime.snapshot().state !== "AVAILABLE"; k++) {
    if (k > 2000) throw new Error(`round ${i}: the pile stays ${r.runtime.snapshot().state}`);
    await sleep(2);
  }
  return ms;
}

/** The references on the same file system: a durable SQLite commit, a bare fsync. */
class References {
  readonly #db: Database.Database;
  readonly #ins: Database.Statement;
  readonly #fd: number;
  readonly #block = randomBytes(4096);
  constructor(dir: string) {
    this.#db = new Database(join(dir, "reference.db"));
    this.#db.pragma("journal_mode = WAL");
    this.#db.pragma("synchronous = FULL");
    this.#db.exec("CREATE TABLE r (id BLOB PRIMARY KEY, v BLOB NOT NULL)");
    this.#ins = this.#db.prepare("INSERT INTO r (id, v) VALUES (?, ?)");
    this.#fd = openSync(join(dir, "fsync.bin"), "w");
    writeSync(this.#fd, this.#block, 0, 4096, 0);
    fsyncSync(this.#fd);
  }
  commitMs(): number {
    const id = randomBytes(16);
    const v = randomBytes(120); // a ledger row: ids, times, device id, MAC
    const t0 = performance.now();
    this.#ins.run(id, v);
    return performance.now() - t0;
  }
  fsyncMs(): number {
    const t0 = performance.now();
    writeSync(this.#fd, this.#block, 0, 4096, 0);
    fsyncSync(this.#fd);
    return performance.now() - t0;
  }
  close(): void {
    this.#db.close();
    closeSync(this.#fd);
  }
}

const stats = (xs: number[]) => ({
  p50: round(percentile(xs, 0.5), 3),
  p99: round(percentile(xs, 0.99), 3),
  max: round(Math.max(...xs), 3),
});

/** Time summed per part inside the PRESENT → RESULT window of each round. */
type Parts = Record<string, number>;

/** Wraps `obj[key]` so its time inside an open window adds to `parts[part]`; returns the undo. */
function timed(obj: object, key: string, part: string, acc: { open: boolean; parts: Parts }): () => void {
  const o = obj as Record<string, unknown>;
  const orig = o[key] as (...a: unknown[]) => unknown;
  o[key] = function (this: unknown, ...a: unknown[]) {
    if (!acc.open) return orig.apply(this, a);
    const t0 = performance.now();
    try {
      return orig.apply(this, a);
    } finally {
      acc.parts[part] = (acc.parts[part] ?? 0) + performance.now() - t0;
    }
  };
  return () => {
    o[key] = orig;
  };
}

const IDENTITY_FS = ["openSync", "writeSync", "fsyncSync", "closeSync", "renameSync"] as const;

/** Rounds with the window instrumented: medians of each part's time per unlock. */
async function breakdown(r: UnlockRig, n: number, from: number): Promise<Record<string, number>> {
  const acc = { open: false, parts: {} as Parts };
  const rows: Parts[] = [];
  const totals: number[] = [];
  const lines: number[] = [];
  let linesAt = 0;
  const undo = [
    timed(r.runtime.core as PileCore, "handle", "core.handle", acc),
    timed((r.opened.store as Store).sessions, "beginWithCode", "store.beginWithCode", acc),
    timed(fs, "statfsSync", "statfs (free space)", acc),
    ...IDENTITY_FS.map((f) => timed(fs, f, "identity file (fs calls)", acc)),
  ];
  syncBuiltinESMExports(); // identity.ts and store-health.ts import these by name
  r.radio.onPresent = () => {
    acc.parts = {};
    acc.open = true;
    linesAt = r.logLines();
  };
  r.radio.onAccepted = () => {
    acc.open = false;
    rows.push(acc.parts);
    lines.push(r.logLines() - linesAt);
  };
  try {
    for (let i = 0; i < n; i++) totals.push(await oneUnlock(r, from + i));
  } finally {
    for (const u of undo) u();
    syncBuiltinESMExports();
    r.radio.onPresent = undefined;
    r.radio.onAccepted = undefined;
  }
  const partMedian = (k: string) => median(rows.map((p) => p[k] ?? 0));
  const total = median(totals);
  const begin = partMedian("store.beginWithCode");
  const ident = partMedian("identity file (fs calls)");
  const core = partMedian("core.handle");
  const statfs = partMedian("statfs (free space)");
  return {
    rounds: n,
    totalMs: round(total, 3),
    coreHandleMs: round(core, 3),
    storeBeginWithCodeMs: round(begin, 3),
    "of which sqliteCommitAndMarksReadMs": round(begin - ident, 3),
    "of which identityFileMs": round(ident, 3),
    statfsMs: round(statfs, 3),
    restMs: round(total - core - begin - statfs, 3),
    logLinesInWindow: median(lines),
  };
}

/** The marks the store reads back after each ledger change (guard.ts readMarks), timed alone. */
function marksReadMs(r: UnlockRig): number {
  const db = new Database(join(r.config.stateDir, "piled.db"), { readonly: true });
  try {
    const q = () => {
      db.prepare("SELECT count(*) FROM ledger").pluck().get();
      db.prepare("SELECT ms FROM time_floor WHERE id = 1").pluck().get();
      db.prepare("SELECT count(*) FROM faults WHERE cleared_at IS NULL").pluck().get();
    };
    const xs: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t0 = performance.now();
      q();
      xs.push(performance.now() - t0);
    }
    return round(median(xs), 4);
  } finally {
    db.close();
  }
}

/**
 * The rig runs in a node of its own, started as the daemon runs: the unit's NODE_OPTIONS and
 * V8 without its optimizing compiler (src/daemon/memory.ts), which is the process's and would
 * otherwise slow the benches after this one. PILED_BENCH_UNLOCK_TURBOFAN=1 keeps the optimizing
 * compiler in the rig, to measure what it changes.
 */
export async function run(): Promise<Record<string, unknown>> {
  const turbofan = process.env.PILED_BENCH_UNLOCK_TURBOFAN === "1";
  const nodeOptions = unitNodeOptions();
  const child = spawn(
    process.execPath,
    [fileURLToPath(new URL("./fixtures/unlock-child.js", import.meta.url))],
    {
      env: { ...process.env, NODE_OPTIONS: nodeOptions },
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => {
    out += d;
  });
  const [code] = (await once(child, "exit")) as [number | null];
  if (code !== 0) throw new Error(`the unlock rig's node exited ${code}`);
  const figures = JSON.parse(out) as Record<string, unknown>;
  return {
    ...figures,
    command: `${turbofan ? "PILED_BENCH_UNLOCK_TURBOFAN=1 " : ""}${CMD}`,
    v8: { nodeOptions, optimizingCompiler: turbofan },
  };
}

/** The measurement, in the rig's node (fixtures/unlock-child.ts). */
export async function measure(): Promise<Record<string, unknown>> {
  const r = await unlockRig({ parent: PARENT });
  const refs = new References(r.dir);
  const unlocks: number[] = [];
  const commits: number[] = [];
  const fsyncs: number[] = [];
  try {
    for (let i = 0; i < WARMUP + UNLOCKS; i++) {
      const u = await oneUnlock(r, i);
      const c = refs.commitMs();
      const f = refs.fsyncMs();
      if (GAP_MS > 0) await sleep(GAP_MS);
      if (i < WARMUP) continue;
      unlocks.push(u);
      commits.push(c);
      fsyncs.push(f);
    }
    const ledgerRows = r.opened.store.ledger.count();
    const parts = await breakdown(r, BREAKDOWN, WARMUP + UNLOCKS);
    const marks = marksReadMs(r);
    const u = stats(unlocks);
    const c = stats(commits);
    const f = stats(fsyncs);
    return {
      command: CMD,
      machine: { ...machine(), storeDir: PARENT, fileSystem: fsType(r.dir) },
      unlocks: unlocks.length,
      ...(quick ? { quick: `PILED_BENCH_QUICK=1: ${UNLOCKS} unlocks instead of 1,000` } : {}),
      warmupUnlocks: WARMUP,
      gapBetweenRoundsMs: GAP_MS,
      presentToAcceptedMs: u,
      durableCommitMs: c,
      bareFsyncMs: f,
      p50OverCommit: round(u.p50 / c.p50, 2),
      p99OverCommit: round(u.p99 / c.p99, 2),
      p50OverFsync: round(u.p50 / f.p50, 2),
      p99OverFsync: round(u.p99 / f.p99, 2),
      goal: "p99OverCommit <= 1.5",
      breakdown: {
        ...parts,
        marksReadAloneMs: marks,
        logLineUs: logLineUs(),
        ledgerRowsAtStart: ledgerRows,
      },
    };
  } finally {
    refs.close();
    await r.close();
  }
}

/** One "session accepted" line: the daemon's logger, and pino with the redaction paths of before. */
function logLineUs(): { daemon: number; pinoRedactPathsBefore: number; pinoPlain: number } {
  const sink = () => pino.destination({ dest: "/dev/null", sync: false });
  const before: string[] = [];
  for (const f of SECRET_FIELDS) for (let d = 0; d <= 5; d++) before.push(`${"*.".repeat(d)}${f}`);
  const base = { level: "info", base: { name: "piled" } };
  const loggers = {
    daemon: createLogger({ destination: sink() }).child({ component: "pile" }),
    pinoRedactPathsBefore: pino({ ...base, redact: { paths: before, censor: REDACTED } }, sink()).child({
      component: "pile",
    }),
    pinoPlain: pino(base, sink()).child({ component: "pile" }),
  };
  const fields = {
    sessionId: "00".repeat(16),
    codeId: "11".repeat(16),
    carrier: "vehicle",
    deviceId: "VIN-1",
  };
  const out: Record<string, number> = {};
  for (const [k, log] of Object.entries(loggers)) {
    const rates: number[] = [];
    for (let r = 0; r < 5; r++) {
      const t0 = performance.now();
      for (let i = 0; i < 2000; i++) log.info(fields, "session accepted");
      rates.push(((performance.now() - t0) * 1000) / 2000);
    }
    out[k] = round(median(rates), 1);
  }
  return out as { daemon: number; pinoRedactPathsBefore: number; pinoPlain: number };
}
