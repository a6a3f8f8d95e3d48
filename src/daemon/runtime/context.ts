/**
 * What the pieces of the control loop share: the ports the runtime was built with, and the few
 * hooks of the loop itself (feed an input, count, whether the contactor may be live).
 */
import type { Logger } from "pino";
import type {
  BlePeripheral,
  DigitalInput,
  DigitalOutput,
  Meter,
  TimedClock,
  VehicleSense,
} from "../../hw/ports.js";
import type { PileEffect, PileInput } from "../../pile/index.js";
import type { Store, StoreWriter } from "../../store/index.js";
import type { Config } from "../config.js";
import type { KeyDirectory } from "../keys.js";
import type { Notifier } from "../sd-notify.js";

export interface PileLinesPorts {
  contactor: DigitalOutput;
  lock: DigitalOutput;
  contactorFeedback: DigitalInput;
  lockFeedback: DigitalInput;
  emergencyStop?: DigitalInput | undefined;
}

export interface RuntimeParts {
  config: Config;
  log: Logger;
  /** Time and timers of the loop: every deadline, poll and heartbeat runs on it. */
  clock: TimedClock;
  store: Store;
  keys: KeyDirectory;
  lines: PileLinesPorts;
  vehicle?: VehicleSense | undefined;
  meter: Meter;
  ble?: BlePeripheral | undefined;
  notifier: Notifier;
  random?: (n: number) => Uint8Array;
  /**
   * The write worker (src/store/writer.ts): the writes made while the contactor may be live go
   * there. Without one they wait, in order, until the contactor reads open.
   */
  writer?: StoreWriter | undefined;
  /** Least interval between two durable progress records of a session (the core's progressIntervalMs). */
  progressEveryMs?: number;
  /** The adapters' link-level fault counters (runtime/link-counters.ts linkCountersOf). */
  links?: (() => Record<string, number>) | undefined;
}

/** An input of the core without its time stamps (the loop stamps it when its turn comes). */
export type InputBody = PileInput extends infer I
  ? I extends PileInput
    ? Omit<I, "mono" | "wall">
    : never
  : never;

export interface LoopContext {
  readonly parts: RuntimeParts;
  readonly log: Logger;
  count(name: string, n?: number): void;
  feed(input: InputBody): Promise<PileEffect[]>;
  /** Ahead of everything queued: acknowledgements of durable writes. */
  feedFirst(input: InputBody): void;
  contactorMayBeLive(): boolean;
  booted(): boolean;
  stopped(): boolean;
}

/** The message of an error, for a log line. */
export const errText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** Resolves with `r`, or with `late` once `ms` have passed on the clock. */
export async function within<T>(clock: TimedClock, r: Promise<T>, ms: number, late: T): Promise<T> {
  let timer: unknown;
  const timeout = new Promise<T>((res) => {
    timer = clock.setTimeout(() => res(late), ms);
  });
  try {
    return await Promise.race([r, timeout]);
  } finally {
    clock.clearTimeout(timer);
  }
}

/** A repeating timer on the clock (the timers port has one-shots only). */
export function every(clock: TimedClock, ms: number, fn: () => void): () => void {
  let handle: unknown;
  let on = true;
  const arm = () => {
    handle = clock.setTimeout(() => {
      if (!on) return;
      arm();
      fn();
    }, ms);
  };
  arm();
  return () => {
    on = false;
    clock.clearTimeout(handle);
  };
}
