/**
 * The pilot MCU in the harness: permit-off latency after the pilot leaves C (simulated ms, from
 * the vehicle's change to the permit pin's edge, ≥ 50 runs, the harness unthrottled), heartbeat
 * round trip over the pty (wall ms, real-time harness), permit-off after a freeze (watchdog) and
 * after the heartbeats stop (simulated ms), and the firmware's flash and RAM use.
 */
import { spawnSync } from "node:child_process";
import { openPilotSerial } from "../src/hw/pilot/link.js";
import { PilotMcu } from "../src/hw/pilot/pilot-mcu.js";
import { BUILD, buildFirmware, Harness } from "../test/helpers/pilot-harness.js";
import { median } from "./util.js";

export const name = "pilot";

const RUNS = 60;

async function rig(speed: number): Promise<{ h: Harness; mcu: PilotMcu }> {
  const h = await Harness.start();
  const mcu = new PilotMcu({
    link: await openPilotSerial({ path: h.pty }),
    heartbeatMs: 20,
    silenceMs: 2000,
  });
  const boot = new Promise((r) => mcu.once("reset", r));
  await h.cmd(`speed ${speed}`);
  await h.cmd("go");
  await boot;
  await mcu.start();
  return { h, mcu };
}

async function permitOff(): Promise<number[]> {
  const { h, mcu } = await rig(0);
  const out: number[] = [];
  try {
    await mcu.setHeartbeatLimit(10000); /* unthrottled: the heartbeat is not what is measured */
    await mcu.heartbeat();
    await h.cmd("vehicle B");
    await mcu.setCurrent(16);
    for (let i = 0; i < RUNS; i++) {
      const on = h.next((l) => l.kind === "permit" && l.fields.v === "1", 20000);
      await h.cmd("vehicle C");
      await on;
      await h.wait(1 + (i % 7) * 0.37); /* leave C at varying PWM phases */
      const off = h.next((l) => l.kind === "permit" && l.fields.v === "0", 20000);
      const left = await h.cmd("vehicle B");
      out.push(((await off).t - left.t) / 1000);
    }
  } finally {
    await mcu.close();
    await h.stop();
  }
  return out;
}

const permitEdge = (h: Harness, v: 0 | 1) =>
  h.next((l) => l.kind === "permit" && l.fields.v === String(v), 20000);

async function intoC(h: Harness, mcu: PilotMcu): Promise<void> {
  await mcu.heartbeat();
  await h.cmd("vehicle B");
  await mcu.setCurrent(16);
  const on = permitEdge(h, 1);
  await h.cmd("vehicle C");
  await on;
}

/** A hung MCU (frozen while charging): simulated ms until the watchdog's reset drops the permit. */
async function afterFreeze(): Promise<number[]> {
  const out: number[] = [];
  const { h, mcu } = await rig(0);
  try {
    await mcu.setHeartbeatLimit(10000);
    for (let i = 0; i < 5; i++) {
      await intoC(h, mcu);
      const off = permitEdge(h, 0);
      const reset = new Promise((r) => mcu.once("reset", r));
      const frozen = await h.cmd("freeze");
      out.push(((await off).t - frozen.t) / 1000);
      await reset;
      await mcu.setHeartbeatLimit(10000);
    }
  } finally {
    await mcu.close();
    await h.stop();
  }
  return out;
}

/** Heartbeats stop (limit 200 ms, real-time harness): simulated ms until the permit drops. */
async function afterHeartbeatStops(): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < 3; i++) {
    const { h, mcu } = await rig(1);
    try {
      await mcu.setHeartbeatLimit(200);
      await intoC(h, mcu);
      const off = permitEdge(h, 0);
      await mcu.close();
      const stopped = await h.cmd("time");
      out.push(((await off).t - stopped.t) / 1000);
    } finally {
      await h.stop();
    }
  }
  return out;
}

async function heartbeatRtt(): Promise<number[]> {
  const { h, mcu } = await rig(1);
  const out: number[] = [];
  try {
    for (let i = 0; i < 50; i++) out.push(await mcu.heartbeat());
  } finally {
    await mcu.close();
    await h.stop();
  }
  return out;
}

export async function run(): Promise<Record<string, unknown>> {
  const b = buildFirmware();
  if (b.status !== 0) throw new Error(`firmware-bridge did not build:\n${b.output}`);
  const size = spawnSync("make", ["-s", "-C", `${BUILD}../firmware`, `OUT=${BUILD}`, "size"], {
    encoding: "utf8",
  }).stdout;
  const m = /flash (\d+) bytes .*RAM (\d+) bytes/.exec(size);
  const lat = (await permitOff()).sort((x, y) => x - y);
  const rtt = await heartbeatRtt();
  const frozen = await afterFreeze();
  const silent = await afterHeartbeatStops();
  const round = (x: number) => Math.round(x * 1000) / 1000;
  return {
    firmwareFlashBytes: Number(m?.[1]),
    firmwareRamBytes: Number(m?.[2]),
    permitOffAfterLeavingC_simMs: {
      runs: lat.length,
      p50: round(median(lat)),
      max: round(lat[lat.length - 1] as number),
      min: round(lat[0] as number),
    },
    permitOffAfterFreeze_simMs: {
      runs: frozen.length,
      p50: round(median(frozen)),
      max: round(Math.max(...frozen)),
    },
    permitOffAfterHeartbeatStops_simMs: {
      limitMs: 200,
      runs: silent.length,
      p50: round(median(silent)),
      max: round(Math.max(...silent)),
    },
    heartbeatRoundTripMs: { p50: round(median(rtt)), max: round(Math.max(...rtt)) },
  };
}
