/**
 * The BLE exchange against the BUILT daemon (dist/src/daemon/piled.js, started as prove/soak.ts's
 * SimDaemon starts it: the simulated plant and meter, BLE on the emulated radio, the node options
 * of systemd/piled.service), against the reference pile (bench/fixtures/reference-pile.ts: the
 * same GATT peripheral answering the protocol with canned replies, no checks, no store, no
 * hardware) on another controller of the same radio, in the same run. One carrier central here
 * (the SDK's unlock and stop over NobleCentral, proofs on node:crypto), rounds alternating
 * between the two piles (which goes first swaps each round). A round: a fresh code, connect (scan
 * included), unlock, STOP, disconnect; after a daemon round the bench waits for AVAILABLE (not
 * timed). Figures: connect → RESULT and HELLO → RESULT, median and p99 on each side, the ratios
 * of the medians and the median of the per-round ratios. Goal (issue 12): HELLO → RESULT ≤ 1.1 ×
 * the reference.
 * Parameters (environment): PILED_BENCH_BLE_ROUNDS (default 60 per side; 10 with
 * PILED_BENCH_QUICK=1), PILED_BENCH_NODE_OPTIONS (instead of the unit's). The daemon's state
 * lives under the OS temp dir (TMPDIR). Reproduce: `npm run bench -- ble-daemon`.
 */
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { unitNodeOptions } from "../prove/rig.js";
import { SimDaemon } from "../prove/soak.js";
import { NobleCentral } from "../src/hw/ble/central.js";
import { nodeSuite } from "../src/protocol/node-suite.js";
import { stop, unlock } from "../src/sdk/carrier.js";
import { Issuer } from "../src/sdk/issuer.js";
import type { CarrierLink } from "../src/sdk/transport.js";
import type { RadioBridge } from "../src/sim/radio.js";
import { FixtureProcess } from "../test/helpers/fixture-process.js";
import { machine, round } from "./machine.js";
import { median, percentile } from "./util.js";

export const name = "ble-daemon";

const quick = process.env.PILED_BENCH_QUICK === "1";
const ROUNDS = Number(process.env.PILED_BENCH_BLE_ROUNDS ?? (quick ? 10 : 60));
const WARMUP = quick ? 3 : 10;
const MTU = 256;
/** PILED_BENCH_NODE_OPTIONS replaces the unit's node options (as in the daemon bench). */
const OPTS_ENV = process.env.PILED_BENCH_NODE_OPTIONS;
const CMD = `${OPTS_ENV !== undefined ? `PILED_BENCH_NODE_OPTIONS="${OPTS_ENV}" ` : ""}${process.env.PILED_BENCH_BLE_ROUNDS ? `PILED_BENCH_BLE_ROUNDS=${ROUNDS} ` : ""}${quick ? "PILED_BENCH_QUICK=1 " : ""}npm run bench -- ble-daemon`;
const REF_PILE = "REF-1";
const REF_KEY_ID = 7;
const here = dirname(fileURLToPath(import.meta.url));

interface Side {
  pileId: string;
  issuer: Issuer;
  connectToResult: number[];
  helloToResult: number[];
  /** HELLO written → CHALLENGE notified, and the last PRESENT fragment written → RESULT notified. */
  helloToChallenge: number[];
  presentToResult: number[];
}

interface Marks {
  hello?: number;
  challenge?: number;
  present?: number;
  result?: number;
}

/** The carrier's link, time-stamping the unlock's messages at the carrier (each once). */
function marked(link: CarrierLink, m: Marks): CarrierLink {
  const first = (f: Uint8Array) => ((f[0] ?? 0) & 0x7f) === 0;
  return {
    mtu: link.mtu,
    write: (f) => {
      if (first(f) && f[1] === 0x01) m.hello ??= performance.now();
      if (((f[0] ?? 0) & 0x80) !== 0 && m.challenge !== undefined) m.present ??= performance.now();
      return link.write(f);
    },
    onNotify: (l) =>
      link.onNotify((f) => {
        if (first(f) && f[1] === 0x81) m.challenge ??= performance.now();
        if (first(f) && f[1] === 0x82 && m.present !== undefined) m.result ??= performance.now();
        l(f);
      }),
    readInfo: () => link.readInfo(),
    onDisconnect: (l) => link.onDisconnect(l),
    close: () => link.close(),
  };
}

async function exchange(central: NobleCentral, side: Side, i: number, keep: boolean): Promise<void> {
  const issued = side.issuer.issue({ deviceId: `VIN-B${i}`, pileId: side.pileId, validForS: 3600 });
  if (!issued.ok) throw new Error(`issuer refused: ${issued.error.code}`);
  const c = issued.value;
  const common = { verifySecret: c.verifySecret, pileId: side.pileId, timeoutMs: 10_000, suite: nodeSuite };
  const t0 = performance.now();
  const link = await central.connect(side.pileId, { timeoutMs: 10_000 });
  const m: Marks = {};
  try {
    const t1 = performance.now();
    const outcome = await unlock(marked(link, m), { ...common, code: c.code });
    const t2 = performance.now();
    if (outcome.kind !== "accepted")
      throw new Error(`${side.pileId} unlock ${i}: ${JSON.stringify(outcome)}`);
    const s = await stop(link, { ...common, codeId: c.codeId, keyId: c.keyId });
    if (s.kind !== "stopped") throw new Error(`${side.pileId} stop ${i}: ${JSON.stringify(s)}`);
    if (keep) {
      side.connectToResult.push(t2 - t0);
      side.helloToResult.push(t2 - t1);
      side.helloToChallenge.push((m.challenge ?? Number.NaN) - (m.hello ?? Number.NaN));
      side.presentToResult.push((m.result ?? Number.NaN) - (m.present ?? Number.NaN));
    }
  } finally {
    await link.close();
  }
}

const figures = (xs: number[]) => ({ p50: round(median(xs), 2), p99: round(percentile(xs, 0.99), 2) });

export async function run(): Promise<Record<string, unknown>> {
  const d = new SimDaemon();
  let ref: FixtureProcess | undefined;
  let central: NobleCentral | undefined;
  let refBridge: RadioBridge | undefined;
  try {
    await d.start({ ble: true, env: { NODE_OPTIONS: OPTS_ENV ?? unitNodeOptions() } });
    const refKey = new Uint8Array(randomBytes(32));
    refBridge = await d.radio.bridge();
    ref = new FixtureProcess(
      join(here, "fixtures", "reference-pile.js"),
      ["--uart", refBridge.path, "--pile", REF_PILE],
      { ...process.env, PILED_FIXTURE_KEY: Buffer.from(refKey).toString("hex") },
    );
    await ref.waitFor((e) => e.ev === "ready", 15_000);
    central = new NobleCentral({
      controller: { kind: "uart", path: d.carrierBridge.path },
      mtu: MTU,
      supervisionMs: 0,
    });
    await central.powerOn();
    const daemon: Side = {
      pileId: d.pileId,
      issuer: d.issuer,
      connectToResult: [],
      helloToResult: [],
      helloToChallenge: [],
      presentToResult: [],
    };
    const reference: Side = {
      pileId: REF_PILE,
      issuer: new Issuer({ keys: [{ keyId: REF_KEY_ID, key: refKey }] }),
      connectToResult: [],
      helloToResult: [],
      helloToChallenge: [],
      presentToResult: [],
    };
    for (let i = 0; i < WARMUP + ROUNDS; i++) {
      const keep = i >= WARMUP;
      for (const side of i % 2 === 0 ? [daemon, reference] : [reference, daemon]) {
        await exchange(central, side, i, keep);
        if (side === daemon && !(await d.waitState((s) => s.state === "AVAILABLE")))
          throw new Error(`the daemon did not come back to AVAILABLE after round ${i}`);
      }
    }
    const paired = (k: "connectToResult" | "helloToResult") =>
      round(median(daemon[k].map((x, j) => x / reference[k][j]!)), 3);
    const hd = median(daemon.helloToResult);
    const hr = median(reference.helloToResult);
    return {
      command: CMD,
      machine: machine(),
      nodeOptions: OPTS_ENV ?? unitNodeOptions(),
      stateDir: tmpdir(),
      mtu: MTU,
      rounds: daemon.helloToResult.length,
      warmupRounds: WARMUP,
      ...(quick ? { quick: `PILED_BENCH_QUICK=1: ${ROUNDS} rounds per side instead of 60` } : {}),
      daemon: {
        connectToResultMs: figures(daemon.connectToResult),
        helloToResultMs: figures(daemon.helloToResult),
        helloToChallengeMs: figures(daemon.helloToChallenge),
        presentToResultMs: figures(daemon.presentToResult),
      },
      reference: {
        connectToResultMs: figures(reference.connectToResult),
        helloToResultMs: figures(reference.helloToResult),
        helloToChallengeMs: figures(reference.helloToChallenge),
        presentToResultMs: figures(reference.presentToResult),
      },
      helloToResultOverReference: round(hd / hr, 3),
      connectToResultOverReference: round(
        median(daemon.connectToResult) / median(reference.connectToResult),
        3,
      ),
      helloToResultPairedRatioMedian: paired("helloToResult"),
      connectToResultPairedRatioMedian: paired("connectToResult"),
      goal: "helloToResultOverReference <= 1.1",
    };
  } finally {
    await central?.close().catch(() => undefined);
    await ref?.kill();
    await refBridge?.close();
    await d.stop();
  }
}
