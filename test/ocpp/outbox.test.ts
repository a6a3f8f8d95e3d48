/**
 * The outbox on its own: order, seqNo fixed at the first attempt and contiguous, the offline
 * flag from the link state, the caller's transaction, the bound (E04.FR.07/08), and a reopen.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import Database from "better-sqlite3";
import {
  enqueueInTx,
  migrateOutbox,
  Outbox,
  type TxEventInput,
  type TxEventType,
} from "../../src/ocpp/outbox.js";

const dir = mkdtempSync(join(tmpdir(), "piled-outbox-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = () => new Database(join(dir, `o${n++}.db`));
const ev = (tx: string, t: TxEventType, i = 0): TxEventInput => ({
  transactionId: tx,
  eventType: t,
  payload: { eventType: t, i },
});

/** Delivers everything, as a deliverer would: [tx, type, seqNo, offline, i]. */
function drainAll(o: Outbox): unknown[][] {
  const out: unknown[][] = [];
  for (let h = o.head(); h !== undefined; h = o.head()) {
    const seq = o.claimSeqNo(h.id);
    out.push([h.transactionId, h.eventType, seq, h.offline, h.payload.i]);
    o.ack(h.id);
  }
  return out;
}

test("in order, seqNo contiguous per transaction, offline as the link was when the event happened", () => {
  const o = new Outbox(fresh());
  o.enqueue([ev("a", "Started"), ev("a", "Updated", 1)]);
  o.setOnline(true);
  o.enqueue([ev("b", "Started"), ev("a", "Ended"), ev("b", "Ended")]);
  assert.deepEqual(drainAll(o), [
    ["a", "Started", 0, true, 0],
    ["a", "Updated", 1, true, 1],
    ["b", "Started", 0, false, 0],
    ["a", "Ended", 2, false, 0],
    ["b", "Ended", 1, false, 0],
  ]);
});

test("a retried event keeps its seqNo, and so does it after a reopen", () => {
  const path = join(dir, "reopen.db");
  let db = new Database(path);
  let o = new Outbox(db);
  o.enqueue([ev("t", "Started"), ev("t", "Updated", 1)]);
  const h = o.head();
  assert.ok(h);
  assert.equal(o.claimSeqNo(h.id), 0);
  assert.equal(o.claimSeqNo(h.id), 0, "a retry reuses the seqNo");
  db.close();
  db = new Database(path);
  o = new Outbox(db);
  const rows = drainAll(o);
  assert.deepEqual(
    rows.map((r) => [r[1], r[2]]),
    [
      ["Started", 0],
      ["Updated", 1],
    ],
  );
  db.close();
});

test("enqueueInTx takes part in the caller's transaction: a rollback leaves no event", () => {
  const db = fresh();
  migrateOutbox(db);
  db.exec("CREATE TABLE sessions (id TEXT PRIMARY KEY)");
  const record = db.transaction((id: string, fail: boolean) => {
    db.prepare("INSERT INTO sessions (id) VALUES (?)").run(id);
    enqueueInTx(db, [ev(id, "Started")]);
    if (fail) throw new Error("crash between the two writes");
  });
  record("s1", false);
  assert.throws(() => record("s2", true));
  const o = new Outbox(db);
  assert.deepEqual(
    drainAll(o).map((r) => r[0]),
    ["s1"],
  );
  assert.equal((db.prepare("SELECT count(*) AS c FROM sessions").get() as { c: number }).c, 1);
});

test("past the bound, intermediate Updated events go first (1st, 3rd…), never Started or Ended", () => {
  const o = new Outbox(fresh(), 6);
  o.enqueue([ev("x", "Started")]);
  for (let i = 1; i <= 7; i++) o.enqueue([ev("x", "Updated", i)]);
  o.enqueue([ev("x", "Ended")]);
  const s = o.stats();
  assert.equal(s.depth, 6);
  assert.equal(s.dropped, 3);
  const rows = drainAll(o);
  assert.equal(rows[0]?.[1], "Started");
  assert.equal(rows.at(-1)?.[1], "Ended");
  // Kept events are still numbered without a gap.
  assert.deepEqual(
    rows.map((r) => r[2]),
    [0, 1, 2, 3, 4, 5],
  );
  const kept = rows.filter((r) => r[1] === "Updated").map((r) => r[4]);
  // Thinned evenly: the pass at 7 rows dropped U1, U3, U5; the latest reading is kept.
  assert.deepEqual(kept, [2, 4, 6, 7]);
});

test("Started and Ended are kept even past the bound", () => {
  const o = new Outbox(fresh(), 4);
  for (let i = 0; i < 5; i++) o.enqueue([ev(`t${i}`, "Started"), ev(`t${i}`, "Ended")]);
  assert.equal(o.stats().depth, 10);
  assert.equal(o.stats().dropped, 0);
});

test("an event already attempted is never dropped (it may have reached the CSMS)", () => {
  const o = new Outbox(fresh(), 3);
  o.enqueue([ev("y", "Updated", 1)]);
  const h = o.head();
  assert.ok(h);
  o.claimSeqNo(h.id);
  o.enqueue([ev("y", "Updated", 2), ev("y", "Updated", 3), ev("y", "Updated", 4)]);
  const rows = drainAll(o);
  assert.equal(rows[0]?.[4], 1);
  assert.equal(rows.length, 3);
});
