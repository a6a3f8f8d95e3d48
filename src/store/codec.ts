/** Value checks and encodings at the store's edge: bad input gets StoreError "INVALID" before SQL. */
import { StoreError } from "./errors.js";
import type { AuditActor, StoreCarrier } from "./types.js";

export const ID_LENGTH = 16;
export const U64_MAX = (1n << 64n) - 1n;
const U32_MAX = 0xffff_ffff;
/** Longest free text stored (detail, stop reason…), in UTF-16 units. */
export const MAX_TEXT = 4096;

function invalid(what: string): never {
  throw new StoreError("INVALID", `${what} is out of range or of the wrong type`);
}

/** A 16-byte id as a Buffer view (no copy) for binding. */
export function id16(v: unknown, what: string): Buffer {
  if (!(v instanceof Uint8Array) || v.byteLength !== ID_LENGTH) invalid(what);
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

/** 8-byte big-endian encoding of 0..2^64−1 (callers saturate or refuse beyond). */
export function u64be(v: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(v);
  return b;
}

export function u64(v: unknown, what: string): bigint {
  if (typeof v !== "bigint" || v < 0n || v > U64_MAX) invalid(what);
  return v;
}

/** A non-negative bigint, saturated at 2^64−1. */
export function u64sat(v: unknown, what: string): bigint {
  if (typeof v !== "bigint" || v < 0n) invalid(what);
  return v > U64_MAX ? U64_MAX : v;
}

/** Reads an 8-byte big-endian BLOB; anything else reads as 0n (a damaged row cannot raise anything). */
export function readU64be(v: unknown): bigint {
  return v instanceof Uint8Array && v.byteLength === 8
    ? Buffer.from(v.buffer, v.byteOffset, 8).readBigUInt64BE()
    : 0n;
}

export function u32(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > U32_MAX) invalid(what);
  return v;
}

/** Unix ms (or any count) as a non-negative safe integer. */
export function ms(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) invalid(what);
  return v;
}

export function count(v: unknown, what: string): number {
  return ms(v, what);
}

export function wh(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0) invalid(what);
  return v;
}

export function whOrNull(v: unknown, what: string): number | null {
  return v === null ? null : wh(v, what);
}

/** An identifier (deviceId, connectionId): 1..256 units, no NUL. Not scanned for secrets. */
export function ident(v: unknown, what: string): string {
  if (typeof v !== "string" || v.length < 1 || v.length > 256 || v.includes("\0")) invalid(what);
  return v;
}

export function carrier(v: unknown, what: string): StoreCarrier {
  if (v !== "vehicle" && v !== "mobile") invalid(what);
  return v;
}

export const ACTORS: readonly AuditActor[] = ["console", "control", "ble", "daemon"];

export function actor(v: unknown, what: string): AuditActor {
  if (typeof v !== "string" || !(ACTORS as readonly string[]).includes(v)) invalid(what);
  return v as AuditActor;
}

const SECRET_RUN = /[0-9a-fA-F]{64}/;

/**
 * Free text bound for the database: a string of at most MAX_TEXT units that carries no run of 64
 * hex digits (a 32-byte key or verification secret V in hex) — defence in depth behind the
 * callers' own care; refused with "SECRET".
 */
export function text(v: unknown, what: string, min = 0): string {
  if (typeof v !== "string" || v.length < min || v.length > MAX_TEXT) invalid(what);
  if (SECRET_RUN.test(v)) throw new StoreError("SECRET", `${what} looks like it carries a key or secret`);
  return v;
}

/** A copy as a plain Uint8Array (rows come back as Buffers). */
export function bytes(v: unknown): Uint8Array {
  return v instanceof Uint8Array ? new Uint8Array(v) : new Uint8Array(0);
}

/** A stored JSON list of strings; anything else reads as [] (decoding never throws). */
export function stringList(v: unknown): string[] {
  if (typeof v !== "string") return [];
  try {
    const x: unknown = JSON.parse(v);
    return Array.isArray(x) ? x.filter((s): s is string => typeof s === "string") : [];
  } catch {
    return [];
  }
}
