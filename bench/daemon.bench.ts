/**
 * Figures of the BUILT daemon as a process (dist/src/daemon/piled.js, simulated plant and meter,
 * BLE on the emulated radio), each with its reference from the same run:
 *   - start-up: spawn → READY=1 on a notify socket (NOTIFY_SOCKET), with and without BLE, against
 *     `node -e 0` (spawn → exit) and against importing the daemon's modules alone;
 *   - memory: VmRSS/VmHWM idle and after N sessions over the radio, the main isolate's live heap
 *     after a full GC (SIGUSR2, read from the status counters), open fds before and after, store
 *     size per session; reference: an idle bare node process;
 *   - CPU: % of one core, idle and while charging, over a window (utime+stime from /proc/PID/stat);
 *   - durable writes: fsync+fdatasync calls counted by `strace -f -c` attached to the daemon, per
 *     hour of charging (over the CPU window) and per control command (status, and a command the
 *     daemon audits).
 * The daemon is started with the node options of systemd/piled.service (its NODE_OPTIONS line),
 * as the installed unit starts it; the idle RSS without them is reported beside.
 * Parameters (environment): PILED_BENCH_NODE_OPTIONS (instead of the unit's), PILED_BENCH_WINDOW_S (CPU/fsync window, default 60; 5 in quick mode),
 * PILED_BENCH_SESSIONS (default 200; 3 in quick mode), PILED_BENCH_QUICK=1.
 * Reproduce: `npm run bench -- daemon` (with the environment above).
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { unitNodeOptions } from "../prove/rig.js";
import { carrierSession, type ProcSample, procSample, SimDaemon } from "../prove/soak.js";
import { median } from "./util.js";

export const name = "daemon";

const quick = process.env.PILED_BENCH_QUICK === "1";
const WINDOW_S = Number(process.env.PILED_BENCH_WINDOW_S ?? (quick ? 5 : 60));
const SESSIONS = Number(process.env.PILED_BENCH_SESSIONS ?? (quick ? 3 : 200));
const ROUNDS = quick ? 2 : 5;
const DIST = fileURLToPath(new URL("..", import.meta.url));
const OPTS_ENV = process.env.PILED_BENCH_NODE_OPTIONS;
const CMD = `${OPTS_ENV !== undefined ? `PILED_BENCH_NODE_OPTIONS="${OPTS_ENV}" ` : ""}PILED_BENCH_WINDOW_S=${WINDOW_S} PILED_BENCH_SESSIONS=${SESSIONS}${quick ? " PILED_BENCH_QUICK=1" : ""} npm run bench -- daemon`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** PILED_BENCH_NODE_OPTIONS replaces the unit's options (to measure another V8 sizing). */
const NODE_OPTIONS = OPTS_ENV ?? unitNodeOptions();
const daemonEnv = (extra: Record<string, string> = {}) => ({ ...extra, NODE_OPTIONS });

interface RecvSocket {
  bind(path: string): void;
  close(): void;
  on(ev: "error", l: (e: Error) => void): void;
}
const unixDgram = createRequire(import.meta.url)("unix-dgram") as {
  createSocket(type: "unix_dgram", l: (b: Buffer) => void): RecvSocket;
};

function spawnExitMs(args: string[]): Promise<number> {
  const t0 = performance.now();
  const c = spawn(process.execPath, args, { stdio: "ignore" });
  return new Promise((r) => c.once("exit", () => r(performance.now() - t0)));
}

/** The modules piled.js loads, imported and nothing run (piled.js itself starts the daemon). */
const IMPORT_ONLY = `await Promise.all(${JSON.stringify(
  [
    "src/daemon/daemon.js",
    "src/daemon/config.js",
    "src/hw/gpio/safe.js",
    "src/store/index.js",
    "src/hw/gpio/onoff-lines.js",
  ].map((m) => join(DIST, m)),
)}.map((m) => import(m)))`;

/** Spawn → READY=1, ms, for a daemon on the simulated plant (BLE on a radio when asked). */
async function readyMs(ble: boolean): Promise<number> {
  const d = new SimDaemon();
  const sock = join(d.dir, "notify.sock");
  let ready = 0;
  const n = unixDgram.createSocket("unix_dgram", (b) => {
    if (ready === 0 && b.toString().split("\n").includes("READY=1")) ready = performance.now();
  });
  n.on("error", () => {});
  n.bind(sock);
  try {
    await d.start({ ble, env: daemonEnv({ NOTIFY_SOCKET: sock }) });
    while (ready === 0) await sleep(5);
    return ready - d.spawnedAt;
  } finally {
    n.close();
    await d.stop();
  }
}

function cpuTicks(pid: number): number {
  const f = spawnSync("cat", [`/proc/${pid}/stat`], { encoding: "utf8" }).stdout;
  const rest = f.slice(f.lastIndexOf(")") + 2).split(" ");
  return Number(rest[11]) + Number(rest[12]); // utime, stime (fields 14, 15)
}

async function cpuPercent(pid: number, seconds: number): Promise<number> {
  const hz = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;
  const a = cpuTicks(pid);
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const b = cpuTicks(pid);
  return Math.round(((b - a) / hz / ((performance.now() - t0) / 1000)) * 10_000) / 100;
}

/** fsync+fdatasync calls of `pid` (all threads) while `during` runs, by `strace -f -c`. */
async function countSyncs(pid: number, during: () => Promise<void>): Promise<number | null> {
  if (spawnSync("sh", ["-c", "command -v strace"]).status !== 0) return null;
  const st: ChildProcess = spawn("strace", ["-f", "-c", "-e", "trace=fsync,fdatasync", "-p", String(pid)], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let err = "";
  st.stderr!.on("data", (b: Buffer) => {
    err += b.toString();
  });
  await sleep(500); // attached
  await during();
  const gone = new Promise((r) => st.once("exit", r));
  st.kill("SIGINT");
  await gone;
  let calls = 0;
  for (const l of err.split("\n")) {
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(fsync|fdatasync)\s*$/.exec(l);
    if (m) calls += Number(m[1]);
  }
  return calls;
}

async function bareNodeRss(nodeOptions = ""): Promise<ProcSample> {
  const c = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], {
    stdio: "ignore",
    env: { ...process.env, NODE_OPTIONS: nodeOptions },
  });
  await sleep(1000);
  const s = procSample(c.pid!);
  c.kill("SIGTERM");
  await new Promise((r) => c.once("exit", r));
  return s;
}

/** The status view's memory counters (src/daemon/memory.ts), after a full GC asked by SIGUSR2. */
async function liveMemory(
  d: SimDaemon,
): Promise<{ liveHeapKb: number; heapTotalKb: number; externalKb: number }> {
  process.kill(d.child.pid!, "SIGUSR2");
  await sleep(500);
  const c = ((await d.status())?.counters ?? {}) as Record<string, number>;
  return {
    liveHeapKb: c["memory.liveHeapKb"] ?? Number.NaN,
    heapTotalKb: c["memory.heapTotalKb"] ?? Number.NaN,
    externalKb: c["memory.externalKb"] ?? Number.NaN,
  };
}

/** Idle VmRSS 3 s after READY of a daemon started with `nodeOptions` (BLE on). */
async function idleRssKb(nodeOptions: string): Promise<number> {
  const d = new SimDaemon();
  try {
    await d.start({ ble: true, env: { NODE_OPTIONS: nodeOptions } });
    await sleep(3000);
    return procSample(d.child.pid!).rssKb;
  } finally {
    await d.stop();
  }
}

export async function run(): Promise<Record<string, unknown>> {
  const e0: number[] = [];
  const imp: number[] = [];
  const noBle: number[] = [];
  const withBle: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    e0.push(await spawnExitMs(["-e", "0"]));
    imp.push(await spawnExitMs(["--input-type=module", "-e", IMPORT_ONLY]));
    noBle.push(await readyMs(false));
    withBle.push(await readyMs(true));
  }
  const startup = {
    command: CMD,
    nodeE0Ms: Math.round(median(e0)),
    importOnlyMs: Math.round(median(imp)),
    readyNoBleMs: Math.round(median(noBle)),
    readyBleMs: Math.round(median(withBle)),
    readyBleOverNodeE0: round2(median(withBle) / median(e0)),
    readyBleOverImportOnly: round2(median(withBle) / median(imp)),
    readyNoBleOverImportOnly: round2(median(noBle) / median(imp)),
  };

  const bareSample = await bareNodeRss();
  const bare = bareSample.rssKb;
  const bareWithOptions = (await bareNodeRss(NODE_OPTIONS)).rssKb;
  const idleWithoutOptions = await idleRssKb("");
  const d = new SimDaemon();
  try {
    await d.start({ ble: true, env: daemonEnv() });
    await sleep(3000);
    const pid = d.child.pid!;
    const state = join(d.dir, "state");
    const idle = procSample(pid, state);
    const liveIdle = await liveMemory(d);
    const cpuIdle = await cpuPercent(pid, WINDOW_S);
    for (let i = 0; i < SESSIONS; i++) await carrierSession(d, i);
    await d.waitState((s) => s.state === "AVAILABLE");
    const after = procSample(pid, state);
    const liveAfter = await liveMemory(d);
    // charging: one session held for the window; CPU and syncs measured over it
    let cpuCharging = 0;
    let syncsCharging: number | null = null;
    await carrierSession(d, -1, {
      during: async () => {
        // one window for the CPU, then one under strace (a traced process runs slower)
        cpuCharging = await cpuPercent(pid, WINDOW_S);
        syncsCharging = await countSyncs(pid, async () => {
          await sleep(WINDOW_S * 1000);
        });
      },
    });
    await d.waitState((s) => s.state === "AVAILABLE");
    const K = quick ? 20 : 100;
    const syncsStatus = await countSyncs(pid, async () => {
      for (let i = 0; i < K; i++) await d.control("status");
    });
    const syncsAudited = await countSyncs(pid, async () => {
      for (let i = 0; i < K; i++) await d.control("clear-fault", ["all"]).catch(() => undefined);
    });
    const perHour = (n: number | null) => (n === null ? null : Math.round((n * 3600) / WINDOW_S));
    return {
      memory: {
        command: CMD,
        nodeOptions: NODE_OPTIONS,
        bareNodeRssKb: bare,
        bareNodeWithOptionsRssKb: bareWithOptions,
        idleRssKb: idle.rssKb,
        idleHwmKb: idle.hwmKb,
        idleOverBareNode: round2(idle.rssKb / bare),
        idleRssAnonKb: idle.rssAnonKb,
        idleRssFileKb: idle.rssFileKb,
        bareNodeRssAnonKb: bareSample.rssAnonKb,
        bareNodeRssFileKb: bareSample.rssFileKb,
        idleRssWithoutOptionsKb: idleWithoutOptions,
        idleLiveHeapKb: liveIdle.liveHeapKb,
        idleHeapTotalKb: liveIdle.heapTotalKb,
        idleExternalKb: liveIdle.externalKb,
        sessions: SESSIONS,
        afterRssKb: after.rssKb,
        afterHwmKb: after.hwmKb,
        rssGrowthKb: after.rssKb - idle.rssKb,
        rssAnonGrowthKb: after.rssAnonKb - idle.rssAnonKb,
        afterLiveHeapKb: liveAfter.liveHeapKb,
        liveHeapGrowthKb: liveAfter.liveHeapKb - liveIdle.liveHeapKb,
        fdsBefore: idle.fds,
        fdsAfter: after.fds,
        storeBytesBefore: idle.storeBytes,
        storeBytesAfter: after.storeBytes,
        storeBytesPerSession:
          SESSIONS > 0 ? Math.round((after.storeBytes - idle.storeBytes) / SESSIONS) : null,
        note: "RSS = anonymous (what the daemon allocated) + file-backed (pages of mapped files, mostly the node binary's: shared with every node process, clean, reclaimed by the kernel under pressure); store size counts piled.db with its -wal and -shm (the WAL grows until a checkpoint); live heap = the main isolate's heap used after a full GC (SIGUSR2), the write worker's isolate not included",
      },
      startup,
      cpu: {
        command: CMD,
        windowS: WINDOW_S,
        idlePercentOfCore: cpuIdle,
        chargingPercentOfCore: cpuCharging,
        chargingOverIdle: cpuIdle > 0 ? round2(cpuCharging / cpuIdle) : null,
      },
      durableWrites: {
        command: CMD,
        method:
          syncsStatus === null
            ? "strace missing (Debian package strace): not measured"
            : "strace -f -c -e trace=fsync,fdatasync -p <daemon pid> (every thread, the store's writer included)",
        windowS: WINDOW_S,
        chargingSyncsInWindow: syncsCharging,
        perHourOfCharging: perHour(syncsCharging),
        commands: K,
        perStatusCommand: syncsStatus === null ? null : round2(syncsStatus / K),
        perClearFaultCommand: syncsAudited === null ? null : round2(syncsAudited / K),
      },
    };
  } finally {
    await d.stop();
  }
}

const round2 = (x: number) => Math.round(x * 100) / 100;
