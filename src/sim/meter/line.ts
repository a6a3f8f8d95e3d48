/**
 * A simulated RS-485 line between two serial devices (two pty ends): forwards bytes both ways,
 * optionally paced like a real UART (one character every bitsPerChar / baud seconds; ptys deliver
 * instantly otherwise), and with fault switches on the slave-to-master direction: drop replies
 * (a silent line) or flip the last byte of each reply burst (a CRC error on the wire).
 */
import { SerialPort } from "serialport";

export interface LineOptions {
  /** The master's side. */
  master: string;
  /** The slave's side. */
  slave: string;
  /** Pace at this baud rate; 0 = forward as fast as the ptys go. */
  baudRate?: number;
  /** Bits on the wire per character (8N1 = 10). */
  bitsPerChar?: number;
  /** Silence that ends a reply burst, for corruption, ms. */
  burstGapMs?: number;
}

export interface LineFaults {
  dropReplies: boolean;
  corruptReplies: boolean;
}

interface Direction {
  out: SerialPort;
  queue: number[];
  /** When the character on the wire finishes, in performance.now() ms. */
  busyUntil: number;
  timer: NodeJS.Timeout | null;
}

function openPort(path: string): Promise<SerialPort> {
  const p = new SerialPort({ path, baudRate: 115200, autoOpen: false });
  p.on("error", () => {
    // A vanished pty: the port closes itself.
  });
  return new Promise((resolve, reject) => p.open((e) => (e ? reject(e) : resolve(p))));
}

export class SerialLine {
  private readonly charMs: number;
  private readonly burstGapMs: number;
  private faults: LineFaults = { dropReplies: false, corruptReplies: false };
  private burst: number[] = [];
  private burstTimer: NodeJS.Timeout | null = null;
  private readonly toSlave: Direction;
  private readonly toMaster: Direction;
  /** Characters forwarded each way. */
  readonly counters = { toSlave: 0, toMaster: 0, dropped: 0, corrupted: 0 };

  private constructor(
    private readonly m: SerialPort,
    private readonly s: SerialPort,
    opts: LineOptions,
  ) {
    const baud = opts.baudRate ?? 0;
    this.charMs = baud > 0 ? ((opts.bitsPerChar ?? 10) * 1000) / baud : 0;
    this.burstGapMs = opts.burstGapMs ?? 5;
    this.toSlave = { out: s, queue: [], busyUntil: 0, timer: null };
    this.toMaster = { out: m, queue: [], busyUntil: 0, timer: null };
    m.on("data", (c: Buffer) => this.enqueue(this.toSlave, c));
    s.on("data", (c: Buffer) => this.fromSlave(c));
  }

  static async open(opts: LineOptions): Promise<SerialLine> {
    const m = await openPort(opts.master);
    try {
      const s = await openPort(opts.slave);
      return new SerialLine(m, s, opts);
    } catch (e) {
      await new Promise<void>((r) => m.close(() => r()));
      throw e;
    }
  }

  setFaults(f: Partial<LineFaults>): void {
    this.faults = { ...this.faults, ...f };
  }

  async close(): Promise<void> {
    for (const d of [this.toSlave, this.toMaster]) if (d.timer) clearTimeout(d.timer);
    if (this.burstTimer) clearTimeout(this.burstTimer);
    await Promise.all(
      [this.m, this.s].map((p) =>
        p.isOpen ? new Promise<void>((r) => p.close(() => r())) : Promise.resolve(),
      ),
    );
  }

  private fromSlave(c: Buffer): void {
    if (this.faults.dropReplies) {
      this.counters.dropped += c.length;
      return;
    }
    if (!this.faults.corruptReplies) {
      this.enqueue(this.toMaster, c);
      return;
    }
    this.burst.push(...c);
    if (this.burstTimer) clearTimeout(this.burstTimer);
    this.burstTimer = setTimeout(() => {
      this.burstTimer = null;
      const b = this.burst;
      this.burst = [];
      if (b.length > 0) {
        b[b.length - 1] = b[b.length - 1]! ^ 0xff;
        this.counters.corrupted++;
      }
      this.enqueue(this.toMaster, Buffer.from(b));
    }, this.burstGapMs);
  }

  private enqueue(d: Direction, c: Buffer): void {
    if (d === this.toSlave) this.counters.toSlave += c.length;
    else this.counters.toMaster += c.length;
    if (this.charMs === 0) {
      if (d.out.isOpen) d.out.write(c);
      return;
    }
    // An idle line starts its next character now; it arrives one character time later.
    if (d.queue.length === 0 && !d.timer) d.busyUntil = Math.max(d.busyUntil, performance.now());
    d.queue.push(...c);
    if (!d.timer) this.pump(d);
  }

  /** Sends every character whose transmission has finished by now, then waits for the next. */
  private pump(d: Direction): void {
    d.timer = null;
    const now = performance.now();
    const due: number[] = [];
    while (d.queue.length > 0 && d.busyUntil + this.charMs <= now) {
      d.busyUntil += this.charMs;
      due.push(d.queue.shift()!);
    }
    if (due.length > 0 && d.out.isOpen) d.out.write(Buffer.from(due));
    if (d.queue.length > 0) {
      d.timer = setTimeout(() => this.pump(d), Math.max(0, d.busyUntil + this.charMs - performance.now()));
    }
  }
}
