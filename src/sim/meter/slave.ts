/**
 * A minimal Modbus RTU slave: request framing (with resynchronisation on noise), CRC check, and
 * FC03/FC04 replies from a register source. Pure; never throws on input.
 *
 * Why our own rather than modbus-serial's ServerSerial: ServerSerial overwrites the CRC of every
 * request with a freshly computed one (so it answers corrupted requests), frames by a 30 ms
 * silence timer (30 ms added to every reply, which would swamp the poll-cycle figures), logs with
 * console.log, and offers no way to corrupt, delay or withhold a reply, which is what a simulated
 * meter is for.
 */
import { crcOk, withCrc } from "../../hw/meter/rtu.js";

/** Registers, or a Modbus exception code (2 = illegal data address). */
export type RegisterAnswer = { ok: true; registers: number[] } | { ok: false; exception: number };

export type RegisterSource = (fc: 3 | 4, address: number, count: number) => RegisterAnswer;

export interface SlaveRequest {
  unit: number;
  fc: number;
  address: number;
  count: number;
  frame: Buffer;
}

const MAX_BUFFER = 512;

/** Cuts a byte stream into request frames. Bytes that cannot start a valid frame are skipped. */
export class RequestFramer {
  private buf: Buffer = Buffer.alloc(0);
  /** Bytes skipped while resynchronising (noise, corrupted requests). */
  discarded = 0;

  push(chunk: Uint8Array): SlaveRequest[] {
    this.buf = Buffer.concat([this.buf, chunk]);
    const out: SlaveRequest[] = [];
    for (;;) {
      if (this.buf.length < 8) break;
      const fc = this.buf[1]!;
      let len = 8;
      if (fc === 15 || fc === 16) len = 9 + this.buf[6]!;
      if (this.buf.length < len) {
        if (len > MAX_BUFFER) this.skip(1);
        else break;
        continue;
      }
      const frame = Buffer.from(this.buf.subarray(0, len));
      if (!crcOk(frame)) {
        this.skip(1);
        continue;
      }
      this.buf = this.buf.subarray(len);
      out.push({ unit: frame[0]!, fc, address: frame.readUInt16BE(2), count: frame.readUInt16BE(4), frame });
    }
    if (this.buf.length > MAX_BUFFER) this.skip(this.buf.length - MAX_BUFFER);
    return out;
  }

  private skip(n: number): void {
    this.buf = this.buf.subarray(n);
    this.discarded += n;
  }
}

export function exceptionReply(unit: number, fc: number, code: number): Buffer {
  return withCrc(Uint8Array.from([unit, (fc | 0x80) & 0xff, code]));
}

/** The reply to one request addressed to `unit`; null when the slave stays silent (not for us). */
export function answer(req: SlaveRequest, unit: number, source: RegisterSource): Buffer | null {
  if (req.unit !== unit) return null;
  if (req.fc !== 3 && req.fc !== 4) return exceptionReply(unit, req.fc, 1);
  if (req.count < 1 || req.count > 125) return exceptionReply(unit, req.fc, 3);
  const r = source(req.fc, req.address, req.count);
  if (!r.ok) return exceptionReply(unit, req.fc, r.exception);
  const body = Buffer.alloc(3 + 2 * req.count);
  body[0] = unit;
  body[1] = req.fc;
  body[2] = 2 * req.count;
  for (let i = 0; i < req.count; i++) body.writeUInt16BE((r.registers[i] ?? 0) & 0xffff, 3 + 2 * i);
  return withCrc(body);
}
