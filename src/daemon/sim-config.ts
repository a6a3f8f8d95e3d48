/**
 * The configuration of a simulated pile in one folder: keys in `keys/`, state in `state/`, the
 * control socket beside them, the GPIO plant and the meter simulated (the meter still over a real
 * Modbus RTU exchange on a pty pair). Used by `npm start` and by the tiers that start the built
 * daemon; the result is a plain object to write as the daemon's JSON config.
 */
import { join } from "node:path";
import type { ConfigInput } from "./config.js";

export interface SimConfigOptions {
  pileId: string;
  /** The folder holding keys/, state/ and control.sock. */
  dir: string;
  /** A radio bridge's pty for the pile's BLE controller; BLE is off without it. */
  blePath?: string | undefined;
  meterPollMs?: number;
  /**
   * The vehicle sensed by the real pilot firmware in the simulator harness (its permit in series
   * with the plant's contactor) instead of the plug-present line.
   */
  pilot?: boolean;
}

export function simPileConfig(o: SimConfigOptions) {
  const line = (n: number) => ({ chip: "sim", line: n });
  const base = {
    pileId: o.pileId,
    keyDir: join(o.dir, "keys"),
    stateDir: join(o.dir, "state"),
    gpio: {
      driver: "sim",
      contactor: line(0),
      lock: line(1),
      contactorFeedback: line(2),
      lockFeedback: line(3),
      plugPresent: line(4),
      emergencyStop: line(5),
    },
    meter: { driver: "sim", model: "sdm630", pollIntervalMs: o.meterPollMs ?? 500 },
    ble: o.blePath ? { enabled: true, controller: { kind: "uart", path: o.blePath } } : { enabled: false },
    controlSocket: { path: join(o.dir, "control.sock"), mode: "0600" },
    logLevel: "info",
  } satisfies ConfigInput;
  if (!o.pilot) return base;
  const { plugPresent: _plug, ...gpio } = base.gpio;
  return { ...base, gpio, vehicle: { kind: "pilot-mcu", sim: true } } satisfies ConfigInput;
}
