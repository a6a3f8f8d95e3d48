/**
 * Builds the adapters the configuration names: the real ones (sysfs GPIO through onoff, Modbus
 * RTU over a serial port, bleno on an HCI device or UART) or the simulated plant behind the same
 * ports. The simulated meter is still reached over a real serial link and a real Modbus
 * exchange: a pty pair, the simulated slave on one end, the real adapter on the other.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import { BlenoPeripheral } from "../hw/ble/peripheral.js";
import { linesFromConfig, type PileLines } from "../hw/gpio/index.js";
import { openModbusMeter } from "../hw/meter/modbus-meter.js";
import type { BlePeripheral, Clock, Meter, VehicleSense } from "../hw/ports.js";
import { SimMeter } from "../sim/meter/sim-meter.js";
import type { SimPilot } from "../sim/pilot-sim.js";
import { SimPlant } from "../sim/plant.js";
import { openPtyPair, type PtyPair } from "../sim/pty.js";
import type { Config } from "./config.js";
import { openPilot, simMcuPermit } from "./pilot-glue.js";

/** Power the simulated vehicle draws while the contactor is closed (32 A single phase). */
export const SIM_CHARGE_POWER_W = 7360;

export interface Assembled {
  lines: PileLines;
  meter: Meter;
  ble: BlePeripheral | undefined;
  /** The pilot MCU, where the config names one (else the vehicle sense is in `lines`). */
  vehicle?: VehicleSense | undefined;
  /** Present when the plant is simulated: fault switches for the technician and tests. */
  sim: { plant?: SimPlant; meter?: SimMeter; pilot?: SimPilot } | undefined;
  close(): Promise<void>;
}

export async function assemble(config: Config, clock: Clock, log: Logger): Promise<Assembled> {
  const closers: (() => Promise<void>)[] = [];
  const sim: { plant?: SimPlant; meter?: SimMeter; pilot?: SimPilot } = {};
  try {
    let lines: PileLines;
    const g = config.gpio;
    if (g.driver === "sim") {
      // A simulated MCU's permit pin is in series with the plant's contactor coil.
      const plant = new SimPlant(simMcuPermit(config) ? { permitInSeries: true } : { plugPresent: true });
      sim.plant = plant;
      const pl = plant.pileLines();
      lines = { ...pl, close: async () => plant.dispose() };
    } else {
      lines = await linesFromConfig({
        contactor: g.contactor,
        lock: g.lock,
        lockSafe: config.lockSafeState,
        contactorFeedback: g.contactorFeedback,
        lockFeedback: g.lockFeedback,
        resampleMs: g.resampleMs,
        ...(g.plugPresent ? { plugPresent: g.plugPresent } : {}),
        ...(g.emergencyStop ? { emergencyStop: g.emergencyStop } : {}),
      });
    }
    closers.push(() => lines.close());
    const pilot = await openPilot(config, sim.plant, log, closers);
    if (pilot?.sim) sim.pilot = pilot.sim;

    const m = config.meter;
    let port = m.port;
    if (m.driver === "sim") {
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
      port = pair.a;
      log.child({ component: "meter" }).info({ slave: pair.b, port }, "simulated meter on a pty pair");
    }
    const meter = openModbusMeter({
      path: port,
      baudRate: m.baud,
      parity: m.parity,
      stopBits: m.stopBits,
      dataBits: m.dataBits,
      timeoutMs: m.timeoutMs,
      retries: m.retries,
      model: m.model,
      unit: m.unit,
      clock,
    });
    closers.push(() => meter.close());

    let ble: BlePeripheral | undefined;
    if (config.ble.enabled) {
      ble = new BlenoPeripheral({
        controller: config.ble.controller,
        pileId: config.pileId,
        log: log.child({ component: "ble" }),
      });
    }
    return {
      lines,
      meter,
      ble,
      ...(pilot ? { vehicle: pilot.vehicle } : {}),
      sim: sim.plant || sim.meter ? sim : undefined,
      close: async () => {
        for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
      },
    };
  } catch (e) {
    for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
    throw e;
  }
}
