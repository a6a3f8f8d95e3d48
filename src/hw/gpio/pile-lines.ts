/** The pile's named lines, opened from the config in a safe order: outputs first, at their safe level. */
import type { DigitalInput, DigitalOutput, VehicleSense } from "../ports.js";
import type { LineSpec } from "./chip.js";
import { type LineOpenOptions, openInput, openOutput } from "./onoff-lines.js";
import { GpioVehicleSense } from "./vehicle-sense.js";

export interface PileLinesConfig {
  /** Contactor coil; active = closed. Its safe level is always open. */
  contactor: LineSpec;
  /** Connector lock actuator; active = engaged. */
  lock: LineSpec;
  /** Where the lock rests when the pile is idle or the daemon is gone. */
  lockSafe: "released" | "engaged";
  /** Auxiliary contact of the contactor; active = closed. */
  contactorFeedback: InputSpec;
  /** Lock position switch; active = engaged. */
  lockFeedback: InputSpec;
  /** Plug-present switch; active = a plug is in. */
  plugPresent?: InputSpec;
  /** Emergency-stop loop; active = pressed. */
  emergencyStop?: InputSpec;
  /** Debounce of every input that gives none of its own, ms. Default 20. */
  debounceMs?: number;
  /** Sampling period where inputs cannot be watched, ms. Default 10. */
  sampleMs?: number;
  /** Re-sampling period of watched inputs, ms (0: off). Default 200. */
  resampleMs?: number;
}

export interface PileLines {
  contactor: DigitalOutput;
  lock: DigitalOutput;
  contactorFeedback: DigitalInput;
  lockFeedback: DigitalInput;
  vehicle?: VehicleSense;
  emergencyStop?: DigitalInput;
  /** Closes every line; outputs keep their last level. */
  close(): Promise<void>;
}

/** An input's own debounce, where its spec gives one (the config's per-line `debounceMs`). */
const debounce = (spec: InputSpec): { debounceMs?: number } =>
  spec.debounceMs !== undefined ? { debounceMs: spec.debounceMs } : {};

/** An input line: its spec plus, optionally, its own debounce. */
export type InputSpec = LineSpec & { debounceMs?: number | undefined };

export async function linesFromConfig(cfg: PileLinesConfig, opts: LineOpenOptions = {}): Promise<PileLines> {
  const opened: { close(): Promise<void> }[] = [];
  const track = <T extends { close(): Promise<void> }>(x: T): T => {
    opened.push(x);
    return x;
  };
  const inputOpts = {
    ...opts,
    debounceMs: cfg.debounceMs ?? 20,
    sampleMs: cfg.sampleMs ?? 10,
    resampleMs: cfg.resampleMs ?? 200,
  };
  const closeAll = async (): Promise<void> => {
    for (const x of opened.splice(0).reverse()) await x.close().catch(() => undefined);
  };
  try {
    const contactor = track(await openOutput(cfg.contactor, { ...opts, name: "contactor", safe: false }));
    const lock = track(
      await openOutput(cfg.lock, {
        ...opts,
        name: "lock",
        safe: cfg.lockSafe === "engaged",
        holdIfOutput: true,
      }),
    );
    const contactorFeedback = track(
      await openInput(cfg.contactorFeedback, {
        ...inputOpts,
        ...debounce(cfg.contactorFeedback),
        name: "contactor-feedback",
      }),
    );
    const lockFeedback = track(
      await openInput(cfg.lockFeedback, {
        ...inputOpts,
        ...debounce(cfg.lockFeedback),
        name: "lock-feedback",
      }),
    );
    const lines: PileLines = { contactor, lock, contactorFeedback, lockFeedback, close: closeAll };
    if (cfg.plugPresent) {
      const plug = track(
        await openInput(cfg.plugPresent, {
          ...inputOpts,
          ...debounce(cfg.plugPresent),
          name: "plug-present",
        }),
      );
      lines.vehicle = new GpioVehicleSense(plug);
    }
    if (cfg.emergencyStop) {
      lines.emergencyStop = track(
        await openInput(cfg.emergencyStop, {
          ...inputOpts,
          ...debounce(cfg.emergencyStop),
          name: "emergency-stop",
        }),
      );
    }
    return lines;
  } catch (err) {
    await closeAll();
    throw err;
  }
}
