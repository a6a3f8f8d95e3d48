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
import { renameSync, statSync } from "node:fs";
import { basename } from "node:path";
import Database from "better-sqlite3";
import {
  actor,
  bytes,
  carrier,
  count,
  id16,
  ident,
  ms,
  readU64be,
  stringList,
  text,
  u32,
  u64,
  u64be,
  u64sat,
  wh,
  whOrNull,
} from "./codec.js";
import { StoreError, sqliteCode, toStoreError } from "./errors.js";
import {
  type Identity,
  identityPath,
  ledgerMac,
  type Marks,
  newIdentity,
  readIdentity,
  writeIdentity,
} from "./identity.js";
import {
  APPLICATION_ID,
  expectedSchema,
  expectedTables,
  MIGRATIONS,
  type Migration,
  schemaObjects,
} from "./schema.js";
import type {
  AuditActor,
  AuditLog,
  AuditRecord,
  FaultRecord,
  Faults,
  Ledger,
  LedgerEntry,
  LedgerRecord,
  SessionBegin,
  SessionChange,
  SessionFinish,
  SessionProgress,
  SessionRecord,
  SessionRecordHook,
  SessionStatus,
  Sessions,
  Store,
  StoreCarrier,
  StoreOptions,
  TimeFloor,
} from "./types.js";

type Db = Database.Database;
type Row = Record<string, unknown>;

const DEFAULT_BUSY_TIMEOUT_MS = 5000;
/** Audit rows kept by default (about 1-2 MB): the oldest go as new ones come. */
export const DEFAULT_AUDIT_MAX_ROWS = 10_000;
/** Bound on the WAL file left after a checkpoint. */
const JOURNAL_SIZE_LIMIT = 4 * 1024 * 1024;

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

const lived = (m: Marks): boolean => m.ledgerRows > 0 || m.floor > 0n || m.latched > 0;
const ZERO_MARKS: Marks = { ledgerRows: 0, floor: 0n, latched: 0 };

/** What the identity file needs while the store is open. */
interface Guard {
  readonly key: Buffer;
  /** Reads the marks from the database and writes them if they changed (after a growth). */
  refresh(): void;
  /** Writes lowered marks before a change that lowers them (prune, clear). */
  lower(m: Partial<Marks>): void;
}

function readMarks(db: Db): Marks {
  const rows = Number(db.prepare("SELECT count(*) FROM ledger").pluck().get());
  const floor = readU64be(db.prepare("SELECT ms FROM time_floor WHERE id = 1").pluck().get());
  const latched = Number(db.prepare("SELECT count(*) FROM faults WHERE cleared_at IS NULL").pluck().get());
  return { ledgerRows: rows, floor, latched };
}

function rowMac(key: Buffer, r: Row): Buffer {
  return ledgerMac(key, {
    codeId: bytes(r["code_id"]),
    keyId: num(r["key_id"]),
    issuedAt: bytes(r["issued_at"]),
    expiresAt: bytes(r["expires_at"]),
    carrier: strOrNull(r["carrier"]),
    deviceId: strOrNull(r["device_id"]),
    recordedAt: num(r["recorded_at"]),
  });
}

const macOk = (key: Buffer, r: Row): boolean => {
  const m = r["mac"];
  return m instanceof Uint8Array && m.length === 32 && rowMac(key, r).equals(Buffer.from(m));
};

/**
 * Binds the database to its identity file: checks the identity and the marks, verifies every
 * ledger row's MAC, and (first open, or a store older than the identity) creates the identity.
 * Undefined for a read-only open without a readable identity file.
 */
function bind(
  db: Db,
  idPath: string,
  found: Identity | undefined,
  readonly: boolean,
  version: number,
): Guard | undefined {
  const row = db.prepare("SELECT store_id FROM store_identity WHERE id = 1").pluck().get();
  let ident = found;
  if (ident !== undefined) {
    if (row === undefined) {
      if (lived(ident.marks) || version === 0)
        throw new StoreError("LOST_PAST", "the database does not carry the store's identity");
    } else if (!Buffer.from(row as Uint8Array).equals(ident.storeId)) {
      throw new StoreError("LOST_PAST", "the database is another store's");
    }
  } else if (row !== undefined) {
    if (readonly) return undefined;
    throw new StoreError("LOST_PAST", "the store's identity file is missing");
  }
  if (readonly && (ident === undefined || row === undefined)) return undefined;
  if (ident === undefined || row === undefined) {
    // First open (or an older store): the identity file with zero marks first, then the row and
    // the MACs, then the marks — a crash in between leaves a state this same path completes.
    const id = ident ?? newIdentity(ZERO_MARKS);
    if (ident === undefined) writeIdentity(idPath, id);
    db.transaction(() => {
      db.prepare("INSERT INTO store_identity (id, store_id) VALUES (1, ?)").run(id.storeId);
      const upd = db.prepare("UPDATE ledger SET mac = ? WHERE code_id = ?");
      for (const r of db.prepare("SELECT * FROM ledger").all() as Row[])
        upd.run(rowMac(id.key, r), r["code_id"]);
    }).immediate();
    ident = id;
  }
  const have = readMarks(db);
  const m = ident.marks;
  if (have.ledgerRows < m.ledgerRows || have.floor < m.floor || have.latched < m.latched) {
    throw new StoreError(
      "LOST_PAST",
      "the store holds less than it recorded (ledger, time floor or latched faults)",
    );
  }
  for (const r of db.prepare("SELECT * FROM ledger").iterate() as IterableIterator<Row>) {
    if (!macOk(ident.key, r)) throw new StoreError("CORRUPT", "a ledger row fails its check");
  }
  let marks = m;
  const key = ident.key;
  const storeId = ident.storeId;
  const put = (next: Marks) => {
    if (next.ledgerRows === marks.ledgerRows && next.floor === marks.floor && next.latched === marks.latched)
      return;
    writeIdentity(idPath, { storeId, key, marks: next });
    marks = next;
  };
  if (!readonly) put(have);
  return {
    key,
    refresh: () => {
      if (!readonly) put(readMarks(db));
    },
    lower: (l) => {
      if (!readonly) put({ ...marks, ...l });
    },
  };
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
  const op = <T>(what: string, f: () => T): T => {
    if (!db.open) throw new StoreError("CLOSED", `${what}: the store is closed`);
    try {
      return f();
    } catch (e) {
      throw toStoreError(e, what);
    }
  };
  const has = (table: string) => version >= 1 && expectedTables(version, migrations).includes(table);
  // Statements are prepared once; a store built over a test migration list may lack tables.
  const prep = (table: string, sql: string) => (has(table) ? db.prepare(sql) : undefined);
  const need = <S>(s: S | undefined, table: string): S => {
    if (s === undefined) throw new StoreError("IO", `this store has no ${table} table`);
    return s;
  };

  // --- ledger and floor ---
  const sIsUsed = prep("ledger", "SELECT 1 FROM ledger WHERE code_id = ?");
  const sLedgerRow = prep("ledger", "SELECT * FROM ledger WHERE code_id = ?");
  const sPruneCount = prep("ledger", "SELECT count(*) FROM ledger WHERE expires_at < ?")?.pluck();
  const sLedgerIns = prep(
    "ledger",
    `INSERT INTO ledger (code_id, key_id, issued_at, expires_at, carrier, device_id, recorded_at, mac)
     VALUES (@codeId, @keyId, @issuedAt, @expiresAt, @carrier, @deviceId, @recordedAt, @mac)`,
  );
  const sPrune = prep("ledger", "DELETE FROM ledger WHERE expires_at < ?");
  const sCount = prep("ledger", "SELECT count(*) FROM ledger")?.pluck();
  const sFloorGet = prep("time_floor", "SELECT ms FROM time_floor WHERE id = 1");
  const sFloorRaise = prep("time_floor", "UPDATE time_floor SET ms = @ms WHERE id = 1 AND ms < @ms");

  const now = (): number => ms(clock(), "the store clock's time");

  const ledgerRow = (e: LedgerRecord) => {
    if (typeof e !== "object" || e === null) throw new StoreError("INVALID", "ledger entry is not an object");
    const issuedAt = u64(e.issuedAt, "issuedAt");
    const expiresAt = u64sat(e.expiresAt, "expiresAt");
    if (expiresAt < issuedAt) throw new StoreError("INVALID", "expiresAt is before issuedAt");
    const fields = {
      codeId: id16(e.codeId, "codeId"),
      keyId: u32(e.keyId, "keyId"),
      issuedAt: u64be(issuedAt),
      expiresAt: u64be(expiresAt),
      carrier: e.carrier === undefined ? null : carrier(e.carrier, "carrier"),
      deviceId: e.deviceId === undefined ? null : ident(e.deviceId, "deviceId"),
      recordedAt: now(),
    };
    return { ...fields, mac: guard === undefined ? null : ledgerMac(guard.key, fields) };
  };
  /** The code's row, its MAC checked: a row that fails it is "CORRUPT", never an unused code. */
  const lookUp = (id: Uint8Array): Row | undefined => {
    const r = need(sLedgerRow, "ledger").get(id) as Row | undefined;
    if (r !== undefined && guard !== undefined && !macOk(guard.key, r))
      throw new StoreError("CORRUPT", "a ledger row fails its check");
    return r;
  };
  /** Inside a transaction: inserts the code and raises the floor to its issuedAt. */
  const insertLedger = (row: ReturnType<typeof ledgerRow>) => {
    try {
      need(sLedgerIns, "ledger").run(row);
    } catch (err) {
      if (sqliteCode(err) === "SQLITE_CONSTRAINT_PRIMARYKEY") {
        throw new StoreError("DUPLICATE", "codeId is already recorded");
      }
      throw err;
    }
    need(sFloorRaise, "time_floor").run({ ms: row.issuedAt });
  };

  const ledger: Ledger = {
    isUsed: (codeId) => {
      const id = id16(codeId, "codeId");
      return op("ledger.isUsed", () => lookUp(id) !== undefined);
    },
    record: (e: LedgerRecord) => {
      const row = ledgerRow(e);
      op("ledger.record", () => {
        db.transaction(() => insertLedger(row)).immediate();
        guard?.refresh();
      });
    },
    get: (codeId) => {
      const id = id16(codeId, "codeId");
      return op("ledger.get", () => {
        const r = lookUp(id);
        return r === undefined ? undefined : ledgerEntry(r);
      });
    },
    prune: (nowMs) => {
      const cut = u64be(u64sat(nowMs, "nowMs"));
      return op("ledger.prune", () => {
        const gone = Number(need(sPruneCount, "ledger").get(cut));
        if (gone === 0) return 0;
        guard?.lower({ ledgerRows: Number(need(sCount, "ledger").get()) - gone });
        return need(sPrune, "ledger").run(cut).changes;
      });
    },
    count: () => op("ledger.count", () => Number(need(sCount, "ledger").get())),
  };

  const floor: TimeFloor = {
    get: () =>
      op("floor.get", () => readU64be((need(sFloorGet, "time_floor").get() as Row | undefined)?.["ms"])),
    raise: (v) => {
      const b = u64be(u64(v, "floor"));
      op("floor.raise", () => {
        need(sFloorRaise, "time_floor").run({ ms: b });
        guard?.refresh();
      });
    },
  };

  // --- sessions ---
  const sSesGet = prep("sessions", "SELECT * FROM sessions WHERE session_id = ?");
  const sSesActive = prep("sessions", "SELECT * FROM sessions WHERE status = 'active' ORDER BY seq");
  const sSesIns = prep(
    "sessions",
    `INSERT INTO sessions (session_id, code_id, key_id, device_id, carrier, connection_id, status,
       started_at, meter_start_wh)
     VALUES (@sessionId, @codeId, @keyId, @deviceId, @carrier, @connectionId, 'active', @startedAt, @meterStartWh)`,
  );
  const sSesProgress = prep(
    "sessions",
    `UPDATE sessions SET energy_wh = @energyWh, last_meter_wh = @lastMeterWh, progress_at = @at,
       meter_start_wh = coalesce(meter_start_wh, @meterStartWh)
     WHERE session_id = @sessionId AND status = 'active'`,
  );
  const sSesFinish = prep(
    "sessions",
    `UPDATE sessions SET status = 'finished', energy_source = 'meter', stopped_at = @stoppedAt, meter_stop_wh = @meterStopWh,
       meter_start_wh = coalesce(meter_start_wh, @meterStartWh), energy_wh = @energyWh, stop_reason = @stopReason, faults = @faults, closed_at = @stoppedAt
     WHERE session_id = @sessionId AND status = 'active'`,
  );
  const sSesInterrupt = prep(
    "sessions",
    `UPDATE sessions SET status = 'interrupted', stop_reason = 'INTERRUPTED',
       stopped_at = coalesce(progress_at, started_at), meter_stop_wh = last_meter_wh, closed_at = @now,
       energy_source = 'unknown'
     WHERE status = 'active'`,
  );
  // Closed from the meter: no energy flows once the contactor is open, so the register read at
  // boot less the one at the start is the session's energy.
  const sSesInterruptMeter = prep(
    "sessions",
    `UPDATE sessions SET status = 'interrupted', stop_reason = 'INTERRUPTED',
       stopped_at = coalesce(progress_at, started_at), closed_at = @now, energy_source = 'meter',
       meter_stop_wh = @meterNow,
       energy_wh = CASE WHEN meter_start_wh IS NULL THEN 0 ELSE @meterNow - meter_start_wh END
     WHERE status = 'active' AND (meter_start_wh IS NULL OR meter_start_wh <= @meterNow)`,
  );
  const sSesList = prep(
    "sessions",
    `SELECT * FROM sessions WHERE @before IS NULL OR started_at < @before
     ORDER BY started_at DESC, seq DESC LIMIT @limit`,
  );

  const sessionRow = (s: SessionBegin) => {
    if (typeof s !== "object" || s === null) throw new StoreError("INVALID", "session is not an object");
    return {
      sessionId: id16(s.sessionId, "sessionId"),
      codeId: id16(s.codeId, "codeId"),
      keyId: u32(s.keyId, "keyId"),
      deviceId: ident(s.deviceId, "deviceId"),
      carrier: carrier(s.carrier, "carrier"),
      connectionId: s.connectionId === undefined ? null : ident(s.connectionId, "connectionId"),
      startedAt: ms(s.startedAt, "startedAt"),
      meterStartWh: whOrNull(s.meterStartWh, "meterStartWh"),
    };
  };
  /** Inside a transaction: the checks of begin(), then the insert. */
  const insertSession = (row: ReturnType<typeof sessionRow>) => {
    if (need(sIsUsed, "ledger").get(row.codeId) === undefined) {
      throw new StoreError("UNKNOWN_CODE", "the session's codeId is not in the ledger");
    }
    if (need(sSesActive, "sessions").get() !== undefined) {
      throw new StoreError("ACTIVE_SESSION", "another session is active");
    }
    if (need(sSesGet, "sessions").get(row.sessionId) !== undefined) {
      throw new StoreError("DUPLICATE", "sessionId is already recorded");
    }
    need(sSesIns, "sessions").run(row);
  };

  // --- session hook (OCPP outbox): called inside each session change's transaction ---
  const told = (change: SessionChange, sessionId: Uint8Array): void => {
    if (onSessionRecord === undefined) return;
    onSessionRecord(db, change, sessionRecord(need(sSesGet, "sessions").get(sessionId) as Row));
  };

  const sessions: Sessions = {
    beginWithCode: (code: LedgerRecord, s: SessionBegin) => {
      const entry = ledgerRow(code);
      const row = sessionRow(s);
      if (!Buffer.from(entry.codeId).equals(Buffer.from(row.codeId)))
        throw new StoreError("INVALID", "the session's codeId is not the code's");
      op("sessions.beginWithCode", () => {
        db.transaction(() => {
          insertLedger(entry);
          insertSession(row);
          told("begin", row.sessionId);
        }).immediate();
        guard?.refresh();
      });
    },
    begin: (s: SessionBegin) => {
      const row = sessionRow(s);
      op("sessions.begin", () => {
        db.transaction(() => {
          insertSession(row);
          told("begin", row.sessionId);
        }).immediate();
      });
    },
    progress: (sessionId, p: SessionProgress) => {
      if (typeof p !== "object" || p === null) throw new StoreError("INVALID", "progress is not an object");
      const row = {
        sessionId: id16(sessionId, "sessionId"),
        energyWh: wh(p.energyWh, "energyWh"),
        lastMeterWh: whOrNull(p.lastMeterWh, "lastMeterWh"),
        meterStartWh: p.meterStartWh === undefined ? null : whOrNull(p.meterStartWh, "meterStartWh"),
        at: ms(p.at, "at"),
      };
      op("sessions.progress", () => {
        db.transaction(() => {
          if (need(sSesProgress, "sessions").run(row).changes === 0) {
            throw new StoreError("NOT_ACTIVE", "no active session with this sessionId");
          }
          told("progress", row.sessionId);
        }).immediate();
      });
    },
    finish: (sessionId, f: SessionFinish) => {
      if (typeof f !== "object" || f === null) throw new StoreError("INVALID", "finish is not an object");
      const faults = f.faults ?? [];
      if (!Array.isArray(faults) || faults.length > 64)
        throw new StoreError("INVALID", "faults is not a list");
      const row = {
        sessionId: id16(sessionId, "sessionId"),
        stoppedAt: ms(f.stoppedAt, "stoppedAt"),
        meterStopWh: whOrNull(f.meterStopWh, "meterStopWh"),
        meterStartWh: f.meterStartWh === undefined ? null : whOrNull(f.meterStartWh, "meterStartWh"),
        energyWh: wh(f.energyWh, "energyWh"),
        stopReason: text(f.stopReason, "stopReason", 1),
        faults: JSON.stringify(faults.map((x) => text(x, "fault", 1))),
      };
      op("sessions.finish", () => {
        const upd = need(sSesFinish, "sessions");
        db.transaction(() => {
          if (upd.run(row).changes === 1) return told("finish", row.sessionId);
          if (need(sSesGet, "sessions").get(row.sessionId) === undefined) {
            throw new StoreError("NOT_FOUND", "no session with this sessionId");
          }
          throw new StoreError("NOT_ACTIVE", "the session is already closed");
        }).immediate();
      });
    },
    markInterrupted: (nowMs, meterNowWh) => {
      const at = ms(nowMs, "nowMs");
      const meterNow = meterNowWh === undefined ? null : whOrNull(meterNowWh, "meterNowWh");
      return op("sessions.markInterrupted", () =>
        db
          .transaction(() => {
            const ids = (need(sSesActive, "sessions").all() as Row[]).map((r) => r["session_id"]);
            if (meterNow !== null) need(sSesInterruptMeter, "sessions").run({ now: at, meterNow });
            need(sSesInterrupt, "sessions").run({ now: at });
            for (const id of ids) told("interrupted", id as Uint8Array);
            return ids.map((id) => sessionRecord(need(sSesGet, "sessions").get(id) as Row));
          })
          .immediate(),
      );
    },
    active: () =>
      op("sessions.active", () => {
        const r = need(sSesActive, "sessions").get() as Row | undefined;
        return r === undefined ? undefined : sessionRecord(r);
      }),
    list: (q) => {
      if (typeof q !== "object" || q === null) throw new StoreError("INVALID", "query is not an object");
      const args = {
        limit: count(q.limit, "limit"),
        before: q.before === undefined ? null : ms(q.before, "before"),
      };
      return op("sessions.list", () => (need(sSesList, "sessions").all(args) as Row[]).map(sessionRecord));
    },
    get: (sessionId) => {
      const id = id16(sessionId, "sessionId");
      return op("sessions.get", () => {
        const r = need(sSesGet, "sessions").get(id) as Row | undefined;
        return r === undefined ? undefined : sessionRecord(r);
      });
    },
  };

  // --- faults ---
  const sFaultLatched = prep("faults", "SELECT id FROM faults WHERE code = ? AND cleared_at IS NULL");
  const sFaultIns = prep(
    "faults",
    "INSERT INTO faults (code, detail, raised_at, last_at) VALUES (@code, @detail, @at, @at)",
  );
  const sFaultBump = prep(
    "faults",
    "UPDATE faults SET count = count + 1, last_at = max(last_at, @at) WHERE id = @id",
  );
  const sFaultClear = prep(
    "faults",
    "UPDATE faults SET cleared_at = @at, cleared_by = @by WHERE cleared_at IS NULL AND (@code IS NULL OR code = @code)",
  );
  const sFaultActive = prep("faults", "SELECT * FROM faults WHERE cleared_at IS NULL ORDER BY id");
  const sFaultHistory = prep("faults", "SELECT * FROM faults ORDER BY id DESC LIMIT ?");

  const faults: Faults = {
    raise: (code, detail, at) => {
      const row = { code: faultCode(code), detail: text(detail, "fault detail"), at: ms(at, "at") };
      return op("faults.raise", () => {
        const added = db
          .transaction(() => {
            const latched = need(sFaultLatched, "faults").get(row.code) as Row | undefined;
            if (latched !== undefined) {
              need(sFaultBump, "faults").run({ id: latched["id"], at: row.at });
              return false;
            }
            need(sFaultIns, "faults").run(row);
            return true;
          })
          .immediate();
        if (added) guard?.refresh();
        return added;
      });
    },
    clear: (code, by, at) => {
      const row = {
        code: code === "all" ? null : faultCode(code),
        by: text(by, "cleared by", 1),
        at: ms(at, "at"),
      };
      return op("faults.clear", () => {
        if (guard !== undefined) {
          const active = need(sFaultActive, "faults").all() as Row[];
          const left = active.filter((r) => row.code !== null && r["code"] !== row.code).length;
          if (left < active.length) guard.lower({ latched: left });
        }
        return need(sFaultClear, "faults").run(row).changes;
      });
    },
    active: () => op("faults.active", () => (need(sFaultActive, "faults").all() as Row[]).map(faultRecord)),
    history: (limit) => {
      const n = count(limit, "limit");
      return op("faults.history", () => (need(sFaultHistory, "faults").all(n) as Row[]).map(faultRecord));
    },
  };

  // --- audit ---
  const sAuditIns = prep(
    "audit",
    "INSERT INTO audit (at, actor, action, outcome, detail, uid, pid) VALUES (@at, @actor, @action, @outcome, @detail, @uid, @pid)",
  );
  const sAuditList = prep(
    "audit",
    "SELECT * FROM audit WHERE @actor IS NULL OR actor = @actor ORDER BY id DESC LIMIT @limit",
  );
  const sAuditTrim = prep(
    "audit",
    "DELETE FROM audit WHERE id <= (SELECT id FROM audit ORDER BY id DESC LIMIT 1 OFFSET @keep)",
  );

  const audit: AuditLog = {
    append: (e) => {
      if (typeof e !== "object" || e === null)
        throw new StoreError("INVALID", "audit entry is not an object");
      const row = {
        at: ms(e.at, "at"),
        actor: actor(e.actor, "actor"),
        action: text(e.action, "action", 1),
        outcome: text(e.outcome, "outcome", 1),
        detail: e.detail === undefined ? null : text(e.detail, "audit detail"),
        uid: e.uid === undefined ? null : id32(e.uid, "uid"),
        pid: e.pid === undefined ? null : id32(e.pid, "pid"),
      };
      // The table is bounded: the insert and the trim to the cap are one transaction (one fsync).
      op("audit.append", () =>
        db
          .transaction(() => {
            need(sAuditIns, "audit").run(row);
            need(sAuditTrim, "audit").run({ keep: auditMaxRows });
          })
          .immediate(),
      );
    },
    list: (q) => {
      if (typeof q !== "object" || q === null) throw new StoreError("INVALID", "query is not an object");
      const args = {
        limit: count(q.limit, "limit"),
        actor: q.actor === undefined ? null : actor(q.actor, "actor"),
      };
      return op("audit.list", () => (need(sAuditList, "audit").all(args) as Row[]).map(auditRecord));
    },
    trim: (keep) => {
      const k = count(keep, "keep");
      return op("audit.trim", () => need(sAuditTrim, "audit").run({ keep: k }).changes);
    },
  };

  return {
    path,
    readonly,
    schemaVersion: version,
    ledger,
    floor,
    sessions,
    faults,
    audit,
    close: () => {
      if (db.open) db.close();
    },
  };
}

function faultCode(v: unknown): string {
  const c = text(v, "fault code", 1);
  if (c.length > 64 || c === "all") throw new StoreError("INVALID", "fault code is out of range or reserved");
  return c;
}

// --- row decoding: never throws; a value of the wrong type reads as its neutral value ---

const num = (v: unknown): number => (typeof v === "number" ? v : typeof v === "bigint" ? Number(v) : 0);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : num(v));
const str = (v: unknown): string => (typeof v === "string" ? v : "");
const strOrNull = (v: unknown): string | null => (typeof v === "string" ? v : null);
const carrierOf = (v: unknown): StoreCarrier => (v === "mobile" ? "mobile" : "vehicle");
const STATUSES: readonly SessionStatus[] = ["active", "finished", "interrupted"];
const statusOf = (v: unknown): SessionStatus =>
  STATUSES.includes(v as SessionStatus) ? (v as SessionStatus) : "interrupted";

function ledgerEntry(r: Row): LedgerEntry {
  return {
    codeId: bytes(r["code_id"]),
    keyId: num(r["key_id"]),
    issuedAt: readU64be(r["issued_at"]),
    expiresAt: readU64be(r["expires_at"]),
    carrier: r["carrier"] === null ? null : carrierOf(r["carrier"]),
    deviceId: strOrNull(r["device_id"]),
    recordedAt: num(r["recorded_at"]),
  };
}

function sessionRecord(r: Row): SessionRecord {
  return {
    sessionId: bytes(r["session_id"]),
    codeId: bytes(r["code_id"]),
    keyId: num(r["key_id"]),
    deviceId: str(r["device_id"]),
    carrier: carrierOf(r["carrier"]),
    connectionId: strOrNull(r["connection_id"]),
    status: statusOf(r["status"]),
    startedAt: num(r["started_at"]),
    meterStartWh: numOrNull(r["meter_start_wh"]),
    energyWh: num(r["energy_wh"]),
    lastMeterWh: numOrNull(r["last_meter_wh"]),
    progressAt: numOrNull(r["progress_at"]),
    stoppedAt: numOrNull(r["stopped_at"]),
    meterStopWh: numOrNull(r["meter_stop_wh"]),
    stopReason: strOrNull(r["stop_reason"]),
    energySource:
      r["energy_source"] === "meter" ? "meter" : r["energy_source"] === "unknown" ? "unknown" : null,
    faults: stringList(r["faults"]),
    closedAt: numOrNull(r["closed_at"]),
  };
}

function faultRecord(r: Row): FaultRecord {
  return {
    code: str(r["code"]),
    detail: str(r["detail"]),
    raisedAt: num(r["raised_at"]),
    lastAt: num(r["last_at"]),
    count: num(r["count"]),
    clearedAt: numOrNull(r["cleared_at"]),
    clearedBy: strOrNull(r["cleared_by"]),
  };
}

function auditRecord(r: Row): AuditRecord {
  return {
    id: num(r["id"]),
    at: num(r["at"]),
    actor:
      (["console", "control", "ble", "daemon"] as const).find((a) => a === r["actor"]) ??
      ("daemon" as AuditActor),
    action: str(r["action"]),
    outcome: str(r["outcome"]),
    detail: strOrNull(r["detail"]),
    uid: typeof r["uid"] === "number" ? r["uid"] : null,
    pid: typeof r["pid"] === "number" ? r["pid"] : null,
  };
}

/** A uid or pid: an integer 0 … 2^32−1. */
function id32(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 0xffff_ffff)
    throw new StoreError("INVALID", `${what} is not an id 0…2^32−1`);
  return v;
}
