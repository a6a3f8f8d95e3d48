/**
 * The link-level fault counters the adapters keep (the Modbus bus, the BLE peripheral, the GPIO
 * inputs) gathered into one flat map, and a watch that logs them when they move. They reach
 * `pilectl status --json` and the console's status page through the status view (`links`).
 */
import type { Logger } from "pino";
import type { BlePeripheral, DigitalInput, Meter } from "../../hw/ports.js";

export type LinkCounters = Record<string, number>;

interface BusLike {
  counters(): {
    rxCrcErrors: number;
    timeouts: number;
    badFrames: number;
    rxDiscarded: number;
    retries: number;
    opens: number;
  };
}
interface PeripheralLike {
  stats(): { notifyDropped: number; handlerErrors: number; radioDowns: number };
}

const hasFn = <K extends string>(o: unknown, k: K): o is Record<K, () => unknown> =>
  typeof o === "object" && o !== null && typeof (o as Record<string, unknown>)[k] === "function";

/** Where the counters come from: whichever adapter exposes them (a simulator may expose none). */
export interface LinkSources {
  meter: Meter;
  ble?: BlePeripheral | undefined;
  inputs: (DigitalInput | undefined)[];
}

/** A reader of the adapters' counters, as they are at each call. */
export function linkCountersOf(s: LinkSources): () => LinkCounters {
  const bus = (s.meter as { bus?: unknown }).bus;
  const busOk = hasFn(bus, "counters") ? (bus as BusLike) : undefined;
  const ble = hasFn(s.ble, "stats") ? (s.ble as unknown as PeripheralLike) : undefined;
  const inputs = s.inputs.filter(
    (i): i is DigitalInput & { readErrors: number } =>
      i !== undefined && typeof (i as { readErrors?: unknown }).readErrors === "number",
  );
  return () => {
    const out: LinkCounters = {};
    if (busOk) {
      const c = busOk.counters();
      out["modbus.crcErrors"] = c.rxCrcErrors;
      out["modbus.timeouts"] = c.timeouts;
      out["modbus.badFrames"] = c.badFrames;
      out["modbus.discardedBytes"] = c.rxDiscarded;
      out["modbus.retries"] = c.retries;
      out["modbus.reopens"] = Math.max(0, c.opens - 1);
    }
    if (ble) {
      const st = ble.stats();
      out["ble.notifyDropped"] = st.notifyDropped;
      out["ble.handlerErrors"] = st.handlerErrors;
      out["ble.radioDowns"] = st.radioDowns;
    }
    if (inputs.length > 0) out["gpio.readErrors"] = inputs.reduce((n, i) => n + i.readErrors, 0);
    return out;
  };
}

/** Logs the counters that moved since the last look (one line per look, none when still). */
export class LinkWatch {
  #last: LinkCounters = {};
  constructor(
    private readonly read: () => LinkCounters,
    private readonly log: Logger,
  ) {}

  /** The first look sets the baseline (counts from before the start are logged once, too). */
  check(): void {
    const now = this.read();
    const moved: LinkCounters = {};
    for (const [k, v] of Object.entries(now)) {
      const d = v - (this.#last[k] ?? 0);
      if (d > 0) moved[k] = d;
    }
    this.#last = now;
    if (Object.keys(moved).length > 0) this.log.warn({ moved, totals: now }, "link fault counters moved");
  }
}
