/**
 * The store's identity file, kept beside the database (`piled.db` → `piled.id`): the store's
 * random identity, the key of the ledger rows' MACs, and the high-water marks of what the store
 * has lived (ledger rows, time floor, latched faults). A database that lost its past — missing,
 * emptied, replaced, rolled back — is told apart from a new store by this file.
 *
 * Every write is temp file + fsync + rename + directory fsync: after a crash the file is the old
 * one or the new one, never a mix. The key never reaches the database, a log or any output.
 */
import { createHmac, randomBytes } from "node:crypto";
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { StoreError } from "./errors.js";

export interface Marks {
  /** Ledger rows the store held after its last change (a prune lowers it before it deletes). */
  readonly ledgerRows: number;
  /** The time floor's high-water mark, Unix ms. */
  readonly floor: bigint;
  /** Latched (uncleared) faults after the last change (a clear lowers it before it clears). */
  readonly latched: number;
}

export interface Identity {
  /** 16 random bytes, also kept in the database's store_identity row. */
  readonly storeId: Buffer;
  /** 32 random bytes: the HMAC-SHA256 key of the ledger rows. Never stored in the database. */
  readonly key: Buffer;
  readonly marks: Marks;
}

/** The identity file of a database path: the same name with `.id` in place of `.db`. */
export function identityPath(dbPath: string): string {
  const name = basename(dbPath);
  const stem = name.endsWith(".db") ? name.slice(0, -3) : name;
  return join(dirname(dbPath), `${stem}.id`);
}

export function newIdentity(marks: Marks): Identity {
  return { storeId: randomBytes(16), key: randomBytes(32), marks };
}

const HEX32 = /^[0-9a-f]{32}$/;
const HEX64 = /^[0-9a-f]{64}$/;
const DEC = /^(0|[1-9][0-9]{0,19})$/;
const count = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

/** Decodes the file's text; undefined when it is not a valid identity file. Never throws. */
export function decodeIdentity(text: string): Identity | undefined {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof o !== "object" || o === null) return undefined;
  const r = o as Record<string, unknown>;
  const m = r["marks"] as Record<string, unknown> | undefined;
  if (r["v"] !== 1 || typeof r["storeId"] !== "string" || !HEX32.test(r["storeId"])) return undefined;
  if (typeof r["key"] !== "string" || !HEX64.test(r["key"])) return undefined;
  if (typeof m !== "object" || m === null) return undefined;
  if (!count(m["ledgerRows"]) || !count(m["latched"])) return undefined;
  if (typeof m["floor"] !== "string" || !DEC.test(m["floor"])) return undefined;
  const floor = BigInt(m["floor"]);
  if (floor > 0xffffffffffffffffn) return undefined;
  return {
    storeId: Buffer.from(r["storeId"], "hex"),
    key: Buffer.from(r["key"], "hex"),
    marks: { ledgerRows: m["ledgerRows"], floor, latched: m["latched"] },
  };
}

export function encodeIdentity(id: Identity): string {
  return `${JSON.stringify({
    v: 1,
    storeId: id.storeId.toString("hex"),
    key: id.key.toString("hex"),
    marks: { ledgerRows: id.marks.ledgerRows, floor: id.marks.floor.toString(), latched: id.marks.latched },
  })}\n`;
}

/** Reads the identity file: undefined when absent; CORRUPT when unreadable as one; IO otherwise. */
export function readIdentity(path: string): Identity | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new StoreError(
      "IO",
      `the store identity file cannot be read (${(e as NodeJS.ErrnoException).code})`,
    );
  }
  const id = decodeIdentity(text);
  if (id === undefined) throw new StoreError("CORRUPT", "the store identity file is damaged");
  return id;
}

/** Writes the identity file durably: temp + fsync + rename + directory fsync. */
export function writeIdentity(path: string, id: Identity): void {
  // A name of its own: two connections of one store (e.g. a writer thread) never share a temp file.
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    const fd = openSync(tmp, "w", 0o600);
    try {
      writeSync(fd, encodeIdentity(id));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
    const dfd = openSync(dirname(path), "r");
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      // already gone or never made
    }
    throw new StoreError(
      "IO",
      `the store identity file cannot be written (${(e as NodeJS.ErrnoException).code})`,
    );
  }
}

export interface LedgerMacFields {
  codeId: Uint8Array;
  keyId: number;
  issuedAt: Uint8Array;
  expiresAt: Uint8Array;
  carrier: string | null;
  deviceId: string | null;
  recordedAt: number;
}

const field = (s: string | null): Buffer => {
  if (s === null) return Buffer.from([0xff, 0xff, 0xff, 0xff]);
  const b = Buffer.from(s, "utf8");
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
};

/** HMAC-SHA256 of one ledger row's fields, each fixed-size or length-prefixed. */
export function ledgerMac(key: Buffer, r: LedgerMacFields): Buffer {
  const fixed = Buffer.alloc(4 + 8);
  fixed.writeUInt32BE(r.keyId >>> 0, 0);
  fixed.writeBigUInt64BE(BigInt(Math.max(0, Math.trunc(r.recordedAt))), 4);
  return createHmac("sha256", key)
    .update("piled ledger row v1\0")
    .update(r.codeId)
    .update(r.issuedAt)
    .update(r.expiresAt)
    .update(fixed)
    .update(field(r.carrier))
    .update(field(r.deviceId))
    .digest();
}
