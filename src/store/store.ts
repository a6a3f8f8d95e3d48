/**
 * The durable store of one pile: replay ledger, time floor, sessions, latched faults and the audit
 * log, in one SQLite file (better-sqlite3: synchronous calls, WAL journal, synchronous=FULL so
 * every committed write is on disk when the call returns).
 *
 * Opening never alters a file it does not recognise: the header marker, schema version, the full
 * schema (every table, index, trigger and view with its SQL) and `PRAGMA integrity_check` are all
 * read before the first write (the switch to WAL), and a damaged or foreign file is refused as it
 * is — never replaced, repaired or deleted.
 *
 * The store knows it has lived: its identity file beside the database (identity.ts) holds its
 * random identity, the ledger rows' MAC key and high-water marks. A database that lost its past
 * is refused "LOST_PAST"; a ledger row whose MAC fails is "CORRUPT". Only `recoverStore`, a
 * technician's explicit act, starts again — with the time floor raised so nothing old replays.
 */
import { closeSync, fsyncSync, openSync, renameSync, statSync } from "node:fs";
import { basename, dirname } from "node:path";
import Database from "better-sqlite3";
import { makeAudit } from "./audit.js";
import { count, ms, text, u64 } from "./codec.js";
import { makeCtx } from "./context.js";
import { StoreError, toStoreError } from "./errors.js";
import { makeFaults } from "./faults.js";
import { bind, type Guard, lived } from "./guard.js";
import { type Identity, identityPath, readIdentity } from "./identity.js";
import { ledgerParts, makeFloor, makeLedger } from "./ledger.js";
import type { Row } from "./rows.js";
import {
  APPLICATION_ID,
  expectedSchema,
  expectedTables,
  MIGRATIONS,
  type Migration,
  schemaObjects,
} from "./schema.js";
import { makeSessions } from "./sessions.js";
import type { SessionRecordHook, Store, StoreOptions } from "./types.js";

type Db = Database.Database;

const DEFAULT_BUSY_TIMEOUT_MS = 5000;
/** Audit rows kept by default (about 1-2 MB): the oldest go as new ones come. */
export const DEFAULT_AUDIT_MAX_ROWS = 10_000;
/** Bound on the WAL file left after a checkpoint. */
const JOURNAL_SIZE_LIMIT = 4 * 1024 * 1024;
/**
 * Page cache of each connection, KiB (SQLite's default is 2 MiB). The daemon holds two (the
 * control loop's and the write worker's) and the file grows with every session, so the default
 * filled 4 MiB over a pile's life; what a record or a ledger lookup touches is a few pages, and a
 * page out of the cache is read again from the kernel's.
 */
export const CACHE_KIB = 512;

/**
 * Opens (creating if absent or empty) the store at `path`. Throws StoreError: "CORRUPT",
 * "FOREIGN", "NEWER_SCHEMA", "OLD_SCHEMA" (read-only and not current), "IO", "LOCKED", "INVALID".
 * `":memory:"` gives a private in-memory store (no WAL; for tests of other layers).
 */
export function openStore(path: string, opts: StoreOptions = {}): Store {
  return openStoreWith(path, opts, MIGRATIONS);
}

export interface RecoverOptions extends StoreOptions {
  /** The time floor of the new store, Unix ms; default the store clock's now. Never below now. */
  floorMs?: bigint;
  /** Why, for the audit log (free text, no secrets). */
  reason?: string;
}

export interface Recovered {
  readonly store: Store;
  /** Where the damaged files were moved (kept, never deleted). */
  readonly keptAs: string[];
  readonly floor: bigint;
}

/**
 * The technician's way out of a refused store: the damaged database, its journal and identity
 * file are moved aside (kept as `<name>.damaged-<ms>`), a new store is created, its time floor
 * raised to now (or `floorMs` if later) so no code issued before can be accepted again, and the
 * act is written to the new store's audit log.
 */
export function recoverStore(path: string, opts: RecoverOptions = {}): Recovered {
  if (typeof path !== "string" || path.length === 0 || path.includes("\0") || path === ":memory:") {
    throw new StoreError("INVALID", "store path is empty or not a file");
  }
  if (opts.readonly === true) throw new StoreError("INVALID", "a recovery writes");
  const clock = opts.clock ?? Date.now;
  const at = ms(clock(), "the store clock's time");
  const floor = opts.floorMs === undefined ? BigInt(at) : u64(opts.floorMs, "floorMs");
  const reason = opts.reason === undefined ? null : text(opts.reason, "reason");
  const suffix = `.damaged-${at}`;
  const keptAs: string[] = [];
  for (const f of [path, `${path}-wal`, `${path}-shm`, identityPath(path)]) {
    try {
      statSync(f);
    } catch {
      continue;
    }
    try {
      renameSync(f, f + suffix);
    } catch (e) {
      throw new StoreError("IO", `cannot move ${basename(f)} aside (${(e as NodeJS.ErrnoException).code})`);
    }
    keptAs.push(basename(f) + suffix);
  }
  const store = openStore(path, opts);
  try {
    const top = floor > BigInt(at) ? floor : BigInt(at);
    store.floor.raise(top);
    store.audit.append({
      at,
      actor: "console",
      action: "store.recover",
      outcome: "ok",
      detail: `new store, time floor ${top}; kept ${keptAs.join(", ") || "nothing"}${reason ? `; ${reason}` : ""}`,
    });
    return { store, keptAs, floor: top };
  } catch (e) {
    store.close();
    throw e;
  }
}

/** openStore over a given migration list (the list's length is the current version). */
export function openStoreWith(path: string, opts: StoreOptions, migrations: readonly Migration[]): Store {
  if (typeof path !== "string" || path.length === 0 || path.includes("\0")) {
    throw new StoreError("INVALID", "store path is empty or not a string");
  }
  const readonly = opts.readonly === true;
  const clock = opts.clock ?? Date.now;
  const busy =
    opts.busyTimeoutMs === undefined ? DEFAULT_BUSY_TIMEOUT_MS : ms(opts.busyTimeoutMs, "busyTimeoutMs");
  const current = migrations.length;
  const guarded = path !== ":memory:" && expectedTables(current, migrations).includes("store_identity");
  const idPath = guarded ? identityPath(path) : undefined;
  let ident: Identity | undefined;
  if (idPath !== undefined) {
    try {
      ident = readIdentity(idPath);
    } catch (e) {
      // pilectl may read the database beside the daemon without the right to read the key.
      if (!(readonly && e instanceof StoreError && e.code === "IO")) throw e;
    }
    if (ident !== undefined && lived(ident.marks) && fileSize(path) === 0) {
      throw new StoreError("LOST_PAST", "the database is missing or empty but the store has lived");
    }
  }
  const auditMaxRows =
    opts.auditMaxRows === undefined ? DEFAULT_AUDIT_MAX_ROWS : count(opts.auditMaxRows, "auditMaxRows");
  if (!readonly && path !== ":memory:") syncLeftovers(path);
  let db: Db;
  try {
    db = new Database(path, { readonly, fileMustExist: readonly, timeout: busy });
  } catch (e) {
    throw toStoreError(e, "open");
  }
  try {
    const found = inspect(db, migrations);
    if (found === 0 && ident !== undefined && lived(ident.marks)) {
      throw new StoreError("LOST_PAST", "the database is new but the store has lived");
    }
    if (!readonly && path !== ":memory:") {
      const mode = db.pragma("journal_mode = WAL", { simple: true });
      if (mode !== "wal")
        throw new StoreError("IO", `the file system refuses the WAL journal (got ${String(mode)})`);
      db.pragma(`journal_size_limit = ${JOURNAL_SIZE_LIMIT}`);
    }
    db.pragma("synchronous = FULL");
    db.pragma("foreign_keys = ON");
    db.pragma(`cache_size = -${CACHE_KIB}`);
    if (found < current) {
      if (readonly)
        throw new StoreError("OLD_SCHEMA", `schema version ${found} needs a migration to ${current}`);
      migrateOnOpen(db, found, current, migrations);
    }
    const guard = idPath === undefined ? undefined : bind(db, idPath, ident, readonly, found);
    return build(db, path, readonly, current, clock, migrations, guard, auditMaxRows, opts.onSessionRecord);
  } catch (e) {
    db.close();
    throw toStoreError(e, "open");
  }
}

/**
 * Makes durable what a process killed between its write and its fsync left in the page cache
 * (the database and its WAL, and their folder), before anything is read: what this store reads,
 * reports and builds on (a session's end, the high-water marks) is then on the disk, and a power
 * cut later cannot take back what was already shown.
 */
function syncLeftovers(path: string): void {
  const synced = [path, `${path}-wal`].map(fsyncIfThere);
  if (synced.some(Boolean)) fsyncIfThere(dirname(path));
}

/** fsync of the file or folder at `path`; false when there is none. */
function fsyncIfThere(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw toStoreError(e, "open");
  }
  try {
    fsyncSync(fd);
    return true;
  } catch (e) {
    throw toStoreError(e, "open");
  } finally {
    closeSync(fd);
  }
}

/** Reads the file's marker, version and tables; returns its schema version (0 = empty). */
function inspect(db: Db, migrations: readonly Migration[]): number {
  const appId = db.pragma("application_id", { simple: true });
  const version = db.pragma("user_version", { simple: true });
  const objects = db.prepare("SELECT count(*) FROM sqlite_schema").pluck().get();
  if (appId === 0 && version === 0 && objects === 0) return 0;
  if (appId !== APPLICATION_ID || typeof version !== "number" || version < 1) {
    throw new StoreError("FOREIGN", "not a piled store (no piled application_id / schema version)");
  }
  if (version > migrations.length) {
    throw new StoreError("NEWER_SCHEMA", `schema version ${version} is newer than ${migrations.length}`);
  }
  const check = db.pragma("integrity_check") as Row[];
  if (check.length !== 1 || check[0]?.["integrity_check"] !== "ok") {
    throw new StoreError("CORRUPT", "integrity_check found damage");
  }
  const key = (o: { type: string; name: string }) => `${o.type}\0${o.name}`;
  const have = schemaObjects(db);
  const want = expectedSchema(version, migrations);
  const wantBy = new Map(want.map((o) => [key(o), o]));
  const haveBy = new Map(have.map((o) => [key(o), o]));
  if (have.some((o) => !wantBy.has(key(o))))
    throw new StoreError("FOREIGN", "the file holds tables, indexes, triggers or views piled does not know");
  for (const w of want) {
    const h = haveBy.get(key(w));
    if (h === undefined) throw new StoreError("CORRUPT", "objects of the schema are missing");
    if (h.sql !== w.sql || h.tblName !== w.tblName)
      throw new StoreError("FOREIGN", "an object of the schema differs from what piled creates");
  }
  return version;
}

/** The size of the file at `path`; 0 when it is absent. */
function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** Migrates, re-checking the version under the write lock (another process may have opened it). */
function migrateOnOpen(db: Db, from: number, to: number, migrations: readonly Migration[]): void {
  db.transaction(() => {
    const now = db.pragma("user_version", { simple: true });
    if (now !== from)
      throw new StoreError("LOCKED", "the store was migrated by another process while opening");
    if (from === 0) db.pragma(`application_id = ${APPLICATION_ID}`);
    for (const m of migrations.slice(from, to)) m.up(db);
    db.pragma(`user_version = ${to}`);
  }).immediate();
}

/** Composes the store's rooms over the open database. */
function build(
  db: Db,
  path: string,
  readonly: boolean,
  version: number,
  clock: () => number,
  migrations: readonly Migration[],
  guard?: Guard,
  auditMaxRows = DEFAULT_AUDIT_MAX_ROWS,
  onSessionRecord?: SessionRecordHook,
): Store {
  const c = makeCtx(db, version, migrations, clock, guard);
  const led = ledgerParts(c);
  return {
    path,
    readonly,
    schemaVersion: version,
    ledger: makeLedger(c, led),
    floor: makeFloor(c, led),
    sessions: makeSessions(c, led, onSessionRecord),
    faults: makeFaults(c),
    audit: makeAudit(c, auditMaxRows),
    close: () => {
      if (db.open) db.close();
    },
  };
}
