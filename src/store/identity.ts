/**
 * The store's identity file, kept beside the database (`piled.db` → `piled.id`): the store's
 * random identity, the key of the ledger rows' MACs, and the high-water marks of what the store
 * has lived (ledger rows, time floor, latched faults). A database that lost its past — missing,
 * emptied, replaced, rolled back — is told apart from a new store by this file.
 *
 * The file is two fixed slots of SLOT bytes, each the identity with a sequence number and the
 * SHA-256 of its text; the newest slot that checks is the identity. It is made with temp file +
 * fsync + rename + directory fsync; a change of the marks then overwrites the OLDER slot in place
 * and fdatasyncs (no new inode, no rename, no directory sync: one sync where there were three).
 * A write torn by a power cut fails its slot's check and leaves the other: the marks one change
 * behind, as after a crash just before the write. A file of the first format (one JSON line) is
 * read as it is and rewritten in two slots at its next change. The key never reaches the
 * database, a log or any output.
 */
import { createHash, createHmac, randomBytes } from "node:crypto";
import {
  closeSync,
  fdatasyncSync,
  fsyncSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  unlinkSync,
  writeSync,
} from "node:fs";
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
  if ((r["v"] !== 1 && r["v"] !== 2) || typeof r["storeId"] !== "string" || !HEX32.test(r["storeId"]))
    return undefined;
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

export function encodeIdentity(id: Identity, seq?: number): string {
  return `${JSON.stringify({
    v: seq === undefined ? 1 : 2,
    ...(seq === undefined ? {} : { seq }),
    storeId: id.storeId.toString("hex"),
    key: id.key.toString("hex"),
    marks: { ledgerRows: id.marks.ledgerRows, floor: id.marks.floor.toString(), latched: id.marks.latched },
  })}\n`;
}

/** Bytes of one slot: the identity's text padded with spaces, its SHA-256 in hex, a newline. */
export const SLOT = 512;
const BODY = SLOT - 65;
const sha = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

function encodeSlot(id: Identity, seq: number): Buffer {
  const body = Buffer.alloc(BODY, " ");
  const text = encodeIdentity(id, seq).trimEnd();
  if (Buffer.byteLength(text) > BODY) throw new StoreError("INVALID", "identity does not fit its slot");
  body.write(text);
  return Buffer.concat([body, Buffer.from(`${sha(body)}\n`)]);
}

/** One slot's identity and sequence number; undefined when it does not check. */
function decodeSlot(b: Buffer): { id: Identity; seq: number } | undefined {
  if (b.length !== SLOT) return undefined;
  const body = b.subarray(0, BODY);
  if (b.subarray(BODY).toString("latin1") !== `${sha(body)}\n`) return undefined;
  const text = body.toString("utf8");
  const id = decodeIdentity(text);
  if (id === undefined) return undefined;
  const seq = (JSON.parse(text) as { seq?: unknown }).seq;
  if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 0) return undefined;
  return { id, seq };
}

/** The newest slot that checks, of a file in two slots; undefined when it is not one. */
function decodeSlots(b: Buffer): { id: Identity; seq: number; older: number } | undefined {
  if (b.length !== 2 * SLOT) return undefined;
  const a = decodeSlot(b.subarray(0, SLOT));
  const c = decodeSlot(b.subarray(SLOT));
  if (a && c && !a.id.storeId.equals(c.id.storeId)) return undefined;
  if (a && (!c || a.seq >= c.seq)) return { ...a, older: 1 };
  if (c) return { ...c, older: 0 };
  return undefined;
}

/** The identity of a file's content, in either format; undefined when it is neither. */
function decodeFile(b: Buffer): Identity | undefined {
  return decodeSlots(b)?.id ?? decodeIdentity(b.toString("utf8"));
}

/** Reads the identity file: undefined when absent; CORRUPT when unreadable as one; IO otherwise. */
export function readIdentity(path: string): Identity | undefined {
  let text: Buffer;
  try {
    text = readFileSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new StoreError(
      "IO",
      `the store identity file cannot be read (${(e as NodeJS.ErrnoException).code})`,
    );
  }
  const id = decodeFile(text);
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
      writeSync(fd, Buffer.concat([encodeSlot(id, 1), encodeSlot(id, 0)]));
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

/** Per identity file: its bytes as this process last wrote them, and what they decode to. */
const lastSeen = new Map<string, { bytes: Buffer; slots: { id: Identity; seq: number; older: number } }>();

/**
 * A change of the marks: the older slot overwritten in place, then fdatasync. A file not in two
 * slots (the first format, or one that does not check) is written whole instead.
 */
export function writeMarks(path: string, id: Identity): void {
  let fd: number | undefined;
  try {
    fd = openSync(path, "r+");
    const b = Buffer.alloc(2 * SLOT + 1);
    const n = readSync(fd, b, 0, b.length, 0);
    const file = b.subarray(0, n);
    const seen = lastSeen.get(path);
    // The file as this process last left it (another connection may have written since): decoded once
    const now = seen?.bytes.equals(file) ? seen.slots : decodeSlots(file);
    lastSeen.delete(path);
    if (now === undefined || !now.id.storeId.equals(id.storeId)) {
      closeSync(fd);
      fd = undefined;
      writeIdentity(path, id);
      return;
    }
    const slot = encodeSlot(id, now.seq + 1);
    writeSync(fd, slot, 0, SLOT, now.older * SLOT);
    fdatasyncSync(fd);
    slot.copy(file, now.older * SLOT);
    lastSeen.set(path, { bytes: file, slots: { id, seq: now.seq + 1, older: 1 - now.older } });
  } catch (e) {
    if (e instanceof StoreError) throw e;
    throw new StoreError(
      "IO",
      `the store identity file cannot be written (${(e as NodeJS.ErrnoException).code})`,
    );
  } finally {
    if (fd !== undefined) closeSync(fd);
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
