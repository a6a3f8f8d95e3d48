/**
 * The durable outbox of TransactionEvent messages (OCPP 2.0.1 E04, §1.3.2.1), in SQLite.
 *
 * - `migrateOutbox(db)` creates its tables; the store's migration list can adopt it as one step.
 * - `enqueueInTx(db, events)` appends events and may run inside the caller's transaction, so an
 *   event is durable exactly when the session change it reports is. Each event's `offline` flag
 *   is fixed there from the link state row (what happened while disconnected says so).
 * - Delivery is in order, one at a time: `head()` is the oldest pending event; its seqNo is fixed
 *   at the first attempt (`claimSeqNo`) from a per-transaction counter, so a retry reuses it and
 *   dropped events leave no gap; `ack()` removes it after the CSMS answered.
 * - Bounded: past `max` rows, pending intermediate Updated events are dropped first (1st, 3rd,
 *   5th… of each pass, E04.FR.07/08); Started and Ended are never dropped, even past the bound.
 */
import type { Database } from "better-sqlite3";

export type TxEventType = "Started" | "Updated" | "Ended";

/** One TransactionEventRequest without seqNo and offline (the outbox fixes those). */
export interface TxEventInput {
  transactionId: string;
  eventType: TxEventType;
  /** The TransactionEventRequest body, seqNo and offline excepted. */
  payload: Record<string, unknown>;
}

export interface OutboxRow {
  id: number;
  transactionId: string;
  eventType: TxEventType;
  offline: boolean;
  seqNo: number | undefined;
  attempts: number;
  payload: Record<string, unknown>;
}

export interface OutboxStats {
  depth: number;
  dropped: number;
  dead: number;
}

/** Creates the outbox tables (idempotent). */
export function migrateOutbox(db: Database): void {
  db.exec(`
    CREATE TABLE IF NOT EXISTS ocpp_outbox (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      tx_id TEXT NOT NULL,
      event_type TEXT NOT NULL CHECK (event_type IN ('Started','Updated','Ended')),
      offline INTEGER NOT NULL CHECK (offline IN (0,1)),
      seq_no INTEGER,
      attempts INTEGER NOT NULL DEFAULT 0,
      dead INTEGER NOT NULL DEFAULT 0,
      payload TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS ocpp_outbox_pending ON ocpp_outbox (dead, id);
    CREATE TABLE IF NOT EXISTS ocpp_tx_seq (
      tx_id TEXT PRIMARY KEY,
      next_seq INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS ocpp_link_state (
      k INTEGER PRIMARY KEY CHECK (k = 1),
      online INTEGER NOT NULL,
      dropped INTEGER NOT NULL DEFAULT 0
    );
    INSERT OR IGNORE INTO ocpp_link_state (k, online) VALUES (1, 0);
  `);
}

/** Link state as the outbox sees it; a fresh process starts offline. */
export function setLinkOnline(db: Database, online: boolean): void {
  db.prepare("UPDATE ocpp_link_state SET online = ? WHERE k = 1").run(online ? 1 : 0);
}

/**
 * Appends `events` in order; when the outbox holds more than `max` rows afterwards, drops
 * intermediate Updated events. Runs in the caller's transaction if there is one (better-sqlite3
 * nests it as a savepoint), else in its own.
 */
export function enqueueInTx(db: Database, events: readonly TxEventInput[], max = 10_000): void {
  const run = db.transaction(() => {
    const online = (db.prepare("SELECT online FROM ocpp_link_state WHERE k = 1").get() as { online: number })
      .online;
    const ins = db.prepare(
      "INSERT INTO ocpp_outbox (tx_id, event_type, offline, payload) VALUES (?, ?, ?, ?)",
    );
    for (const e of events) ins.run(e.transactionId, e.eventType, online ? 0 : 1, JSON.stringify(e.payload));
    trimOutbox(db, max);
  });
  run();
}

/** Drops pending intermediate Updated events, oldest first, every other one, until within max. */
function trimOutbox(db: Database, max: number): void {
  const count = (): number =>
    (db.prepare("SELECT count(*) AS n FROM ocpp_outbox WHERE dead = 0").get() as { n: number }).n;
  let over = count() - max;
  while (over > 0) {
    // Only events not yet attempted (seq_no IS NULL) may go: one sent may have reached the CSMS.
    const ids = (
      db
        .prepare(
          "SELECT id FROM ocpp_outbox WHERE dead = 0 AND event_type = 'Updated' AND seq_no IS NULL ORDER BY id",
        )
        .all() as { id: number }[]
    ).map((r) => r.id);
    // One pass thins the whole queue evenly (1st, 3rd, 5th…) rather than losing its oldest stretch;
    // the last Updated is kept while there are others, so the latest reading survives.
    const pass = ids.length > 1 ? ids.slice(0, -1) : ids;
    const victims = pass.filter((_, i) => i % 2 === 0);
    if (victims.length === 0) return;
    const del = db.prepare("DELETE FROM ocpp_outbox WHERE id = ?");
    for (const id of victims) del.run(id);
    db.prepare("UPDATE ocpp_link_state SET dropped = dropped + ? WHERE k = 1").run(victims.length);
    over -= victims.length;
  }
}

interface RawRow {
  id: number;
  tx_id: string;
  event_type: TxEventType;
  offline: number;
  seq_no: number | null;
  attempts: number;
  payload: string;
}

const toRow = (r: RawRow): OutboxRow => ({
  id: r.id,
  transactionId: r.tx_id,
  eventType: r.event_type,
  offline: r.offline === 1,
  seqNo: r.seq_no ?? undefined,
  attempts: r.attempts,
  payload: JSON.parse(r.payload) as Record<string, unknown>,
});

/** Delivery side of the outbox: one process, one deliverer. */
export class Outbox {
  constructor(
    private readonly db: Database,
    readonly max = 10_000,
  ) {
    migrateOutbox(db);
    setLinkOnline(db, false);
  }

  enqueue(events: readonly TxEventInput[]): void {
    enqueueInTx(this.db, events, this.max);
  }

  setOnline(online: boolean): void {
    setLinkOnline(this.db, online);
  }

  /** The oldest pending event, if any. */
  head(): OutboxRow | undefined {
    const r = this.db.prepare("SELECT * FROM ocpp_outbox WHERE dead = 0 ORDER BY id LIMIT 1").get() as
      | RawRow
      | undefined;
    return r === undefined ? undefined : toRow(r);
  }

  /** Fixes the row's seqNo at its first attempt (durably) and counts the attempt. */
  claimSeqNo(id: number): number {
    const tx = this.db.transaction((): number => {
      const r = this.db.prepare("SELECT tx_id, seq_no FROM ocpp_outbox WHERE id = ?").get(id) as
        | { tx_id: string; seq_no: number | null }
        | undefined;
      if (r === undefined) throw new Error(`outbox row ${id} is gone`);
      this.db.prepare("UPDATE ocpp_outbox SET attempts = attempts + 1 WHERE id = ?").run(id);
      if (r.seq_no !== null) return r.seq_no;
      const s = this.db.prepare("SELECT next_seq FROM ocpp_tx_seq WHERE tx_id = ?").get(r.tx_id) as
        | { next_seq: number }
        | undefined;
      const seq = s?.next_seq ?? 0;
      this.db
        .prepare(
          "INSERT INTO ocpp_tx_seq (tx_id, next_seq) VALUES (?, ?) ON CONFLICT(tx_id) DO UPDATE SET next_seq = excluded.next_seq",
        )
        .run(r.tx_id, seq + 1);
      this.db.prepare("UPDATE ocpp_outbox SET seq_no = ? WHERE id = ?").run(seq, id);
      return seq;
    });
    return tx();
  }

  /** The CSMS answered: the event is delivered. An Ended event also retires its seqNo counter. */
  ack(id: number): void {
    this.db.transaction(() => {
      const r = this.db.prepare("SELECT tx_id, event_type FROM ocpp_outbox WHERE id = ?").get(id) as
        | { tx_id: string; event_type: TxEventType }
        | undefined;
      this.db.prepare("DELETE FROM ocpp_outbox WHERE id = ?").run(id);
      if (r?.event_type === "Ended") this.db.prepare("DELETE FROM ocpp_tx_seq WHERE tx_id = ?").run(r.tx_id);
    })();
  }

  /** Given up after the attempts allowed: kept for inspection, no longer delivered. */
  bury(id: number): void {
    this.db.prepare("UPDATE ocpp_outbox SET dead = 1 WHERE id = ?").run(id);
  }

  stats(): OutboxStats {
    const q = (sql: string): number => (this.db.prepare(sql).get() as { n: number }).n;
    return {
      depth: q("SELECT count(*) AS n FROM ocpp_outbox WHERE dead = 0"),
      dead: q("SELECT count(*) AS n FROM ocpp_outbox WHERE dead = 1"),
      dropped: q("SELECT dropped AS n FROM ocpp_link_state WHERE k = 1"),
    };
  }
}
