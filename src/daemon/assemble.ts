/**
 * Builds the adapters the configuration names: the real ones (sysfs GPIO through onoff, Modbus
 * RTU over a serial port, bleno on an HCI device or UART) or the simulated plant behind the same
 * ports (assemble-sim.ts, imported only when the configuration asks for it).
 */
import type { Logger } from "pino";
import { BlenoPeripheral } from "../hw/ble/peripheral.js";
import { linesFromConfig, type PileLines } from "../hw/gpio/index.js";
import { openModbusMeter } from "../hw/meter/modbus-meter.js";
import type { BlePeripheral, Clock, Meter, VehicleSense } from "../hw/ports.js";
import type { SimParts } from "./assemble-sim.js";
import type { Config } from "./config.js";
import { meterLinkOptions } from "./config-sections.js";
import { openPilot, simMcuPermit } from "./pilot-glue.js";

export interface Assembled {
  lines: PileLines;
  meter: Meter;
  ble: BlePeripheral | undefined;
  /** The pilot MCU, where the config names one (else the vehicle sense is in `lines`). */
  vehicle?: VehicleSense | undefined;
  /** Present when the plant is simulated: fault switches for the technician and tests. */
  sim: SimParts | undefined;
  close(): Promise<void>;
}

export async function assemble(config: Config, clock: Clock, log: Logger): Promise<Assembled> {
  const closers: (() => Promise<void>)[] = [];
  const sim: SimParts = {};
  // The simulator is loaded only for a configuration that asks for it.
  const simulated = config.gpio.driver === "sim" || config.meter.driver === "sim";
  const simulator = simulated ? await import("./assemble-sim.js") : undefined;
  try {
    let lines: PileLines;
    const g = config.gpio;
    if (g.driver === "sim") {
      lines = simulator!.simLines(sim, simMcuPermit(config));
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
    if (m.driver === "sim") port = await simulator!.simMeterPort(config, clock, log, sim, closers);
    const meter = openModbusMeter(meterLinkOptions(config, port, clock));
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
