/**
 * A simulated energy meter: a Modbus RTU slave on a serial port (a pty end on a desk, a USB
 * adapter on a bench) that serves the register map of any supported model. Its import energy
 * integrates the simulated power over the Clock's monotonic time; the power is set from outside
 * (e.g. follows the contactor of the simulated plant). Fault switches: silence, CRC-corrupted
 * replies, Modbus exception replies, slow replies, "not available" energy; and the hostile ones:
 * each reply sent twice, each request answered with the reply to the one before (shifted), energy
 * going backwards, absurd values.
 */
import { SerialPort } from "serialport";
import {
  encodeField,
  encodeNotAvailable,
  FIELD_NAMES,
  type FieldName,
  METER_MAPS,
  type MeterMap,
  type MeterModel,
  registerCount,
} from "../../hw/meter/maps.js";
import { type Clock, systemClock } from "../../hw/ports.js";
import { answer, type RegisterAnswer, RequestFramer } from "./slave.js";

export interface MeterFaults {
  /** Receive but never answer. */
  silent: boolean;
  /** Answer with the last CRC byte flipped. */
  corruptCrc: boolean;
  /** Answer every read with this Modbus exception code (e.g. 4 = slave device failure). */
  exception: number | null;
  /** Answer this many ms late. */
  delayMs: number;
  /** Report energy as "not available" (the map's sentinel, or NaN for float meters). */
  energyNotAvailable: boolean;
  /** Send each reply again this many ms after the first (a repeating meter or adapter). */
  duplicateAfterMs: number | null;
  /** Answer each request with the reply to the previous one (nothing to the first). */
  shifted: boolean;
  /** Added to the reported energy (negative: energy going backwards). */
  energyOffsetWh: number;
  /** Report these values instead of the measured ones. */
  absurd: Partial<Record<FieldName, number>>;
}

export interface SimMeterOptions {
  model: MeterModel;
  /** Modbus unit address (default 1). */
  unit?: number;
  clock?: Clock;
  voltageV?: number;
  energyWh?: number;
}

export interface SimMeterCounters {
  requests: number;
  replies: number;
  /** Requests deliberately left unanswered (silent fault, other unit). */
  unanswered: number;
  /** Bytes skipped on input (bad CRC, noise). */
  rxDiscarded: number;
  /** Replies sent a second time (duplicate fault). */
  duplicates: number;
}

export interface SerialAttachOptions {
  baudRate?: number;
  parity?: "none" | "even" | "odd";
  stopBits?: 1 | 2;
  dataBits?: 7 | 8;
}

const NO_FAULTS: MeterFaults = {
  silent: false,
  corruptCrc: false,
  exception: null,
  delayMs: 0,
  energyNotAvailable: false,
  duplicateAfterMs: null,
  shifted: false,
  energyOffsetWh: 0,
  absurd: {},
};

export class SimMeter {
  readonly map: MeterMap;
  readonly unit: number;
  private readonly clock: Clock;
  private voltage: number;
  private power = 0;
  private energy: number;
  private lastAccrual: number;
  private faults: MeterFaults = { ...NO_FAULTS };
  private readonly windows: Map<3 | 4, { lo: number; hi: number }>;
  private port: SerialPort | null = null;
  private framer = new RequestFramer();
  private readonly timers = new Set<NodeJS.Timeout>();
  /** The reply held back by the shifted fault. */
  private held: Buffer | null = null;
  readonly counters: SimMeterCounters = {
    requests: 0,
    replies: 0,
    unanswered: 0,
    rxDiscarded: 0,
    duplicates: 0,
  };

  constructor(opts: SimMeterOptions) {
    this.map = METER_MAPS[opts.model];
    this.unit = opts.unit ?? 1;
    this.clock = opts.clock ?? systemClock;
    this.voltage = opts.voltageV ?? 230;
    this.energy = opts.energyWh ?? 0;
    this.lastAccrual = this.clock.monotonic();
    // The register space the meter answers for: the 256-register pages holding its fields.
    this.windows = new Map();
    for (const name of FIELD_NAMES) {
      const f = this.map.fields[name];
      const lo = f.address & ~0xff;
      const hi = (f.address | 0xff) + 1;
      const w = this.windows.get(f.fc);
      this.windows.set(f.fc, w ? { lo: Math.min(w.lo, lo), hi: Math.max(w.hi, hi) } : { lo, hi });
    }
  }

  /** Simulated total active power, W (negative = export, which does not count as import). */
  setPower(w: number): void {
    this.accrue();
    this.power = w;
  }

  setVoltage(v: number): void {
    this.voltage = v;
  }

  setFaults(f: Partial<MeterFaults>): void {
    this.faults = { ...this.faults, ...f };
  }

  clearFaults(): void {
    this.faults = { ...NO_FAULTS };
    this.held = null;
  }

  /** The values the meter would report now. */
  values(): { voltageV: number; currentA: number; powerW: number; energyImportWh: number } {
    this.accrue();
    const phases = this.map.model === "sdm120" ? 1 : 3;
    const currentA = this.voltage > 0 ? Math.abs(this.power) / (phases * this.voltage) : 0;
    return { voltageV: this.voltage, currentA, powerW: this.power, energyImportWh: this.energy };
  }

  /** The register source the slave answers from (also usable without a serial port). */
  readonly registers = (fc: 3 | 4, address: number, count: number): RegisterAnswer => {
    const w = this.windows.get(fc);
    if (!w || address < w.lo || address + count > w.hi) return { ok: false, exception: 2 };
    const v = { ...this.values(), ...this.faults.absurd };
    v.energyImportWh += this.faults.energyOffsetWh;
    const regs = new Array<number>(count).fill(0);
    for (const name of FIELD_NAMES) {
      const spec = this.map.fields[name];
      if (spec.fc !== fc) continue;
      const words =
        name === "energyImportWh" && this.faults.energyNotAvailable
          ? encodeNotAvailable(spec)
          : encodeField(spec, v[name]);
      for (let i = 0; i < registerCount(spec.type); i++) {
        const at = spec.address + i - address;
        if (at >= 0 && at < count) regs[at] = words[i]!;
      }
    }
    return { ok: true, registers: regs };
  };

  /**
   * Feeds received bytes; returns the replies to send now (faults applied, except the delay,
   * which `attach` applies). Never throws on input.
   */
  receive(chunk: Uint8Array): Buffer[] {
    const out: Buffer[] = [];
    const before = this.framer.discarded;
    for (const req of this.framer.push(chunk)) {
      this.counters.requests++;
      if (this.faults.silent || req.unit !== this.unit) {
        this.counters.unanswered++;
        continue;
      }
      let reply =
        this.faults.exception !== null && (req.fc === 3 || req.fc === 4)
          ? answer(req, this.unit, () => ({ ok: false, exception: this.faults.exception ?? 4 }))
          : answer(req, this.unit, this.registers);
      if (!reply) continue;
      if (this.faults.corruptCrc) {
        reply = Buffer.from(reply);
        reply[reply.length - 1] = reply[reply.length - 1]! ^ 0xff;
      }
      if (this.faults.shifted) {
        const prev = this.held;
        this.held = reply;
        if (!prev) continue;
        reply = prev;
      }
      this.counters.replies++;
      out.push(reply);
    }
    this.counters.rxDiscarded += this.framer.discarded - before;
    return out;
  }

  /** Serves on a serial device until detach(); a second attach replaces the first port. */
  async attach(path: string, opts: SerialAttachOptions = {}): Promise<void> {
    await this.detach();
    const port = new SerialPort({
      path,
      baudRate: opts.baudRate ?? 9600,
      parity: opts.parity ?? "none",
      stopBits: opts.stopBits ?? 1,
      dataBits: opts.dataBits ?? 8,
      autoOpen: false,
    });
    port.on("error", () => {
      // A vanished pty or adapter: the port closes itself; the owner reattaches.
    });
    port.on("close", () => {
      if (this.port === port) this.port = null;
    });
    await new Promise<void>((resolve, reject) => port.open((e) => (e ? reject(e) : resolve())));
    this.framer = new RequestFramer();
    port.on("data", (chunk: Buffer) => {
      for (const reply of this.receive(chunk)) this.send(port, reply);
    });
    this.port = port;
  }

  async detach(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const port = this.port;
    this.port = null;
    if (port?.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
  }

  private send(port: SerialPort, reply: Buffer): void {
    const write = () => {
      if (port.isOpen && this.port === port) port.write(reply);
    };
    this.later(this.faults.delayMs, write);
    const dup = this.faults.duplicateAfterMs;
    if (dup !== null) {
      this.counters.duplicates++;
      this.later(this.faults.delayMs + dup, write);
    }
  }

  private later(ms: number, f: () => void): void {
    if (ms <= 0) {
      f();
      return;
    }
    const t = setTimeout(() => {
      this.timers.delete(t);
      f();
    }, ms);
    this.timers.add(t);
  }

  private accrue(): void {
    const now = this.clock.monotonic();
    const dt = now - this.lastAccrual;
    this.lastAccrual = now;
    if (dt > 0 && this.power > 0) this.energy += (this.power * dt) / 3_600_000;
  }
}
