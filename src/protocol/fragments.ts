/**
 * Fragmentation of messages over Control writes and Event notifications (PROTOCOL.md §3).
 * Header byte: bit 7 = final fragment, bits 0..6 = index from 0. Body: 1 to MTU−4 bytes.
 */
import { MAX_MESSAGE_LENGTH } from "./messages.js";

export const FINAL = 0x80;
export const MIN_MTU = 23;
export const MAX_FRAGMENTS = 128;
/** A partial message whose first fragment is older than this is discarded silently. */
export const PARTIAL_TIMEOUT_MS = 2000;

export function maxFragmentBody(mtu: number): number {
  return Math.max(MIN_MTU, mtu) - 4;
}

/** Splits one message into fragments for the given ATT MTU. */
export function fragment(message: Uint8Array, mtu: number): Uint8Array[] {
  if (message.length === 0 || message.length > MAX_MESSAGE_LENGTH) {
    throw new RangeError(`message length ${message.length} outside 1..${MAX_MESSAGE_LENGTH}`);
  }
  const body = maxFragmentBody(mtu);
  const out: Uint8Array[] = [];
  for (let off = 0, i = 0; off < message.length; off += body, i++) {
    const chunk = message.subarray(off, off + body);
    const f = new Uint8Array(chunk.length + 1);
    f[0] = (off + body >= message.length ? FINAL : 0) | i;
    f.set(chunk, 1);
    out.push(f);
  }
  return out;
}

/** What one fragment did to the reassembler. */
export type PushOutcome =
  | { kind: "partial" }
  | { kind: "message"; message: Uint8Array }
  /** Answer ERROR BAD_MESSAGE; `why` is for counters and logs. */
  | { kind: "error"; why: FragmentFault }
  /** Dropped silently (after an error, until the next index-0 fragment). */
  | { kind: "dropped" };

export type FragmentFault = "EMPTY" | "BAD_INDEX" | "OVERSIZE" | "BODY_LENGTH";

/**
 * Per-connection reassembly. Pure: the caller passes the time of each fragment. Never throws.
 */
export class Reassembler {
  #parts: Uint8Array[] = [];
  #length = 0;
  #next = 0;
  #startedAt = 0;
  #dropping = false;
  /** Silently expired partial messages, for counters. */
  expired = 0;

  constructor(private mtu: number = MIN_MTU) {}

  setMtu(mtu: number): void {
    this.mtu = mtu;
  }

  /** Is a message being assembled right now? */
  get busy(): boolean {
    return this.#next > 0;
  }

  reset(): void {
    this.#parts = [];
    this.#length = 0;
    this.#next = 0;
    this.#dropping = false;
  }

  /**
   * Feeds one fragment. Usually one outcome; two when an index-0 fragment interrupts a partial
   * message (the partial is answered with an error, then the new fragment counts on its own).
   */
  push(frag: Uint8Array, nowMs: number): PushOutcome[] {
    if (this.#next > 0 && nowMs - this.#startedAt > PARTIAL_TIMEOUT_MS) {
      this.#clear();
      this.expired++;
    }
    if (frag.length === 0) return [this.#fail("EMPTY")];
    const header = frag[0]!;
    const index = header & 0x7f;
    const final = (header & FINAL) !== 0;
    if (this.#dropping) {
      if (index !== 0) return [{ kind: "dropped" }];
      this.#dropping = false;
    }
    if (index !== this.#next) {
      this.#clear();
      if (index !== 0) return [this.#fail("BAD_INDEX")];
      // index 0 while a message was partial: the partial is discarded and answered, and this
      // fragment starts a new message.
      const started = this.#accept(frag, final, nowMs);
      return started.kind === "error" ? [started] : [{ kind: "error", why: "BAD_INDEX" }, started];
    }
    return [this.#accept(frag, final, nowMs)];
  }

  #accept(frag: Uint8Array, final: boolean, nowMs: number): PushOutcome {
    const body = frag.subarray(1);
    if (body.length < 1 || body.length > maxFragmentBody(this.mtu)) return this.#fail("BODY_LENGTH");
    if (this.#length + body.length > MAX_MESSAGE_LENGTH) return this.#fail("OVERSIZE");
    if (this.#next === 0) this.#startedAt = nowMs;
    this.#parts.push(body.slice());
    this.#length += body.length;
    this.#next++;
    if (!final) {
      if (this.#next >= MAX_FRAGMENTS) return this.#fail("OVERSIZE");
      return { kind: "partial" };
    }
    const message = new Uint8Array(this.#length);
    let off = 0;
    for (const p of this.#parts) {
      message.set(p, off);
      off += p.length;
    }
    this.#clear();
    return { kind: "message", message };
  }

  #clear(): void {
    this.#parts = [];
    this.#length = 0;
    this.#next = 0;
  }

  #fail(why: FragmentFault): PushOutcome {
    this.#clear();
    this.#dropping = true;
    return { kind: "error", why };
  }
}
