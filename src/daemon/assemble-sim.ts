/**
 * The simulated plant and meter behind the real ports, for a configuration that asks for them
 * (`gpio.driver` or `meter.driver` "sim"). Loaded by assemble.ts with a dynamic import only then:
 * a daemon on real hardware never loads the simulator. The simulated meter is still reached over
 * a real serial link and a real Modbus exchange: a pty pair, the simulated slave on one end, the
 * real adapter on the other.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import type { PileLines } from "../hw/gpio/index.js";
import type { Clock } from "../hw/ports.js";
import { SimMeter } from "../sim/meter/sim-meter.js";
import type { SimPilot } from "../sim/pilot-sim.js";
import { SimPlant } from "../sim/plant.js";
import { openPtyPair, type PtyPair } from "../sim/pty.js";
import type { Config } from "./config.js";

/** Power the simulated vehicle draws while the contactor is closed (32 A single phase). */
export const SIM_CHARGE_POWER_W = 7360;

export type SimParts = { plant?: SimPlant; meter?: SimMeter; pilot?: SimPilot };
type Closers = (() => Promise<void>)[];

/**
 * The simulated plant's lines: plug present, or, with a simulated pilot MCU, its permit pin in
 * series with the contactor coil.
 */
export function simLines(sim: SimParts, mcuPermit = false): PileLines {
  const plant = new SimPlant(mcuPermit ? { permitInSeries: true } : { plugPresent: true });
  sim.plant = plant;
  const pl = plant.pileLines();
  return { ...pl, close: async () => plant.dispose() };
}

/** Starts the simulated meter on a pty pair; gives the port the real adapter opens. */
export async function simMeterPort(
  config: Config,
  clock: Clock,
  log: Logger,
  sim: SimParts,
  closers: Closers,
): Promise<string> {
  const m = config.meter;
  // The pty links live in the state directory: a daemon killed outright leaves no folder in /tmp.
  const ptyDir = join(config.stateDir, "sim-meter");
  mkdirSync(ptyDir, { recursive: true, mode: 0o700 });
  const pair: PtyPair = await openPtyPair({ dir: ptyDir });
  closers.push(() => pair.close());
  const slave = new SimMeter({ model: m.model, unit: m.unit, clock });
  await slave.attach(pair.b, {
    baudRate: m.baud,
    parity: m.parity,
    stopBits: m.stopBits,
    dataBits: m.dataBits,
  });
  closers.push(() => slave.detach());
  sim.meter = slave;
  if (sim.plant) {
    const off = sim.plant.onContactor((closed) => slave.setPower(closed ? SIM_CHARGE_POWER_W : 0));
    closers.push(async () => off());
  }
  log.child({ component: "meter" }).info({ slave: pair.b, port: pair.a }, "simulated meter on a pty pair");
  return pair.a;
}
