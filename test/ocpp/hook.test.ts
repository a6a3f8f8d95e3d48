/**
 * The store's session hook for OCPP (src/daemon/ocpp-hook.ts): each session change queues its
 * TransactionEvent in the outbox inside the same transaction, on the loop's connection and in
 * the write worker alike; the Ended event carries the session's energy and its OCMF record,
 * sealed with the station key and a pagination counter that survives a reopen.
 */
import assert from "node:assert/strict";
import { createPublicKey, verify } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import Database from "better-sqlite3";
import { createSessionHook, type SessionHookOptions } from "../../src/daemon/ocpp-hook.js";
import { listOcmf, markRemoteStop } from "../../src/ocpp/marks.js";
import { Outbox } from "../../src/ocpp/outbox.js";
import { openStore, openStoreWriter } from "../../src/store/index.js";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const rnd = () =>
  new Uint8Array(Buffer.from(Array.from({ length: 16 }, () => Math.floor(Math.random() * 256))));

function setup() {
  const dir = mkdtempSync(join(tmpdir(), "piled-ocpp-hook-"));
  const opts: SessionHookOptions = {
    stateDir: dir,
    meterValueIntervalS: 10,
    outboxMax: 100,
    gateway: { id: "piled", serial: "PILE-1", version: "0.1.0" },
    meter: { vendor: "simulated", model: "sdm630", serial: "PILE-1-meter" },
    chargePointId: "pile-1",
  };
  const path = join(dir, "piled.db");
  const open = () => openStore(path, { onSessionRecord: createSessionHook(opts) });
  return { dir, path, opts, open, done: () => rmSync(dir, { recursive: true, force: true }) };
}

const codeOf = (codeId: Uint8Array) => ({
  codeId,
  keyId: 1,
  issuedAt: 1000n,
  expiresAt: 9_000_000_000n,
  carrier: "mobile" as const,
  deviceId: "PHONE-1",
});
const beginOf = (sessionId: Uint8Array, codeId: Uint8Array, at: number) => ({
  sessionId,
  codeId,
  keyId: 1,
  deviceId: "PHONE-1",
  carrier: "mobile" as const,
  startedAt: at,
  meterStartWh: 5000,
});

const pending = (path: string) => {
  const db = new Database(path, { readonly: true });
  try {
    return (
      db.prepare("SELECT tx_id, event_type, offline, payload FROM ocpp_outbox ORDER BY id").all() as {
        tx_id: string;
        event_type: string;
        offline: number;
        payload: string;
      }[]
    ).map((r) => ({ ...r, payload: JSON.parse(r.payload) as Record<string, unknown> }));
  } finally {
    db.close();
  }
};

test("each session change queues its event in the same transaction; Ended carries the record's energy and a valid OCMF seal", (t) => {
  const s = setup();
  t.after(s.done);
  const store = s.open();
  const sid = rnd();
  const cid = rnd();
  store.sessions.beginWithCode(codeOf(cid), beginOf(sid, cid, 1_000_000));
  // Progress within the meter interval queues nothing; past it, an Updated event.
  store.sessions.progress(sid, { energyWh: 100, lastMeterWh: 5100, at: 1_005_000 });
  store.sessions.progress(sid, { energyWh: 300, lastMeterWh: 5300, at: 1_011_000 });
  store.sessions.progress(sid, { energyWh: 350, lastMeterWh: 5350, at: 1_015_000 });
  store.sessions.finish(sid, {
    stoppedAt: 1_020_000,
    meterStopWh: 5420,
    meterStartWh: 5000,
    energyWh: 420,
    stopReason: "CARRIER_STOP",
  });
  store.close();
  const ev = pending(s.path);
  assert.deepEqual(
    ev.map((e) => e.event_type),
    ["Started", "Updated", "Ended"],
  );
  for (const e of ev) assert.equal(e.tx_id, hex(sid));
  assert.equal(
    ev.every((e) => e.offline === 1),
    true,
    "no link: every event is offline",
  );
  const started = ev[0]!.payload;
  assert.deepEqual(started.idToken, { idToken: hex(cid), type: "Local" });
  const mv = (e: Record<string, unknown>) =>
    (
      e.meterValue as {
        sampledValue: { value: number; signedMeterValue?: { signedMeterData: string; publicKey: string } }[];
      }[]
    )[0]!.sampledValue[0]!;
  assert.equal(mv(ev[1]!.payload).value, 5300);
  const end = mv(ev[2]!.payload);
  assert.equal(end.value - 5000, 420, "Ended energy = the session record's");
  assert.equal((ev[2]!.payload.transactionInfo as { stoppedReason: string }).stoppedReason, "Local");
  // The OCMF record: signature over the payload section verifies with the station key.
  const rec = Buffer.from(end.signedMeterValue!.signedMeterData, "base64").toString("utf8");
  const [tag, payload, sig] = rec.split("|");
  assert.equal(tag, "OCMF");
  const p = JSON.parse(payload!) as { PG: string; RD: { RV: number }[]; ID: string };
  assert.equal(p.PG, "T1");
  assert.equal(p.ID, hex(cid));
  assert.deepEqual(
    p.RD.map((r) => r.RV),
    [5, 5.42],
  );
  const pub = createPublicKey({
    key: Buffer.from(end.signedMeterValue!.publicKey, "base64"),
    format: "der",
    type: "spki",
  });
  const sd = Buffer.from((JSON.parse(sig!) as { SD: string }).SD, "hex");
  assert.ok(verify("sha256", Buffer.from(payload!, "utf8"), pub, sd));
  assert.ok(
    !verify("sha256", Buffer.from(payload!.replace("5.42", "9.42"), "utf8"), pub, sd),
    "a tampered record fails",
  );
  // The record is kept for `pilectl sessions --ocmf`.
  const db = new Database(s.path, { readonly: true });
  assert.deepEqual(
    listOcmf(db, 10).map((r) => r.record),
    [rec],
  );
  db.close();
});

test("a hook that throws aborts the session change: no session without its event, no event without its session", (t) => {
  const s = setup();
  t.after(s.done);
  let fail = false;
  const hook = createSessionHook(s.opts);
  const store = openStore(s.path, {
    onSessionRecord: (db, c, r) => {
      hook(db, c, r);
      if (fail) throw new Error("disk gone");
    },
  });
  const sid = rnd();
  const cid = rnd();
  fail = true;
  assert.throws(() => store.sessions.beginWithCode(codeOf(cid), beginOf(sid, cid, 1_000_000)));
  assert.equal(store.sessions.get(sid), undefined);
  assert.equal(store.ledger.isUsed(cid), false);
  fail = false;
  store.sessions.beginWithCode(codeOf(cid), beginOf(sid, cid, 1_000_000));
  fail = true;
  assert.throws(() => store.sessions.progress(sid, { energyWh: 200, lastMeterWh: 5200, at: 1_050_000 }));
  assert.equal(store.sessions.get(sid)?.energyWh, 0);
  assert.throws(() =>
    store.sessions.finish(sid, {
      stoppedAt: 1_060_000,
      meterStopWh: 5200,
      energyWh: 200,
      stopReason: "TECHNICIAN",
    }),
  );
  assert.equal(store.sessions.get(sid)?.status, "active");
  store.close();
  assert.deepEqual(
    pending(s.path).map((e) => e.event_type),
    ["Started"],
  );
});

test("interrupted at the next start: Ended with PowerLoss; remote stop says Remote; pagination continues after a reopen", (t) => {
  const s = setup();
  t.after(s.done);
  let store = s.open();
  const a = rnd();
  const ca = rnd();
  store.sessions.beginWithCode(codeOf(ca), beginOf(a, ca, 1_000_000));
  store.sessions.progress(a, { energyWh: 50, lastMeterWh: 5050, at: 1_002_000 });
  store.close();
  store = s.open();
  store.sessions.markInterrupted(1_100_000, 5080);
  const b = rnd();
  const cb = rnd();
  store.sessions.beginWithCode({ ...codeOf(cb), issuedAt: 2000n }, beginOf(b, cb, 1_200_000));
  const db = new Database(s.path);
  markRemoteStop(db, hex(b));
  db.close();
  store.sessions.finish(b, {
    stoppedAt: 1_300_000,
    meterStopWh: 5100,
    meterStartWh: 5000,
    energyWh: 100,
    stopReason: "TECHNICIAN",
  });
  store.close();
  const ev = pending(s.path).filter((e) => e.event_type === "Ended");
  assert.equal(ev.length, 2);
  const info = ev.map((e) => e.payload.transactionInfo as { stoppedReason: string });
  assert.deepEqual(
    info.map((i) => i.stoppedReason),
    ["PowerLoss", "Remote"],
  );
  const ro = new Database(s.path, { readonly: true });
  const pages = listOcmf(ro, 10).map((r) => r.page);
  ro.close();
  assert.deepEqual(pages, [2, 1]);
});

test("the write worker runs the same hook: progress made while live is queued there", async (t) => {
  const s = setup();
  t.after(s.done);
  const store = s.open();
  const sid = rnd();
  const cid = rnd();
  store.sessions.beginWithCode(codeOf(cid), beginOf(sid, cid, 1_000_000));
  const w = openStoreWriter(s.path, {
    module: new URL("../../src/daemon/ocpp-hook.js", import.meta.url).href,
    options: s.opts,
  });
  await w.submit({
    op: "sessions.progress",
    sessionId: sid,
    progress: { energyWh: 900, lastMeterWh: 5900, at: 1_030_000 },
  });
  await w.close();
  store.close();
  assert.deepEqual(
    pending(s.path).map((e) => e.event_type),
    ["Started", "Updated"],
  );
  // And a delivering Outbox on its own connection sees them in order.
  const db = new Database(s.path);
  const ob = new Outbox(db, 100);
  assert.equal(ob.head()?.eventType, "Started");
  assert.equal(ob.stats().depth, 2);
  db.close();
});
