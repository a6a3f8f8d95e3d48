/**
 * The store's schema: a fixed `application_id` marks a piled file, `user_version` is the schema
 * version, and an ordered list of migrations takes a file from any earlier version to the current
 * one inside a single transaction (all or nothing).
 *
 * Representation choices:
 * - codeId / sessionId are 16-byte BLOBs.
 * - issuedAt, expiresAt and the time floor are 8-byte big-endian BLOBs: exact over 0..2^64−1
 *   (an INTEGER is signed 64-bit and better-sqlite3 reads it as a lossy number by default), and
 *   SQLite compares equal-length BLOBs with memcmp, which for big-endian bytes is numeric order,
 *   so `expires_at < ?` and `ms < ?` need no conversion. expiresAt saturates at 2^64−1: an entry
 *   may then outlive its true expiry, never the reverse.
 * - every other time is an INTEGER of Unix ms (a JS safe integer), energies are REAL Wh.
 */

import Database from "better-sqlite3";
import { migrateOcppMarks } from "../ocpp/marks.js";
import { migrateOutbox } from "../ocpp/outbox.js";
import { StoreError } from "./errors.js";

type Db = Database.Database;

/** "PILE" in ASCII: marks a piled store in the SQLite header (PRAGMA application_id). */
export const APPLICATION_ID = 0x50494c45;

export interface Migration {
  /** The schema version this migration produces: 1, 2, … in order. */
  readonly version: number;
  readonly up: (db: Db) => void;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    // v1: the replay ledger, the time floor and the sessions.
    version: 1,
    up: (db) => {
      db.exec(`
        CREATE TABLE ledger (
          code_id     BLOB PRIMARY KEY CHECK (typeof(code_id) = 'blob' AND length(code_id) = 16),
          key_id      INTEGER NOT NULL CHECK (key_id BETWEEN 0 AND 4294967295),
          issued_at   BLOB NOT NULL CHECK (typeof(issued_at) = 'blob' AND length(issued_at) = 8),
          expires_at  BLOB NOT NULL CHECK (typeof(expires_at) = 'blob' AND length(expires_at) = 8),
          carrier     TEXT CHECK (carrier IN ('vehicle', 'mobile')),
          device_id   TEXT,
          recorded_at INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX ledger_expiry ON ledger (expires_at);

        CREATE TABLE time_floor (
          id INTEGER PRIMARY KEY CHECK (id = 1),
          ms BLOB NOT NULL CHECK (typeof(ms) = 'blob' AND length(ms) = 8)
        );
        INSERT INTO time_floor (id, ms) VALUES (1, zeroblob(8));

        CREATE TABLE sessions (
          seq            INTEGER PRIMARY KEY,
          session_id     BLOB NOT NULL UNIQUE CHECK (typeof(session_id) = 'blob' AND length(session_id) = 16),
          code_id        BLOB NOT NULL CHECK (typeof(code_id) = 'blob' AND length(code_id) = 16),
          key_id         INTEGER NOT NULL CHECK (key_id BETWEEN 0 AND 4294967295),
          device_id      TEXT NOT NULL,
          carrier        TEXT NOT NULL CHECK (carrier IN ('vehicle', 'mobile')),
          connection_id  TEXT,
          status         TEXT NOT NULL CHECK (status IN ('active', 'finished', 'interrupted')),
          started_at     INTEGER NOT NULL,
          meter_start_wh REAL,
          energy_wh      REAL NOT NULL DEFAULT 0,
          last_meter_wh  REAL,
          progress_at    INTEGER,
          stopped_at     INTEGER,
          meter_stop_wh  REAL,
          stop_reason    TEXT,
          faults         TEXT NOT NULL DEFAULT '[]',
          closed_at      INTEGER
        );
        CREATE UNIQUE INDEX sessions_one_active ON sessions (status) WHERE status = 'active';
        CREATE INDEX sessions_started ON sessions (started_at, seq);
      `);
    },
  },
  {
    // v2: latched faults and the audit/event log.
    version: 2,
    up: (db) => {
      db.exec(`
        CREATE TABLE faults (
          id         INTEGER PRIMARY KEY,
          code       TEXT NOT NULL CHECK (length(code) BETWEEN 1 AND 64),
          detail     TEXT NOT NULL,
          raised_at  INTEGER NOT NULL,
          last_at    INTEGER NOT NULL,
          count      INTEGER NOT NULL DEFAULT 1,
          cleared_at INTEGER,
          cleared_by TEXT
        );
        CREATE UNIQUE INDEX faults_latched ON faults (code) WHERE cleared_at IS NULL;

        CREATE TABLE audit (
          id      INTEGER PRIMARY KEY,
          at      INTEGER NOT NULL,
          actor   TEXT NOT NULL CHECK (actor IN ('console', 'control', 'ble', 'daemon')),
          action  TEXT NOT NULL,
          outcome TEXT NOT NULL,
          detail  TEXT
        );
        CREATE INDEX audit_actor ON audit (actor, id);
      `);
    },
  },
  {
    // v3: where a closed session's energy comes from: 'meter' (the meter's import register,
    // for an interrupted session read at the next boot) or 'unknown' (the meter could not be
    // read: the energy is the last progress recorded, a lower bound). NULL for older rows.
    version: 3,
    up: (db) => {
      db.exec(`
        ALTER TABLE sessions ADD COLUMN energy_source TEXT CHECK (energy_source IN ('meter', 'unknown'));
      `);
    },
  },
  {
    // v4: the store's identity (its twin and the MAC key are in the identity file beside the
    // database) and a per-row MAC of the ledger, so a flipped or swapped code id is detected.
    version: 4,
    up: (db) => {
      db.exec(`
        CREATE TABLE store_identity (
          id       INTEGER PRIMARY KEY CHECK (id = 1),
          store_id BLOB NOT NULL CHECK (typeof(store_id) = 'blob' AND length(store_id) = 16)
        );
        ALTER TABLE ledger ADD COLUMN mac BLOB CHECK (mac IS NULL OR length(mac) = 32);
      `);
    },
  },
  {
    // v5: who ran an audited control-socket command: the peer's uid and pid (SO_PEERCRED).
    version: 5,
    up: (db) => {
      db.exec(`
        ALTER TABLE audit ADD COLUMN uid INTEGER CHECK (uid IS NULL OR uid BETWEEN 0 AND 4294967295);
        ALTER TABLE audit ADD COLUMN pid INTEGER CHECK (pid IS NULL OR pid BETWEEN 0 AND 4294967295);
      `);
    },
  },
  {
    // v6: the OCPP outbox (src/ocpp/outbox.ts) and the OCPP marks of sessions (ocpp-hook.ts):
    // written in the same transaction as the session change they report.
    version: 6,
    up: (db) => {
      migrateOutbox(db);
      migrateOcppMarks(db);
    },
  },
];

export const CURRENT_VERSION = MIGRATIONS.length;

/** Checks that a migration list is 1, 2, …, n in order; a wrong list is a build defect. */
function checkList(list: readonly Migration[]): void {
  list.forEach((m, i) => {
    if (m.version !== i + 1) throw new StoreError("INVALID", `migration list out of order at index ${i}`);
  });
}

/**
 * Runs the migrations from `from` (exclusive) to `to` (inclusive) and sets user_version (and, from
 * an empty file, application_id) in the same transaction: a crash leaves the old version intact.
 */
export function migrate(db: Db, from: number, to: number, list: readonly Migration[] = MIGRATIONS): void {
  checkList(list);
  if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || to < from || to > list.length) {
    throw new StoreError("INVALID", `cannot migrate from ${from} to ${to}`);
  }
  db.transaction(() => {
    if (from === 0) db.pragma(`application_id = ${APPLICATION_ID}`);
    for (const m of list.slice(from, to)) m.up(db);
    db.pragma(`user_version = ${to}`);
  }).immediate();
}

/** Names of the tables a file of schema `version` holds (SQLite's own excluded), sorted. */
export function tableNames(db: Db): string[] {
  return (
    db
      .prepare(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
      )
      .pluck()
      .all() as string[]
  ).sort();
}

export interface SchemaObject {
  readonly type: string;
  readonly name: string;
  readonly tblName: string;
  readonly sql: string | null;
}

/** Every object of the schema (tables, indexes, triggers, views) with its SQL, sorted by type and name. */
export function schemaObjects(db: Db): SchemaObject[] {
  const rows = db
    .prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name")
    .all() as Record<string, unknown>[];
  return rows.map((r) => ({
    type: String(r["type"]),
    name: String(r["name"]),
    tblName: String(r["tbl_name"]),
    sql: typeof r["sql"] === "string" ? r["sql"] : null,
  }));
}

const expectedObjs = new WeakMap<readonly Migration[], Map<number, SchemaObject[]>>();

/** The full schema a file of `version` must hold, found by building it in memory (cached). */
export function expectedSchema(version: number, list: readonly Migration[] = MIGRATIONS): SchemaObject[] {
  let byVersion = expectedObjs.get(list);
  if (byVersion === undefined) {
    byVersion = new Map();
    expectedObjs.set(list, byVersion);
  }
  const cached = byVersion.get(version);
  if (cached) return cached;
  const mem = new Database(":memory:");
  try {
    migrate(mem, 0, version, list);
    const objs = schemaObjects(mem);
    byVersion.set(version, objs);
    return objs;
  } finally {
    mem.close();
  }
}

const expected = new WeakMap<readonly Migration[], Map<number, string[]>>();

/** The tables a file of `version` must hold, found by building that version in memory (cached). */
export function expectedTables(version: number, list: readonly Migration[] = MIGRATIONS): string[] {
  let byVersion = expected.get(list);
  if (byVersion === undefined) {
    byVersion = new Map();
    expected.set(list, byVersion);
  }
  const cached = byVersion.get(version);
  if (cached) return cached;
  const mem = new Database(":memory:");
  try {
    migrate(mem, 0, version, list);
    const names = tableNames(mem);
    byVersion.set(version, names);
    return names;
  } finally {
    mem.close();
  }
}
