/**
 * BLE over the emulated radio: a pile peripheral in its own process (the echo fixture of the
 * BLE test tier, dist/test/hw/ble/fixtures/peripheral.js) and a carrier central here.
 * Figures (medians): noble power-on, scan until found, link up, GATT ready (discovery + MTU +
 * subscription), raw Control write → Event notification round trip, at MTU 256 and 23.
 *
 * Hook: `handshakeBenches` takes extra measurements that need the pile core and the carrier
 * client (HELLO→RESULT, connect→RESULT); each gets the radio and the raw round-trip median so it
 * can report its ratio to it (target HELLO→RESULT ≤ 2.5 × raw round trip).
 */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { NobleCentral } from "../src/hw/ble/central.js";
import type { CarrierLink } from "../src/sdk/transport.js";
import { type Radio, startRadio } from "../src/sim/radio.js";
import { PeripheralProcess } from "../test/hw/ble/air.js";
import { median } from "./util.js";

export const name = "ble";

export type HandshakeBench = (ctx: {
  radio: Radio;
  rawRoundTripMs: number;
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
    for (const h of handshakeBenches)
      out[h.name] = await h.run({ radio, rawRoundTripMs: at256.roundTripMs ?? 0 });
    return out;
  } finally {
    await pile.kill();
    await bridge.close();
    await radio.close();
  }
}
