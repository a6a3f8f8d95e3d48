/**
 * The Meter port over Modbus RTU: plans the reads from the model's register map, runs them through
 * the bus (which serialises them with every other request on the line), decodes the replies and
 * stamps the reading with the Clock's monotonic time at the arrival of the last reply.
 *
 * The reads are the map's poll plan (pollPlan: the grouping that takes the least time on the line,
 * silences included), sized so that each reply of a poll is told apart by its function and byte
 * count (distinctReplies). Each decoded reading passes the plausibility filter (ranges of the
 * model, energy monotonic and no faster than power × time) before anyone sees it: a refused
 * reading is MeterError IMPLAUSIBLE, and the last accepted reading stays the reference.
 */
import { type Clock, type Meter, MeterError, type MeterReading } from "../ports.js";
import { type BusOptions, charTimeMs, interFrameMs, ModbusBus, type RegisterReader } from "./bus.js";
import {
  decodeReading,
  METER_MAPS,
  type MeterMap,
  type MeterModel,
  type PollPlanOptions,
  pollPlan,
  type ReadPlan,
} from "./maps.js";
import { METER_LIMITS, type MeterLimits, PlausibilityFilter } from "./plausibility.js";

export interface ModbusMeterOptions {
  bus: RegisterReader & { close?(): Promise<void> };
  model: MeterModel | MeterMap;
  /** Modbus unit (slave) address, 1..247. */
  unit: number;
  clock: Clock;
  plan?: PollPlanOptions;
  /** The model's ranges for the plausibility filter (default: METER_LIMITS of the map's model). */
  limits?: MeterLimits;
  /** close() also closes the bus (when this meter is alone on it). */
  ownsBus?: boolean;
}

export class ModbusMeter implements Meter {
  readonly map: MeterMap;
  readonly plans: readonly ReadPlan[];
  /** The bus it reads through (a ModbusBus exposes its fault counters for the console). */
  readonly bus: ModbusMeterOptions["bus"];
  private readonly unit: number;
  private readonly clock: Clock;
  private readonly ownsBus: boolean;
  private readonly filter: PlausibilityFilter;
  private closed = false;

  constructor(opts: ModbusMeterOptions) {
    if (!Number.isInteger(opts.unit) || opts.unit < 1 || opts.unit > 247) {
      throw new RangeError(`modbus unit must be 1..247, got ${opts.unit}`);
    }
    this.map = typeof opts.model === "string" ? METER_MAPS[opts.model] : opts.model;
    this.plans = pollPlan(this.map, opts.plan);
    this.filter = new PlausibilityFilter(this.map, opts.limits ?? METER_LIMITS[this.map.model]);
    this.bus = opts.bus;
    this.unit = opts.unit;
    this.clock = opts.clock;
    this.ownsBus = opts.ownsBus ?? false;
  }

  async read(): Promise<MeterReading> {
    if (this.closed) throw new MeterError("CLOSED", "meter is closed");
    const replies: number[][] = [];
    for (const p of this.plans) replies.push(await this.bus.readRegisters(this.unit, p.fc, p.start, p.count));
    const takenAt = this.clock.monotonic();
    const r = decodeReading(this.map, this.plans, replies);
    if (!r.ok) {
      // A reply of the wrong size passed the CRC: count it with the garbled frames.
      throw new MeterError(r.code === "NOT_AVAILABLE" ? "NOT_AVAILABLE" : "CRC", r.message);
    }
    const reading = { ...r.values, takenAt };
    const p = this.filter.judge(reading);
    if (!p.ok) throw new MeterError("IMPLAUSIBLE", `${this.map.model}: ${p.message}`);
    return reading;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsBus) await this.bus.close?.();
  }
}

/** A meter alone on its own bus: the common case of one pile, one meter, one RS-485 adapter. */
export function openModbusMeter(
  opts: BusOptions & { model: MeterModel; unit: number; clock: Clock; plan?: PollPlanOptions },
): ModbusMeter {
  const bus = new ModbusBus(opts);
  // The two silences of a transaction in character times of this line (7 up to 19200 baud).
  const s = {
    baudRate: opts.baudRate ?? 9600,
    parity: opts.parity ?? "none",
    stopBits: opts.stopBits ?? 1,
    dataBits: opts.dataBits ?? 8,
  };
  const silenceChars = (2 * interFrameMs(s)) / charTimeMs(s);
  return new ModbusMeter({
    bus,
    model: opts.model,
    unit: opts.unit,
    clock: opts.clock,
    plan: { silenceChars, ...opts.plan },
    ownsBus: true,
  });
}
