/**
 * Modbus RTU framing shared by the master link and the simulated slave: CRC-16/MODBUS and the
 * length of an FC03/FC04 reply. Pure; never throws on input.
 *
 * The CRC is our own eight lines rather than modbus-serial's `utils/crc16`: that file is an
 * untyped deep import outside the package's API, and the simulated slave must not depend on the
 * master's library anyway.
 */

export function crc16(data: Uint8Array, start = 0, end = data.length): number {
  let crc = 0xffff;
  for (let i = start; i < end; i++) {
    crc ^= data[i]!;
    for (let b = 0; b < 8; b++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc;
}

/** Appends the CRC (low byte first) to `body`. */
export function withCrc(body: Uint8Array): Buffer {
  const out = Buffer.alloc(body.length + 2);
  out.set(body, 0);
  out.writeUInt16LE(crc16(body), body.length);
  return out;
}

/** True when the last two bytes are the CRC of the rest. */
export function crcOk(frame: Uint8Array): boolean {
  if (frame.length < 4) return false;
  const want = frame[frame.length - 2]! | (frame[frame.length - 1]! << 8);
  return crc16(frame, 0, frame.length - 2) === want;
}

/** An FC03/FC04 read request frame. */
export function readRequest(unit: number, fc: number, address: number, count: number): Buffer {
  const b = Buffer.alloc(6);
  b.writeUInt8(unit, 0);
  b.writeUInt8(fc, 1);
  b.writeUInt16BE(address, 2);
  b.writeUInt16BE(count, 4);
  return withCrc(b);
}

/**
 * Length of the complete reply that begins at `buf[0]` for a request with this unit and function
 * code: a number once the header is in, `undefined` while more bytes are needed, `null` when
 * buf[0..1] cannot start such a reply.
 */
export function replyLength(buf: Uint8Array, unit: number, fc: number): number | undefined | null {
  if (buf.length < 1) return undefined;
  if (buf[0] !== unit) return null;
  if (buf.length < 2) return undefined;
  const f = buf[1]!;
  if (f === (fc | 0x80)) return 5;
  if (f !== fc) return null;
  if (fc === 3 || fc === 4 || fc === 1 || fc === 2) {
    if (buf.length < 3) return undefined;
    return 3 + buf[2]! + 2;
  }
  // FC05/06/15/16 echo 4 bytes after the header.
  return 8;
}

/**
 * Where a reply to a request (unit, function, and for FC03/FC04 the byte count asked for, or -1)
 * stands in `buf`: `undefined` while more bytes are needed, `null` when buf[0..1] cannot start a
 * reply of this unit and function, else the frame's length and whether it is a stray: our unit
 * and function but another byte count, i.e. the answer to some other request.
 */
export function matchReply(
  buf: Uint8Array,
  unit: number,
  fc: number,
  byteCount: number,
): { length: number; stray: boolean } | undefined | null {
  const len = replyLength(buf, unit, fc);
  if (len === undefined || len === null) return len;
  const isRead = fc === 3 || fc === 4;
  const stray = isRead && byteCount >= 0 && buf[1] === fc && buf[2] !== byteCount;
  return { length: len, stray };
}
