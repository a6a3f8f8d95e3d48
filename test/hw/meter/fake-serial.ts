/**
 * An in-memory serial device for the bus tests: records every frame written, and answers through
 * a SimMeter (automatically, or when the test says so). It can fail to open and can be unplugged.
 */
import { EventEmitter } from "node:events";
import type { SerialLike } from "../../../src/hw/meter/link.js";
import type { SimMeter } from "../../../src/sim/meter/sim-meter.js";

export class FakeSerial extends EventEmitter implements SerialLike {
  isOpen = false;
  /** Frames written while open, in order. */
  readonly written: Buffer[] = [];
  /** Replies waiting for deliver() when autoReply is off. */
  readonly pending: Buffer[] = [];
  autoReply = true;
  /** Split each reply into chunks of this many bytes. */
  chunkSize = 0;
  /** Bytes delivered before each reply (line noise). */
  noise: Buffer = Buffer.alloc(0);

  constructor(
    private readonly sim: SimMeter | null,
    private readonly openError: Error | null = null,
  ) {
    super();
  }

  open(cb: (err: Error | null) => void): void {
    setImmediate(() => {
      if (this.openError) return cb(this.openError);
      this.isOpen = true;
      cb(null);
    });
  }

  close(cb?: (err: Error | null) => void): void {
    const was = this.isOpen;
    this.isOpen = false;
    setImmediate(() => {
      if (was) this.emit("close", null);
      cb?.(null);
    });
  }

  write(data: Buffer): boolean {
    // A real SerialPort would queue this for the next open: the link must never let it get here.
    if (!this.isOpen) throw new Error("write on a closed fake port");
    this.written.push(Buffer.from(data));
    for (const reply of this.sim?.receive(data) ?? []) {
      if (this.autoReply) setImmediate(() => this.deliver(reply));
      else this.pending.push(reply);
    }
    return true;
  }

  /** Delivers a reply (or the oldest pending one). */
  deliver(reply = this.pending.shift()): void {
    if (!reply || !this.isOpen) return;
    const bytes = Buffer.concat([this.noise, reply]);
    if (this.chunkSize <= 0) {
      this.emit("data", bytes);
      return;
    }
    for (let i = 0; i < bytes.length; i += this.chunkSize)
      this.emit("data", bytes.subarray(i, i + this.chunkSize));
  }

  /** The adapter vanished: an error, then a close with `disconnected`. */
  unplug(): void {
    this.isOpen = false;
    const err = Object.assign(new Error("device disconnected"), { disconnected: true });
    this.emit("error", err);
    this.emit("close", err);
  }
}
