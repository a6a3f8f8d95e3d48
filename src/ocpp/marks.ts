/**
 * The OCPP side of the session records, in the store's file (schema v6, beside the outbox):
 * - `ocpp_tx`: one row per open transaction the station reported (when its last Updated event
 *   was queued, whether the CSMS asked for its stop); gone once its Ended event is queued;
 * - `ocpp_ocmf_page`: the OCMF pagination counter ("T<n>", +1 per sealed record), durable;
 * - `ocpp_ocmf`: each finished session's sealed OCMF record (`pilectl sessions --ocmf`).
 */
import type { Database } from "better-sqlite3";

export function migrateOcppMarks(db: Database): void {
  db.exec(`
    CREATE TABLE IF NOT EXISTS ocpp_tx (
      tx_id TEXT PRIMARY KEY,
      last_update_at INTEGER NOT NULL,
      remote_stop INTEGER NOT NULL DEFAULT 0 CHECK (remote_stop IN (0,1))
    );
    CREATE TABLE IF NOT EXISTS ocpp_ocmf_page (
      k INTEGER PRIMARY KEY CHECK (k = 1),
      next INTEGER NOT NULL
    );
    INSERT OR IGNORE INTO ocpp_ocmf_page (k, next) VALUES (1, 1);
    CREATE TABLE IF NOT EXISTS ocpp_ocmf (
      session_id TEXT PRIMARY KEY,
      page INTEGER NOT NULL UNIQUE,
      sealed_at INTEGER NOT NULL,
      record TEXT NOT NULL
    );
  `);
}

export interface OcmfRow {
  sessionId: string;
  page: number;
  sealedAt: number;
  record: string;
}

/** The last `limit` sealed records, newest first. */
export function listOcmf(db: Database, limit: number): OcmfRow[] {
  return (
    db
      .prepare("SELECT session_id, page, sealed_at, record FROM ocpp_ocmf ORDER BY page DESC LIMIT ?")
      .all(limit) as { session_id: string; page: number; sealed_at: number; record: string }[]
  ).map((r) => ({ sessionId: r.session_id, page: r.page, sealedAt: r.sealed_at, record: r.record }));
}

/** The CSMS asked for this transaction's stop: its Ended event says Remote. */
export function markRemoteStop(db: Database, txId: string): void {
  db.prepare("UPDATE ocpp_tx SET remote_stop = 1 WHERE tx_id = ?").run(txId);
}
