/**
 * The pilot bridge's frame codec (firmware-bridge/PROTOCOL.md), the same rules as the firmware's
 * `frame.c`: `$SS body*CCCC\n`, SS the sender's sequence number (2 hex digits), CCCC the
 * CRC-16/CCITT-FALSE of `SS body` (4 upper-case hex digits). Lines come already split at `\n`
 * (by `@serialport/parser-delimiter`); a `$` inside a line starts a new frame and the part
 * before it is a split frame, dropped and counted. A CRC this small has no library worth a
 * dependency (the ones on npm are table-driven ports of the same ten lines).
 */

export const FRAME_BODY_MAX = 72;

export function crc16(text: string): number {
  let crc = 0xffff;
  for (let i = 0; i < text.length; i++) {
    crc ^= (text.charCodeAt(i) & 0xff) << 8;
    for (let b = 0; b < 8; b++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

const hex = (v: number, n: number): string => v.toString(16).toUpperCase().padStart(n, "0");

export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FrameError";
  }
}

/** The whole frame, `\n` included. Throws FrameError on a body the other side would refuse. */
export function encodeFrame(seq: number, body: string): string {
  if (!Number.isInteger(seq) || seq < 0 || seq > 255) throw new FrameError(`sequence out of range: ${seq}`);
  if (body.length === 0 || body.length > FRAME_BODY_MAX) throw new FrameError(`body length ${body.length}`);
  if (!/^[\x20-\x7e]+$/.test(body) || /[$*]/.test(body))
    throw new FrameError("body has a byte a frame cannot carry");
  const inner = `${hex(seq, 2)} ${body}`;
  return `$${inner}*${hex(crc16(inner), 4)}\n`;
}

export type Decoded = { ok: true; seq: number; body: string } | { ok: false; reason: string; text: string };

const FRAME_RE = /^([0-9A-F]{2}) ([\x20-\x7e]+)\*([0-9A-F]{4})$/;

/** Checks one frame's text (after its `$`, without the line end). */
export function checkFrame(text: string): Decoded {
  const m = FRAME_RE.exec(text);
  if (!m) return { ok: false, reason: "malformed", text };
  const inner = text.slice(0, -5);
  if (crc16(inner) !== Number.parseInt(m[3] as string, 16)) return { ok: false, reason: "crc", text };
  return { ok: true, seq: Number.parseInt(m[1] as string, 16), body: m[2] as string };
}

export interface DecoderCounters {
  ok: number;
  bad: number;
  /** Frames missing by the sequence numbers (lost, not corrupted). */
  gap: number;
}

/** Decodes delimiter-split lines, counting good, bad and missing frames. */
export class LineDecoder {
  readonly counters: DecoderCounters = { ok: 0, bad: 0, gap: 0 };
  private lastSeq: number | undefined;

  /** One line (without `\n`); returns every frame or fragment found in it, in order. */
  decode(line: string | Uint8Array): Decoded[] {
    const text = (typeof line === "string" ? line : Buffer.from(line).toString("latin1")).replace(/\r/g, "");
    const parts = text.split("$");
    const out: Decoded[] = [];
    const head = parts.shift() as string;
    if (head.length > 0) out.push(this.bad({ ok: false, reason: "outside a frame", text: head }));
    parts.forEach((p, i) => {
      if (i < parts.length - 1) out.push(this.bad({ ok: false, reason: "split", text: p }));
      else out.push(this.accept(checkFrame(p)));
    });
    return out;
  }

  /** The sender restarted (its sequence begins again): no gap is counted across it. */
  restart(): void {
    this.lastSeq = undefined;
  }

  private bad(d: Decoded): Decoded {
    this.counters.bad++;
    return d;
  }

  private accept(d: Decoded): Decoded {
    if (!d.ok) return this.bad(d);
    this.counters.ok++;
    if (d.seq === 0 && d.body.startsWith("HELLO ")) this.lastSeq = undefined; /* a reset */
    if (this.lastSeq !== undefined) this.counters.gap += (d.seq - this.lastSeq - 1) & 0xff;
    this.lastSeq = d.seq;
    return d;
  }
}
