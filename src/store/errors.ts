/**
 * The one error class of the store layer. Callers switch on `code`, never on the message.
 * Messages name what failed, never a value that was being stored.
 */
export type StoreErrorCode =
  /** Not a database, or a damaged one. The file is left exactly as it was found. */
  | "CORRUPT"
  /** An SQLite file that is not a piled store (other application_id, unknown tables). Left untouched. */
  | "FOREIGN"
  /**
   * The store has lost its past: its identity file says it lived, but the database is missing,
   * empty, new, another store's, or holds fewer ledger rows, a lower time floor or fewer latched
   * faults than it recorded. Refused untouched; `pilectl store recover` is the technician's way out.
   */
  | "LOST_PAST"
  /** Written by a newer piled: its schema version is above the newest this build knows. */
  | "NEWER_SCHEMA"
  /** Opened read-only but the file needs a migration (or is empty) first. */
  | "OLD_SCHEMA"
  /** The file cannot be opened, read or written (permissions, missing, disk full, I/O error). */
  | "IO"
  /** Another connection held the lock beyond the busy timeout. */
  | "LOCKED"
  /** A write on a store opened read-only. */
  | "READONLY"
  /** A use of a closed store. */
  | "CLOSED"
  /** A value outside its documented range or of the wrong type. Nothing was changed. */
  | "INVALID"
  /** The codeId (or sessionId) is already recorded. Nothing was changed. */
  | "DUPLICATE"
  /** A free-text field carries a run of 64 hex digits (a key or a verification secret). Refused. */
  | "SECRET"
  /** sessions.begin while another session is active. */
  | "ACTIVE_SESSION"
  /** sessions.begin for a codeId the ledger has not recorded. */
  | "UNKNOWN_CODE"
  /** No such session. */
  | "NOT_FOUND"
  /** The session exists but is no longer active (finished or interrupted). */
  | "NOT_ACTIVE";

export class StoreError extends Error {
  override readonly name = "StoreError";
  constructor(
    readonly code: StoreErrorCode,
    message: string,
    /** The SQLite extended result code behind it, when there is one (e.g. "SQLITE_NOTADB"). */
    readonly sqliteCode?: string,
  ) {
    super(message);
  }
}

/** Maps an SQLite extended result code to the store's code. */
export function codeOfSqlite(sqliteCode: string): StoreErrorCode {
  if (sqliteCode === "SQLITE_NOTADB" || sqliteCode.startsWith("SQLITE_CORRUPT")) return "CORRUPT";
  if (sqliteCode.startsWith("SQLITE_BUSY") || sqliteCode.startsWith("SQLITE_LOCKED")) return "LOCKED";
  if (sqliteCode.startsWith("SQLITE_READONLY")) return "READONLY";
  return "IO";
}

function sqliteCodeOf(e: unknown): string | undefined {
  if (e instanceof Error && e.name === "SqliteError") {
    const c = (e as Error & { code?: unknown }).code;
    if (typeof c === "string") return c;
  }
  return undefined;
}

/** Turns anything thrown below into a StoreError (StoreErrors pass through unchanged). */
export function toStoreError(e: unknown, what: string): StoreError {
  if (e instanceof StoreError) return e;
  const sc = sqliteCodeOf(e);
  if (sc !== undefined) return new StoreError(codeOfSqlite(sc), `${what}: ${sc}`, sc);
  return new StoreError("IO", `${what}: ${e instanceof Error ? e.name : "error"}`);
}

/** The SQLite extended result code of an error thrown by better-sqlite3, if it is one. */
export function sqliteCode(e: unknown): string | undefined {
  return sqliteCodeOf(e);
}
