/**
 * BLE over the emulated radio: a pile peripheral in its own process (the echo fixture of the
 * BLE test tier, dist/test/hw/ble/fixtures/peripheral.js) and a carrier central here.
 * Figures (medians): noble power-on, scan until found, link up, GATT ready (discovery + MTU +
 * subscription), raw Control write → Event notification round trip, at MTU 256 and 23.
 *
 * Hook: `handshakeBenches` takes extra measurements that need the pile core and the carrier
 * client (HELLO→RESULT, connect→RESULT); each gets the radio and the raw round-trip median so it
 * can report its ratio to it (target HELLO→RESULT ≤ 2.5 × raw round trip).
 *
 * The unlock handshake (registered below): the pile fixture (dist/test/hw/ble/fixtures/pile.js:
 * the daemon's real control loop behind the peripheral, a real store, the simulated plant) in its own
 * process, the SDK carrier client over NobleCentral here. Each round issues a fresh code with the
 * SDK Issuer, connects, unlocks, STOPs (so the pile is free again) and disconnects. Medians of
 * connect→RESULT (scan included), HELLO→RESULT and HELLO→STOPPED at MTU 256 and 23, and the
 * ratio HELLO→RESULT / raw write→notify round trip of the same radio at the same MTU (the echo
 * fixture's, measured before). On a shared machine that reference drifts with the load, so each
 * round also pings the pile fixture on the same link right after its STOP (a one-fragment
 * message of an unknown type, answered ERROR BAD_MESSAGE: one write→notify through the same
 * process) and the median of the per-round ratios HELLO→RESULT / ping is reported beside it.
 * HELLO→RESULT is two such round trips at the least (HELLO→CHALLENGE, PRESENT→RESULT).
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { NobleCentral } from "../src/hw/ble/central.js";
import { nodeSuite } from "../src/protocol/node-suite.js";
import type { CryptoSuite } from "../src/protocol/suite.js";
import { stop, unlock } from "../src/sdk/carrier.js";
import { forgeSuite } from "../src/sdk/forge-suite.js";
import { Issuer } from "../src/sdk/issuer.js";
import type { CarrierLink } from "../src/sdk/transport.js";
import { type Radio, startRadio } from "../src/sim/radio.js";
import { PeripheralProcess } from "../test/hw/ble/air.js";
import { PileProcess } from "./fixtures/pile-process.js";
import { median } from "./util.js";

export const name = "ble";

export type HandshakeBench = (ctx: {
  radio: Radio;
  /** Raw write→notify round trip at MTU 256, median ms. */
  rawRoundTripMs: number;
  /** The same at each MTU measured (256 and 23). */
  rawRoundTripMsByMtu: Record<number, number>;
}) => Promise<Record<string, unknown>>;
/** Measurements added once the pile core and the carrier client run over this radio. */
export const handshakeBenches: Array<{ name: string; run: HandshakeBench }> = [];

const CONNECTS = 7;
const ECHOES = 30;
const round = (x: number) => Math.round(x * 100) / 100;

function echo(link: CarrierLink, fragment: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    const off = link.onNotify(() => {
      off();
      resolve();
    });
    link.write(fragment).catch((e) => {
      off();
      reject(e);
    });
  });
}

async function measure(radio: Radio, mtu: number): Promise<Record<string, number>> {
  const bridge = await radio.bridge();
  const central = new NobleCentral({
    controller: { kind: "uart", path: bridge.path },
    mtu,
    supervisionMs: 0,
  });
  const scan: number[] = [];
  const link: number[] = [];
  const gatt: number[] = [];
  const rtt: number[] = [];
  let powerOnMs = 0;
  let negotiated = 0;
  try {
    const t0 = performance.now();
    await central.powerOn();
    powerOnMs = performance.now() - t0;
    const frag = new Uint8Array(Math.min(mtu - 3, 64)).fill(0x11);
    frag[0] = 0x80;
    for (let i = 0; i < CONNECTS; i++) {
      const l = await central.connect("BENCH-1", { timeoutMs: 10_000 });
      const t = central.lastTimings;
      if (t) {
        scan.push(t.scanMs);
        link.push(t.linkMs);
        gatt.push(t.gattMs);
      }
      negotiated = l.mtu;
      for (let k = 0; k < ECHOES; k++) {
        const s = performance.now();
        await echo(l, frag);
        rtt.push(performance.now() - s);
      }
      await l.close();
    }
  } finally {
    await central.close();
    await bridge.close();
  }
  return {
    mtu: negotiated,
    powerOnMs: round(powerOnMs),
    scanToFoundMs: round(median(scan)),
    linkUpMs: round(median(link)),
    gattReadyMs: round(median(gatt)),
    roundTripMs: round(median(rtt)),
    samples: rtt.length,
  };
}

export async function run(): Promise<Record<string, unknown>> {
  const fixture = join(dirname(fileURLToPath(import.meta.url)), "../test/hw/ble/fixtures/peripheral.js");
  if (!existsSync(fixture)) throw new Error(`${fixture} missing: build first (npx tsc -p tsconfig.json)`);
  const radio = await startRadio();
  const bridge = await radio.bridge();
  const pile = new PeripheralProcess(bridge.path, "BENCH-1");
  try {
    await pile.up();
    const at256 = await measure(radio, 256);
    const at23 = await measure(radio, 23);
    const out: Record<string, unknown> = { mtu256: at256, mtu23: at23 };
    const byMtu = { 256: at256.roundTripMs ?? 0, 23: at23.roundTripMs ?? 0 };
    for (const h of handshakeBenches)
      out[h.name] = await h.run({ radio, rawRoundTripMs: byMtu[256], rawRoundTripMsByMtu: byMtu });
    return out;
  } finally {
    await pile.kill();
    await bridge.close();
    await radio.close();
  }
}

// ---- the unlock handshake ------------------------------------------------------------------

const UNLOCKS = 15;
/** Pings per round: a one-fragment message of an unknown type, answered ERROR BAD_MESSAGE. */
const PINGS = 5;
const PING = Uint8Array.from([0x80, 0x7f]);
const HANDSHAKE_PILE = "BENCH-PILE-1";
const HANDSHAKE_KEY_ID = 0x0b0e0001;

interface UnlockFigures {
  mtu: number;
  scanMs: number;
  connectToResultMs: number;
  helloToResultMs: number;
  helloToStoppedMs: number;
  pilePingMs: number;
  helloToResultOverPilePing: number;
  samples: number;
}

const WARMUP_UNLOCKS = 12;

async function unlockRounds(
  radio: Radio,
  mtu: number,
  issuer: Issuer,
  suite?: CryptoSuite,
): Promise<UnlockFigures> {
  const bridge = await radio.bridge();
  const central = new NobleCentral({
    controller: { kind: "uart", path: bridge.path },
    mtu,
    supervisionMs: 0,
  });
  const scan: number[] = [];
  const toResult: number[] = [];
  const hello: number[] = [];
  const stopped: number[] = [];
  const pings: number[] = [];
  const pairedRatio: number[] = [];
  let negotiated = 0;
  try {
    await central.powerOn();
    // The first rounds warm up the JIT on both sides of the radio; they are not counted.
    for (let i = 0; i < WARMUP_UNLOCKS + UNLOCKS; i++) {
      const issued = issuer.issue({ deviceId: "VIN-BENCH-0001", pileId: HANDSHAKE_PILE, validForS: 3600 });
      if (!issued.ok) throw new Error(`issuer refused: ${issued.error.code}`);
      const c = issued.value;
      const t0 = performance.now();
      const link = await central.connect(HANDSHAKE_PILE, { timeoutMs: 10_000 });
      negotiated = link.mtu;
      try {
        const t1 = performance.now();
        const outcome = await unlock(link, {
          code: c.code,
          verifySecret: c.verifySecret,
          pileId: HANDSHAKE_PILE,
          timeoutMs: 10_000,
          ...(suite ? { suite } : {}),
        });
        const t2 = performance.now();
        if (outcome.kind !== "accepted")
          throw new Error(`unlock ${i} at MTU ${mtu}: ${JSON.stringify(outcome)}`);
        const t3 = performance.now();
        const s = await stop(link, {
          codeId: c.codeId,
          keyId: c.keyId,
          verifySecret: c.verifySecret,
          pileId: HANDSHAKE_PILE,
          timeoutMs: 10_000,
          ...(suite ? { suite } : {}),
        });
        const t4 = performance.now();
        if (s.kind !== "stopped") throw new Error(`stop ${i} at MTU ${mtu}: ${JSON.stringify(s)}`);
        // The same link, the same pile process, the same moment: its bare write→notify time.
        const mine: number[] = [];
        for (let k = 0; k < PINGS; k++) {
          const p0 = performance.now();
          await echo(link, PING);
          mine.push(performance.now() - p0);
        }
        if (i < WARMUP_UNLOCKS) continue;
        pings.push(...mine);
        pairedRatio.push((t2 - t1) / median(mine));
        scan.push(central.lastTimings?.scanMs ?? 0);
        toResult.push(t2 - t0);
        hello.push(t2 - t1);
        stopped.push(t4 - t3);
      } finally {
        await link.close();
      }
    }
  } finally {
    await central.close();
    await bridge.close();
  }
  return {
    mtu: negotiated,
    scanMs: round(median(scan)),
    connectToResultMs: round(median(toResult)),
    helloToResultMs: round(median(hello)),
    helloToStoppedMs: round(median(stopped)),
    pilePingMs: round(median(pings)),
    helloToResultOverPilePing: round(median(pairedRatio)),
    samples: hello.length,
  };
}

handshakeBenches.push({
  name: "unlock",
  run: async ({ radio, rawRoundTripMsByMtu }) => {
    // A fresh key per run; it reaches the fixture through its environment and is never printed.
    const key = new Uint8Array(randomBytes(32));
    const issuer = new Issuer({ keys: [{ keyId: HANDSHAKE_KEY_ID, key }] });
    const bridge = await radio.bridge();
    const pile = new PileProcess({ uart: bridge.path, pileId: HANDSHAKE_PILE, keyId: HANDSHAKE_KEY_ID, key });
    try {
      await pile.up();
      // The carrier as pilectl and the simulated carriers run it on Node: proofs on node:crypto.
      const out: Record<string, unknown> = { carrierSuite: "node:crypto", pileSuite: "node:crypto" };
      for (const mtu of [256, 23]) {
        const r = await unlockRounds(radio, mtu, issuer, nodeSuite);
        const raw = rawRoundTripMsByMtu[mtu] ?? 0;
        out[`mtu${mtu}`] = {
          ...r,
          rawRoundTripMs: raw,
          helloToResultOverRawRoundTrip: raw > 0 ? round(r.helloToResultMs / raw) : null,
          ...(mtu === 256 ? { target: "helloToResultOverRawRoundTrip <= 2.5" } : {}),
        };
      }
      // The same carrier on the SDK's portable default, node-forge (phones without node:crypto):
      // cold, its SHA-256 costs ~0.5 ms a call here, which shows in HELLO→RESULT.
      const portable = await unlockRounds(radio, 256, issuer, forgeSuite);
      const raw256 = rawRoundTripMsByMtu[256] ?? 0;
      out.mtu256CarrierForge = {
        ...portable,
        rawRoundTripMs: raw256,
        helloToResultOverRawRoundTrip: raw256 > 0 ? round(portable.helloToResultMs / raw256) : null,
      };
      // Time the pile process spent from each reassembled message to its answer (core + plant).
      const proc: Record<string, number> = {};
      for (const type of ["HELLO", "PRESENT", "STOP"]) {
        const xs = pile.events
          .filter((e) => e.ev === "rx" && e.type === type && typeof e.procMs === "number")
          .map((e) => e.procMs as number);
        if (xs.length > 0) proc[type] = round(median(xs));
      }
      out.pileProcessingMs = proc;
      const stats = await pile.stats();
      out.pileCounters = {
        accepted: (stats.counters as { accepted?: number } | undefined)?.accepted,
        ledger: stats.ledger,
      };
      return out;
    } finally {
      await pile.kill();
      await bridge.close();
    }
  },
});
