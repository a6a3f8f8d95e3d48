/**
 * A simulated two-wire RS-485 line between two serial devices (two pty ends), with fault switches
 * on the slave-to-master direction: drop replies (a silent line) or flip the last byte of each
 * reply burst (a CRC error on the wire).
 *
 * Unpaced (baudRate 0) it forwards bytes as fast as the ptys go. Paced, it is a UART on a
 * half-duplex wire, by an absolute schedule computed when the bytes come in:
 * - each character takes bitsPerChar / baud (8N1: 10 bits, 1.0417 ms at 9600) and is delivered
 *   once its stop bit is over, never earlier: the pump re-reads the clock after every timer (a
 *   Node timer can fire up to a millisecond early) and hands over every byte whose time is past,
 *   so late timers never stretch the schedule and early ones never shorten it; the last
 *   character of a frame, which the receiver waits for, is polled for over its last 1.5 ms
 *   rather than left to a timer;
 * - the characters of one frame follow each other without a gap: bytes that come in while their
 *   direction is still sending continue its frame;
 * - frames never overlap: a frame waits for the wire, and starts no earlier than the inter-frame
 *   silence (Modbus RTU: 3.5 characters, 1.75 ms above 19200 baud) after the end of the frame
 *   before it, in either direction. A slave detects the end of a request by that silence, so this
 *   is also the least turnaround a real meter can have.
 * The computed schedule of the last frames is kept (`frames()`), with when each frame's bytes came
 * in and when its last byte was handed over, so that tests can check the line against its own
 * schedule rather than against the machine's speed.
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
  /** Silence between frames, ms (default: 3.5 characters, 1.75 ms above 19200 baud). */
  interFrameMs?: number;
  /** Silence that ends a reply burst, for corruption, ms. */
  burstGapMs?: number;
  /** Frames kept in the schedule log (default 64). */
  keepFrames?: number;
  /** Monotonic ms (default performance.now). */
  now?: () => number;
}

export interface LineFaults {
  dropReplies: boolean;
  corruptReplies: boolean;
}

export type LineDirection = "toSlave" | "toMaster";

/** One frame on the paced wire, as the line scheduled and delivered it (ms on the line's clock). */
export interface LineFrame {
  dir: LineDirection;
  bytes: number;
  /** When the frame's first bytes came into the line (written by the sender). */
  inAt: number;
  /** When its first character starts on the wire. */
  startAt: number;
  /** When its last character's stop bit is over. */
  endAt: number;
  /** The silence the frame had to wait for after the end of the frame before it (0: none). */
  heldMs: number;
  /** When the line handed its last byte to the receiver (NaN until then). */
  deliveredAt: number;
}

interface Pending {
  byte: number;
  /** Delivery time: the end of the character. */
  at: number;
  frame: LineFrame;
}

interface Direction {
  name: LineDirection;
  out: SerialPort;
  queue: Pending[];
  timer: NodeJS.Timeout | null;
  immediate: NodeJS.Immediate | null;
}

/** How close to its time the last character of a frame is polled for rather than timed, ms. */
const SPIN_MS = 1.5;

function openPort(path: string): Promise<SerialPort> {
  const p = new SerialPort({ path, baudRate: 115200, autoOpen: false });
  p.on("error", () => {
    // A vanished pty: the port closes itself.
  });
  return new Promise((resolve, reject) => p.open((e) => (e ? reject(e) : resolve(p))));
}

/** One character's time on the wire, ms (0: unpaced). */
export function charTimeMs(baudRate: number, bitsPerChar = 10): number {
  return baudRate > 0 ? (bitsPerChar * 1000) / baudRate : 0;
}

/** The Modbus RTU inter-frame silence for this pacing, ms. */
export function lineSilenceMs(baudRate: number, bitsPerChar = 10): number {
  if (baudRate <= 0) return 0;
  return baudRate > 19_200 ? 1.75 : 3.5 * charTimeMs(baudRate, bitsPerChar);
}

export class SerialLine {
  /** One character's time, ms (0: unpaced). */
  readonly charMs: number;
  /** The silence kept between frames, ms. */
  readonly silenceMs: number;
  private readonly burstGapMs: number;
  private readonly keepFrames: number;
  private readonly now: () => number;
  private faults: LineFaults = { dropReplies: false, corruptReplies: false };
  private burst: number[] = [];
  private burstTimer: NodeJS.Timeout | null = null;
  private readonly toSlave: Direction;
  private readonly toMaster: Direction;
  /** The last frame scheduled on the wire (either direction). */
  private last: LineFrame | null = null;
  private readonly log: LineFrame[] = [];
  /** Characters forwarded each way; frames that waited for the silence, each way. */
  readonly counters = { toSlave: 0, toMaster: 0, dropped: 0, corrupted: 0, heldToSlave: 0, heldToMaster: 0 };

  private constructor(
    private readonly m: SerialPort,
    private readonly s: SerialPort,
    opts: LineOptions,
  ) {
    const baud = opts.baudRate ?? 0;
    this.charMs = charTimeMs(baud, opts.bitsPerChar ?? 10);
    this.silenceMs = opts.interFrameMs ?? lineSilenceMs(baud, opts.bitsPerChar ?? 10);
    this.burstGapMs = opts.burstGapMs ?? 5;
    this.keepFrames = opts.keepFrames ?? 64;
    this.now = opts.now ?? (() => performance.now());
    this.toSlave = { name: "toSlave", out: s, queue: [], timer: null, immediate: null };
    this.toMaster = { name: "toMaster", out: m, queue: [], timer: null, immediate: null };
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

  /** The schedule of the last frames, oldest first (paced lines only). */
  frames(): LineFrame[] {
    return this.log.map((f) => ({ ...f }));
  }

  clearFrames(): void {
    this.log.length = 0;
  }

  async close(): Promise<void> {
    for (const d of [this.toSlave, this.toMaster]) {
      if (d.timer) clearTimeout(d.timer);
      if (d.immediate) clearImmediate(d.immediate);
      d.queue.length = 0;
    }
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
    if (c.length === 0) return;
    this.counters[d.name] += c.length;
    if (this.charMs === 0) {
      if (d.out.isOpen) d.out.write(c);
      return;
    }
    const frame = this.schedule(d.name);
    // Character i of the chunk ends (i + 1) character times after the frame's end so far.
    const first = frame.endAt;
    frame.endAt = first + c.length * this.charMs;
    frame.bytes += c.length;
    for (let i = 0; i < c.length; i++)
      d.queue.push({ byte: c[i]!, at: first + (i + 1) * this.charMs, frame });
    if (!d.timer && !d.immediate) this.pump(d);
  }

  /**
   * The frame these bytes belong to: the frame still on the wire in the same direction (bytes
   * that come in before its last character is over continue it), or a new one that starts once
   * the wire has been silent for the inter-frame time after the frame before it.
   */
  private schedule(dir: LineDirection): LineFrame {
    const now = this.now();
    const last = this.last;
    if (last && last.dir === dir && last.endAt > now) return last;
    const earliest = last ? last.endAt + this.silenceMs : now;
    const startAt = Math.max(now, earliest);
    const heldMs = startAt - now;
    if (heldMs > 0) this.counters[dir === "toSlave" ? "heldToSlave" : "heldToMaster"]++;
    const frame: LineFrame = {
      dir,
      bytes: 0,
      inAt: now,
      startAt,
      endAt: startAt,
      heldMs,
      deliveredAt: Number.NaN,
    };
    this.last = frame;
    this.log.push(frame);
    if (this.log.length > this.keepFrames) this.log.shift();
    return frame;
  }

  /** Hands over every character whose stop bit is over by now, then waits for the next one. */
  private pump(d: Direction): void {
    d.timer = null;
    d.immediate = null;
    const now = this.now();
    let n = 0;
    while (n < d.queue.length && d.queue[n]!.at <= now) n++;
    if (n > 0) {
      const due = d.queue.splice(0, n);
      if (d.out.isOpen) d.out.write(Buffer.from(due.map((p) => p.byte)));
      // A frame's last character is due: the frame is over (later bytes start a new one).
      for (const p of due) if (p.at === p.frame.endAt) p.frame.deliveredAt = now;
    }
    const next = d.queue[0];
    if (!next) return;
    const wait = next.at - this.now();
    // A frame's last character is what the receiver waits for: its last stretch is polled on
    // each turn of the event loop rather than left to a timer that can be a millisecond late.
    if (wait < SPIN_MS && next.at === next.frame.endAt) {
      d.immediate = setImmediate(() => this.pump(d));
    } else {
      d.timer = setTimeout(() => this.pump(d), Math.max(0, wait));
    }
  }
}
