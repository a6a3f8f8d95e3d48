/**
 * The byte link under modbus-serial's `ModbusRTU`: it plays the "port" role that ModbusRTU drives
 * (open/close/write/isOpen and `data`/`error`/`close` events) over a serialport-like stream.
 *
 * Why not modbus-serial's own RTUBufferedPort: it keeps stray bytes across transactions (a late
 * reply to a timed-out request can be taken for the next reply), it writes to the SerialPort even
 * when closed (serialport queues that write and sends it on the next open), and it cannot tell a
 * CRC failure apart without matching the message text. This link
 * - drops every write while the port is not open (nothing can be queued for a later open);
 * - discards leftover input before each request;
 * - accepts a reply only for its own request: unit, function and, for a read, the byte count of
 *   the registers asked for; a well-formed frame of another shape (a repeated or late reply to an
 *   earlier request) is skipped and counted, and the link keeps waiting for its own;
 * - assembles exactly one reply frame by its length and checks its CRC itself (counted);
 * - notes when the last byte came in, so that the bus can keep the inter-frame silence;
 * - counts bytes both ways.
 */
import { EventEmitter } from "node:events";
import { crcOk, matchReply } from "./rtu.js";

/** The part of serialport's SerialPort that the link uses (a fake implements it in tests). */
export interface SerialLike {
  readonly isOpen: boolean;
  open(cb: (err: Error | null) => void): void;
  close(cb?: (err: Error | null) => void): void;
  write(data: Buffer): unknown;
  on(event: "data", listener: (chunk: Buffer) => void): unknown;
  on(event: "error", listener: (err: Error) => void): unknown;
  on(event: "close", listener: (err?: Error | null) => void): unknown;
  removeAllListeners(event?: string): unknown;
}

export interface LinkCounters {
  bytesTx: number;
  bytesRx: number;
  rxCrcErrors: number;
  /** Bytes thrown away: leftovers before a request, noise before a reply's header. */
  rxDiscarded: number;
  /** Writes refused because the port was not open. */
  writesDropped: number;
  /** Whole frames with a good CRC that answered another request (skipped). */
  strayFrames: number;
}

export function newLinkCounters(): LinkCounters {
  return { bytesTx: 0, bytesRx: 0, rxCrcErrors: 0, rxDiscarded: 0, writesDropped: 0, strayFrames: 0 };
}

export class RtuLink extends EventEmitter {
  /** Read by ModbusRTU: transaction ids (always 1 on a serial line). */
  _transactionIdRead = 1;
  _transactionIdWrite = 1;
  private buf: Buffer = Buffer.alloc(0);
  private unit = -1;
  private fc = -1;
  /** Byte count a read reply must carry (2 per register asked for); -1 for other functions. */
  private byteCount = -1;
  private awaiting = false;
  /** now() when the last byte came in (-Infinity: never). */
  lastRxAt = Number.NEGATIVE_INFINITY;
  /** Whether the reply of the current request failed its CRC (read by the bus to classify). */
  crcFailed = false;

  constructor(
    private readonly serial: SerialLike,
    private readonly counters: LinkCounters,
    private readonly now: () => number = () => performance.now(),
  ) {
    super();
    serial.on("data", (chunk) => this.onData(chunk));
    serial.on("error", (err) => this.emit("error", err));
    serial.on("close", (err) => this.emit("close", err));
  }

  get isOpen(): boolean {
    return this.serial.isOpen;
  }

  open(cb: (err: Error | null) => void): void {
    this.serial.open(cb);
  }

  close(cb?: (err: Error | null) => void): void {
    this.awaiting = false;
    if (!this.serial.isOpen) {
      cb?.(null);
      return;
    }
    this.serial.close((err) => cb?.(err ?? null));
  }

  /** The current request is over (answered, timed out or abandoned): later bytes are strays. */
  idle(): void {
    this.awaiting = false;
  }

  destroy(): void {
    this.close();
  }

  write(data: Buffer): void {
    if (!this.serial.isOpen) {
      this.counters.writesDropped++;
      return;
    }
    if (this.buf.length > 0) this.counters.rxDiscarded += this.buf.length;
    this.buf = Buffer.alloc(0);
    this.unit = data[0] ?? -1;
    this.fc = data[1] ?? -1;
    this.byteCount = (this.fc === 3 || this.fc === 4) && data.length >= 6 ? 2 * data.readUInt16BE(4) : -1;
    this.awaiting = true;
    this.crcFailed = false;
    this.counters.bytesTx += data.length;
    this.serial.write(data);
  }

  private onData(chunk: Buffer): void {
    this.counters.bytesRx += chunk.length;
    this.lastRxAt = this.now();
    if (!this.awaiting) {
      this.counters.rxDiscarded += chunk.length;
      return;
    }
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    for (;;) {
      const m = matchReply(this.buf, this.unit, this.fc, this.byteCount);
      if (m === undefined) return;
      if (m === null) {
        // Not the start of our reply: drop one byte and look again (resynchronise).
        this.buf = this.buf.subarray(1);
        this.counters.rxDiscarded++;
        continue;
      }
      if (m.stray) {
        // Our unit and function, another byte count: a whole frame with a good CRC answered some
        // other request (a repeat, a late reply). Skip it whole; otherwise resynchronise.
        if (this.buf.length < m.length) return;
        const ok = crcOk(this.buf.subarray(0, m.length));
        const skip = ok ? m.length : 1;
        if (ok) this.counters.strayFrames++;
        this.buf = this.buf.subarray(skip);
        this.counters.rxDiscarded += skip;
        continue;
      }
      const len = m.length;
      if (this.buf.length < len) return;
      const frame = Buffer.from(this.buf.subarray(0, len));
      this.buf = this.buf.subarray(len);
      this.awaiting = false;
      if (!crcOk(frame)) {
        this.counters.rxCrcErrors++;
        this.crcFailed = true;
      }
      this.emit("data", frame);
      return;
    }
  }
}
