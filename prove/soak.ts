/**
 * `npm run prove -- soak [--sessions N] [--seed N]`: sessions back to back through the BUILT
 * daemon (simulated plant and meter, BLE on the emulated radio), each unlocked by a carrier over
 * the air, with faults mixed in: meter silence, weld and clear, plug pulls, bad proofs, key
 * rotation (a new key file and SIGHUP). Reports RSS (VmRSS/VmHWM), open fds and store size at
 * the start and the end, and the ledger's row count; a violation is a pile that does not come
 * back to AVAILABLE, a fresh code refused, a bad proof accepted, or a ledger that holds more
 * rows than codes were accepted.
 */
import { type ChildProcess, spawn } from "node:child_process";
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import type { StatusView } from "../src/control/index.js";
import { requestControl } from "../src/control/index.js";
import { simPileConfig } from "../src/daemon/sim-config.js";
import type { Status } from "../src/protocol/messages.js";
import { Issuer } from "../src/sdk/issuer.js";
import { writeKeyFile } from "../src/sdk/keyfile.js";
import { SimCarrier } from "../src/sim/carriers.js";
import { type Radio, type RadioBridge, startRadio } from "../src/sim/radio.js";
import { PILED, sleep, unitNodeOptions } from "./rig.js";
import { Rng } from "./rng.js";

export interface ProcSample {
  rssKb: number;
  hwmKb: number;
  /** Of rssKb: memory the process allocated (heaps, caches) … */
  rssAnonKb: number;
  /** … and pages of mapped files: mostly the node binary's code and data, shared and clean. */
  rssFileKb: number;
  fds: number;
  storeBytes: number;
}

export interface SoakSummary {
  seed: number;
  sessions: number;
  /** The daemon's NODE_OPTIONS (the unit's unless told otherwise). */
  nodeOptions: string;
  /** The meter's pace when not the simulated pile's (ms). */
  meter: { pollMs?: number; staleMs?: number };
  /** Wall time of the sessions, and per kind the median and the longest session (ms). */
  elapsedS: number;
  durationsMs: Record<string, { median: number; max: number }>;
  accepted: number;
  faults: Record<string, number>;
  start: ProcSample & { liveHeapKb: number };
  end: ProcSample & { liveHeapKb: number };
  /**
   * The sample after the first `afterSessions` sessions (300, or a tenth of a shorter run): what
   * fills once (code compiled as each path first runs, caches, the heap's size) is behind it.
   */
  settled?: ProcSample & { liveHeapKb: number; afterSessions: number };
  growth: {
    rssKb: number;
    rssAnonKb: number;
    liveHeapKb: number;
    fds: number;
    storeBytesPerSession: number;
    /** From the settled sample to the end. */
    sinceSettled?: { rssKb: number; rssAnonKb: number; liveHeapKb: number; sessions: number };
  };
  ledgerRows: number;
  violations: string[];
}

/** VmRSS/VmHWM (kB) and open fds of a process, from /proc. */
export function procSample(pid: number, stateDir?: string): ProcSample {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? Number.NaN);
  let storeBytes = 0;
  if (stateDir) for (const f of readdirSync(stateDir)) storeBytes += statSync(join(stateDir, f)).size;
  return {
    rssKb: kb("VmRSS"),
    hwmKb: kb("VmHWM"),
    rssAnonKb: kb("RssAnon"),
    rssFileKb: kb("RssFile"),
    fds: readdirSync(`/proc/${pid}/fd`).length,
    storeBytes,
  };
}

/** Rows of the ledger table, read from a copy of the state (the daemon keeps the store open). */
export function ledgerRows(stateDir: string): number {
  const copy = mkdtempSync(join(tmpdir(), "piled-soak-db-"));
  try {
    for (const f of readdirSync(stateDir))
      if (f.startsWith("piled.db")) copyFileSync(join(stateDir, f), join(copy, f));
    const db = new Database(join(copy, "piled.db"));
    const n = (db.prepare("SELECT count(*) AS n FROM ledger").get() as { n: number }).n;
    db.close();
    return n;
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
}

/** A built daemon on the simulated plant, BLE on a radio of its own. */
export class SimDaemon {
  readonly dir = mkdtempSync(join(tmpdir(), "piled-soak-"));
  readonly socket = join(this.dir, "control.sock");
  readonly pileId = "SOAK-1";
  radio!: Radio;
  carrierBridge!: RadioBridge;
  child!: ChildProcess;
  issuer!: Issuer;
  keyId = 1;
  /** performance.now() right after the spawn. */
  spawnedAt = 0;

  /**
   * `piled`: another build's daemon (an A/B of two trees); `config`: changes to the simulated
   * pile's config before it is written (e.g. the meter on a port served outside the daemon).
   */
  async start(
    opts: {
      ble?: boolean;
      env?: Record<string, string>;
      wrap?: string[];
      piled?: string;
      config?: (c: Record<string, unknown>) => Record<string, unknown>;
    } = {},
  ): Promise<void> {
    mkdirSync(join(this.dir, "keys"), { mode: 0o700 });
    this.rotateKeyFiles();
    let blePath: string | undefined;
    if (opts.ble !== false) {
      this.radio = await startRadio();
      blePath = (await this.radio.bridge()).path;
      this.carrierBridge = await this.radio.bridge();
    }
    const cfg = join(this.dir, "piled.json");
    const config: Record<string, unknown> = simPileConfig({ pileId: this.pileId, dir: this.dir, blePath });
    writeFileSync(cfg, JSON.stringify(opts.config ? opts.config(config) : config));
    const argv = [...(opts.wrap ?? []), process.execPath, opts.piled ?? PILED, "--config", cfg];
    this.child = spawn(argv[0]!, argv.slice(1), { stdio: "ignore", env: { ...process.env, ...opts.env } });
    this.spawnedAt = performance.now();
    const until = Date.now() + 30_000;
    for (;;) {
      const s = await this.status();
      if (s && (opts.ble === false || s.ble === "up") && s.state === "AVAILABLE") break;
      if (Date.now() > until || this.child.exitCode !== null) throw new Error("the daemon did not come up");
      await sleep(100);
    }
  }

  /** Writes key-<id+1>.json, drops the old file; the issuer holds both until the reload. */
  rotateKeyFiles(): void {
    const key = crypto.getRandomValues(new Uint8Array(32));
    const old = this.issuer ? this.keyId : undefined;
    if (old !== undefined) this.keyId++;
    const w = writeKeyFile(join(this.dir, "keys", `key-${this.keyId}.json`), this.keyId, key);
    if (!w.ok) throw w.error;
    if (old !== undefined) unlinkSync(join(this.dir, "keys", `key-${old}.json`));
    this.issuer = new Issuer({ keys: [{ keyId: this.keyId, key }] });
  }

  async control(cmd: string, args: string[] = []): Promise<unknown> {
    const r = await requestControl(this.socket, cmd, args, 10_000);
    if (!r.ok) throw new Error(`${cmd}: ${r.error.message}`);
    if (!r.value.ok) throw new Error(`${cmd}: ${r.value.error.code} ${r.value.error.message}`);
    return r.value.result;
  }

  async status(): Promise<StatusView | undefined> {
    return (await this.control("status").catch(() => undefined)) as StatusView | undefined;
  }

  async waitState(pred: (s: StatusView) => boolean, ms = 15_000): Promise<StatusView | undefined> {
    const until = Date.now() + ms;
    for (;;) {
      const s = await this.status();
      if (s && pred(s)) return s;
      if (Date.now() > until) return undefined;
      await sleep(50);
    }
  }

  async stop(): Promise<void> {
    if (this.child?.pid && this.child.exitCode === null && this.child.signalCode === null) {
      const gone = new Promise((r) => this.child.once("exit", r));
      process.kill(this.child.pid, "SIGTERM");
      await gone;
    }
    await this.radio?.close().catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const FAULTS = [
  "none",
  "none",
  "none",
  "none",
  "none",
  "plug-pull",
  "meter-silent",
  "weld",
  "bad-proof",
  "rotate",
] as const;
export type Fault = (typeof FAULTS)[number];

/** One carrier session over the air; returns the outcome kind. */
export async function carrierSession(
  d: SimDaemon,
  n: number,
  opts: { badProof?: boolean; during?: () => Promise<void> } = {},
): Promise<string> {
  const code = d.issuer.issueFor({
    deviceId: `VIN-S${n}`,
    pileId: d.pileId,
    validForS: 3600,
    vehicle: { inAcquisitionState: true },
  });
  if (!code.ok) throw new Error(code.error.message);
  const c = new SimCarrier("vehicle", "vehicle", { kind: "uart", path: d.carrierBridge.path });
  try {
    c.receive(
      opts.badProof ? { ...code.value, verifySecret: code.value.verifySecret.map((b) => b ^ 1) } : code.value,
    );
    const states: Status[] = [];
    const out = await c.unlock((s) => states.push(s));
    if (out.kind !== "accepted") return "reason" in out ? `${out.kind} ${out.reason}` : out.kind;
    // CHARGING is entered as the contactor is told to close; a session charges once it reads closed
    // (a stop before that waits out the whole opening window, as no feedback change confirms it)
    if (!(await d.waitState((s) => s.state === "CHARGING" && s.contactor === "closed")))
      return "accepted (but the contactor never read closed in CHARGING)";
    if (opts.during) await opts.during();
    else await c.stop(() => undefined);
    return "accepted";
  } finally {
    await c.close();
  }
}

/** The daemon's /proc figures and its live heap, sampled together. */
async function memorySample(d: SimDaemon, stateDir: string): Promise<ProcSample & { liveHeapKb: number }> {
  return { ...procSample(d.child.pid!, stateDir), liveHeapKb: await liveHeapKb(d) };
}

type Memory = Pick<ProcSample, "rssKb" | "rssAnonKb"> & { liveHeapKb: number };
const grown = (from: Memory, to: Memory) => ({
  rssKb: to.rssKb - from.rssKb,
  rssAnonKb: to.rssAnonKb - from.rssAnonKb,
  liveHeapKb: to.liveHeapKb - from.liveHeapKb,
});

/** The main isolate's heap used after a full GC (SIGUSR2), from the status view's counters. */
export async function liveHeapKb(d: SimDaemon): Promise<number> {
  process.kill(d.child.pid!, "SIGUSR2");
  await sleep(500);
  const c = ((await d.status())?.counters ?? {}) as Record<string, number>;
  return c["memory.liveHeapKb"] ?? Number.NaN;
}

const medianOf = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

async function recover(d: SimDaemon): Promise<boolean> {
  for (const a of ["clear", "meter-ok", "plug-in"]) await d.control("sim", [a]).catch(() => undefined);
  const until = Date.now() + 20_000;
  while (Date.now() < until) {
    const s = await d.status();
    if (s?.state === "AVAILABLE") return true;
    if (s?.state === "FAULTED") await d.control("clear-fault", ["all"]).catch(() => undefined);
    else if (s?.state === "CHARGING" || s?.state === "PREPARING")
      await d.control("stop").catch(() => undefined);
    await sleep(50);
  }
  return false;
}

export async function runSoak(o: {
  seed: number;
  sessions: number;
  /** Stop after this many minutes of sessions, reporting the sessions run (0: no limit). */
  minutes?: number;
  /** The daemon's NODE_OPTIONS; the unit's by default. */
  nodeOptions?: string;
  /** The faults to draw from (all of them by default). */
  mix?: readonly Fault[];
  /**
   * The meter's pace: `pollMs` while a session runs (the simulated pile's 500 ms by default) and
   * `staleMs`, the age at which a reading is stale (the daemon's default, 5 s). A faster pace
   * runs more sessions in an hour; each session makes the same records either way.
   */
  meter?: { pollMs?: number; staleMs?: number };
  log?: (l: string) => void;
  plantBadProof?: boolean;
}): Promise<SoakSummary> {
  const nodeOptions = o.nodeOptions ?? unitNodeOptions();
  const took: Record<string, number[]> = {};
  const rng = new Rng(o.seed);
  const d = new SimDaemon();
  const v: string[] = [];
  const faults: Record<string, number> = {};
  let accepted = 0;
  const state = () => join(d.dir, "state");
  try {
    const m = o.meter ?? {};
    await d.start({
      env: { NODE_OPTIONS: nodeOptions },
      config: (c) => ({
        ...c,
        meter: { ...(c.meter as object), ...(m.pollMs ? { pollIntervalMs: m.pollMs } : {}) },
        ...(m.staleMs ? { deadlines: { meterStaleMs: m.staleMs } } : {}),
      }),
    });
    await carrierSession(d, -1); // warm-up: the first session sets up what every later one reuses
    accepted++;
    if (!(await recover(d))) v.push("the pile did not come back to AVAILABLE after the warm-up");
    const start = await memorySample(d, state());
    const settleAt = Math.min(300, Math.ceil(o.sessions / 10));
    let settled: SoakSummary["settled"];
    const began = performance.now();
    const until = o.minutes ? began + o.minutes * 60_000 : Number.POSITIVE_INFINITY;
    let ran = 0;
    for (let i = 0; i < o.sessions && performance.now() < until; i++) {
      const t0 = performance.now();
      const f: Fault = rng.pick(o.mix ?? FAULTS);
      faults[f] = (faults[f] ?? 0) + 1;
      if (f === "rotate") {
        d.rotateKeyFiles();
        process.kill(d.child.pid!, "SIGHUP");
        await sleep(300);
      }
      const during =
        f === "plug-pull"
          ? async () => {
              await d.control("sim", ["plug-out"]);
              await d.waitState((s) => s.state !== "CHARGING");
            }
          : f === "meter-silent"
            ? async () => {
                await d.control("sim", ["meter-silent"]);
                await d.waitState((s) => s.state !== "CHARGING", 30_000);
              }
            : f === "weld"
              ? async () => {
                  await d.control("sim", ["weld"]);
                  await d.control("stop");
                  const s = await d.waitState((s) => s.state === "FAULTED" && s.faults.includes("WELD"));
                  if (!s) v.push(`session ${i} (weld): a welded contactor was not latched as WELD`);
                }
              : undefined;
      // planted: the first session carries a good proof but is checked as a bad one
      const planted = o.plantBadProof === true && i === 0;
      const bad = f === "bad-proof" || planted;
      const out = await carrierSession(d, i, { badProof: bad && !planted, during }).catch(
        (e: unknown) => `error: ${String(e)}`,
      );
      if (bad && out.startsWith("accepted"))
        v.push(`session ${i}: a bad proof was accepted${o.plantBadProof ? " (planted)" : ""}`);
      if (!bad && out !== "accepted")
        v.push(
          `session ${i} (${f}): ${out.startsWith("accepted") ? out : `a fresh code was not accepted: ${out}`}`,
        );
      if (out.startsWith("accepted")) accepted++;
      if (!(await recover(d))) v.push(`session ${i} (${f}): the pile did not come back to AVAILABLE`);
      took[f] ??= [];
      took[f].push(performance.now() - t0);
      ran = i + 1;
      if (ran === settleAt) settled = { ...(await memorySample(d, state())), afterSessions: ran };
      if (d.child.exitCode !== null || d.child.signalCode !== null) {
        v.push(`session ${i}: the daemon died`);
        break;
      }
      if ((i + 1) % 50 === 0 || i + 1 === o.sessions) {
        const s = procSample(d.child.pid!, state());
        const min = ((performance.now() - began) / 60_000).toFixed(1);
        o.log?.(
          `soak: ${i + 1}/${o.sessions} sessions in ${min} min, RSS ${s.rssKb} kB (HWM ${s.hwmKb} kB), fds ${s.fds}, store ${s.storeBytes} B, ${v.length} violations`,
        );
      }
    }
    const elapsedS = Math.round((performance.now() - began) / 1000);
    const end = await memorySample(d, state());
    const rows = ledgerRows(state());
    if (rows > accepted) v.push(`ledger holds ${rows} rows for ${accepted} accepted codes`);
    return {
      seed: o.seed,
      sessions: ran,
      nodeOptions,
      meter: o.meter ?? {},
      elapsedS,
      durationsMs: Object.fromEntries(
        Object.entries(took).map(([k, xs]) => [
          k,
          { median: Math.round(medianOf(xs)), max: Math.round(Math.max(...xs)) },
        ]),
      ),
      accepted,
      faults,
      start,
      end,
      ...(settled ? { settled } : {}),
      growth: {
        ...grown(start, end),
        fds: end.fds - start.fds,
        storeBytesPerSession: ran > 0 ? Math.round((end.storeBytes - start.storeBytes) / ran) : 0,
        ...(settled
          ? {
              sinceSettled: { ...grown(settled, end), sessions: ran - settled.afterSessions },
            }
          : {}),
      },
      ledgerRows: rows,
      violations: v,
    };
  } finally {
    await d.stop();
  }
}
