/**
 * CPU of the BUILT daemon while idle (no session, BLE on the emulated radio), % of one core from
 * utime+stime of /proc/PID/stat (every thread of the daemon) over a window, in alternating rounds
 * so that a machine busy now and then weighs on every variant alike:
 *   - `simulatedPile`: the daemon as `npm start` runs it, the simulated meter's Modbus slave
 *     in the daemon's own process (what the `daemon` bench measures);
 *   - `meterOutside`: the same daemon with its meter adapter on a pty whose simulated slave runs in
 *     the bench's process: the daemon's own code path, as on a pile with a real meter;
 *   - `bareNode`: an idle `node` with one 1 s interval (the floor of any Node daemon);
 *   - with PILED_BENCH_AB_DIST=<another build's dist/>: `abSimulatedPile`, that build's daemon
 *     in the same rounds (an A/B of two trees; the other tree needs its src/ beside its dist/
 *     for the radio's shim).
 * Parameters (environment): PILED_BENCH_WINDOW_S (default 30; 5 in quick mode),
 * PILED_BENCH_ROUNDS (default 3; 1 in quick mode), PILED_BENCH_QUICK=1.
 * Reproduce: `npm run bench -- idle-cpu` (with the environment above).
 */
import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { unitNodeOptions } from "../prove/rig.js";
import { SimDaemon } from "../prove/soak.js";
import { SimMeter } from "../src/sim/meter/sim-meter.js";
import { openPtyPair } from "../src/sim/pty.js";
import { median } from "./util.js";

export const name = "idle-cpu";

const quick = process.env.PILED_BENCH_QUICK === "1";
const WINDOW_S = Number(process.env.PILED_BENCH_WINDOW_S ?? (quick ? 5 : 30));
const ROUNDS = Number(process.env.PILED_BENCH_ROUNDS ?? (quick ? 1 : 3));
const AB_DIST = process.env.PILED_BENCH_AB_DIST;
const CMD = `${AB_DIST ? `PILED_BENCH_AB_DIST=${AB_DIST} ` : ""}PILED_BENCH_WINDOW_S=${WINDOW_S} PILED_BENCH_ROUNDS=${ROUNDS}${quick ? " PILED_BENCH_QUICK=1" : ""} npm run bench -- idle-cpu`;
const NODE_OPTIONS = unitNodeOptions();
const SETTLE_MS = 3000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function cpuTicks(pid: number): number {
  const f = spawnSync("cat", [`/proc/${pid}/stat`], { encoding: "utf8" }).stdout;
  const rest = f.slice(f.lastIndexOf(")") + 2).split(" ");
  return Number(rest[11]) + Number(rest[12]); // utime, stime (fields 14, 15)
}

const HZ = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;

async function cpuPercent(pid: number): Promise<number> {
  const a = cpuTicks(pid);
  const t0 = performance.now();
  await sleep(WINDOW_S * 1000);
  const b = cpuTicks(pid);
  return ((b - a) / HZ / ((performance.now() - t0) / 1000)) * 100;
}

async function bareNode(): Promise<number> {
  const c = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], {
    stdio: "ignore",
    env: { ...process.env, NODE_OPTIONS },
  });
  try {
    await sleep(SETTLE_MS);
    return await cpuPercent(c.pid!);
  } finally {
    const gone = new Promise((r) => c.once("exit", r));
    c.kill("SIGTERM");
    await gone;
  }
}

/** An idle daemon on the simulated pile; `meterOutside`: its meter's slave in this process. */
async function idleDaemon(o: { piled?: string; meterOutside?: boolean }): Promise<number> {
  const d = new SimDaemon();
  let outside: { close(): Promise<void> } | undefined;
  try {
    let port: string | undefined;
    if (o.meterOutside) {
      const pair = await openPtyPair({ dir: d.dir });
      const slave = new SimMeter({ model: "sdm630" });
      await slave.attach(pair.a, { baudRate: 9600 });
      outside = {
        close: async () => {
          await slave.detach();
          await pair.close();
        },
      };
      port = pair.b;
    }
    await d.start({
      ble: true,
      env: { NODE_OPTIONS },
      ...(o.piled ? { piled: o.piled } : {}),
      ...(port
        ? {
            config: (c) => ({
              ...c,
              meter: { ...(c["meter"] as Record<string, unknown>), driver: "modbus", port },
            }),
          }
        : {}),
    });
    await sleep(SETTLE_MS);
    return await cpuPercent(d.child.pid!);
  } finally {
    await d.stop();
    await outside?.close();
  }
}

export async function run(): Promise<Record<string, unknown>> {
  const variants: [string, () => Promise<number>][] = [
    ["bareNode", bareNode],
    ["simulatedPile", () => idleDaemon({})],
    ["meterOutside", () => idleDaemon({ meterOutside: true })],
  ];
  if (AB_DIST)
    variants.push(["abSimulatedPile", () => idleDaemon({ piled: join(AB_DIST, "src/daemon/piled.js") })]);
  const got: Record<string, number[]> = Object.fromEntries(variants.map(([k]) => [k, []]));
  for (let r = 0; r < ROUNDS; r++) for (const [k, f] of variants) got[k]!.push(round2(await f()));
  const med = (k: string) => (got[k] ? round2(median(got[k]!)) : undefined);
  const sim = med("simulatedPile")!;
  return {
    command: CMD,
    windowS: WINDOW_S,
    rounds: ROUNDS,
    nodeOptions: NODE_OPTIONS,
    idlePercentOfCore: {
      simulatedPile: sim,
      meterOutside: med("meterOutside"),
      bareNode: med("bareNode"),
      ...(AB_DIST ? { abSimulatedPile: med("abSimulatedPile") } : {}),
    },
    simulatedMeterShare: round2(sim - med("meterOutside")!),
    ...(AB_DIST ? { simulatedPileOverAb: round2(sim / med("abSimulatedPile")!) } : {}),
    perRound: got,
  };
}

const round2 = (x: number) => Math.round(x * 100) / 100;
