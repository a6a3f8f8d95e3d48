/** The store's tables through its API: ledger, floor, sessions, faults, audit, and bad input. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import fc from "fast-check";
import { StoreError, type StoreErrorCode } from "../../src/store/errors.js";
import { CACHE_KIB, openStore } from "../../src/store/store.js";
import type { Store } from "../../src/store/types.js";
import { id, tempDir } from "./util.js";

const U64_MAX = (1n << 64n) - 1n;

function refuses(f: () => unknown, code: StoreErrorCode): void {
  assert.throws(f, (e: unknown) => e instanceof StoreError && e.code === code);
}

function fresh(t: TestContext, clock?: () => number): { store: Store; path: string } {
  const path = join(tempDir(t), "piled.db");
  const store = openStore(path, clock ? { clock } : {});
  t.after(() => store.close());
  return { store, path };
}

function recordCode(s: Store, issuedAt = 1000n): Uint8Array {
  const codeId = id();
  s.ledger.record({
    codeId,
    keyId: 1,
    issuedAt,
    expiresAt: issuedAt + 60_000n,
    carrier: "vehicle",
    deviceId: "VD-1",
  });
  return codeId;
}

/** A session's start on `codeId`, as the sessions tests begin one. */
const sessionStart = (codeId: Uint8Array, sessionId = id()) => ({
  sessionId,
  codeId,
  keyId: 1,
  deviceId: "VD-1",
  carrier: "vehicle" as const,
  startedAt: 1000,
  meterStartWh: 5000,
  connectionId: "ble-1",
});

test("ledger: a recorded code is used, keeps its fields and raises the floor", (t) => {
  const { store } = fresh(t, () => 4242);
  const codeId = id();
  assert.equal(store.ledger.isUsed(codeId), false);
  store.ledger.record({
    codeId,
    keyId: 0xffff_ffff,
    issuedAt: 77n,
    expiresAt: 99n,
    carrier: "mobile",
    deviceId: "é-1",
  });
  assert.equal(store.ledger.isUsed(codeId), true);
  assert.deepEqual(store.ledger.get(codeId), {
    codeId,
    keyId: 0xffff_ffff,
    issuedAt: 77n,
    expiresAt: 99n,
    carrier: "mobile",
    deviceId: "é-1",
    recordedAt: 4242,
  });
  assert.equal(store.floor.get(), 77n);
  assert.equal(store.ledger.count(), 1);
});

test("ledger: a duplicate codeId is DUPLICATE and changes nothing (floor included)", (t) => {
  const { store } = fresh(t);
  const codeId = id();
  store.ledger.record({ codeId, keyId: 1, issuedAt: 10n, expiresAt: 20n });
  refuses(() => store.ledger.record({ codeId, keyId: 2, issuedAt: 500n, expiresAt: 600n }), "DUPLICATE");
  assert.equal(store.floor.get(), 10n);
  assert.equal(store.ledger.count(), 1);
  assert.equal(store.ledger.get(codeId)?.keyId, 1);
});

test("ledger: times are exact over the whole 64-bit range; expiresAt saturates", (t) => {
  const { store } = fresh(t);
  const a = id();
  store.ledger.record({ codeId: a, keyId: 1, issuedAt: U64_MAX, expiresAt: U64_MAX + 2_678_400_000n });
  assert.equal(store.floor.get(), U64_MAX);
  assert.equal(store.ledger.get(a)?.expiresAt, U64_MAX);
  const b = id();
  store.ledger.record({ codeId: b, keyId: 1, issuedAt: 2n ** 53n + 1n, expiresAt: 2n ** 53n + 3n });
  assert.equal(store.ledger.get(b)?.issuedAt, 2n ** 53n + 1n);
  // A saturated entry is never pruned, whatever now.
  assert.equal(store.ledger.prune(U64_MAX + 10n), 1);
  assert.equal(store.ledger.isUsed(a), true);
  assert.equal(store.ledger.isUsed(b), false);
});

test("ledger: prune removes exactly the entries expired before now", (t) => {
  const { store } = fresh(t);
  const ids = [100n, 255n, 256n, 257n, 70_000n].map((exp) => {
    const codeId = id();
    store.ledger.record({ codeId, keyId: 1, issuedAt: 1n, expiresAt: exp });
    return codeId;
  });
  assert.equal(store.ledger.prune(256n), 2);
  assert.deepEqual(
    ids.map((c) => store.ledger.isUsed(c)),
    [false, false, true, true, true],
  );
  assert.equal(store.ledger.count(), 3);
  assert.equal(store.ledger.prune(0n), 0);
});

test("floor: never lowers, raises exactly", (t) => {
  const { store, path } = fresh(t);
  assert.equal(store.floor.get(), 0n);
  store.floor.raise(1_700_000_000_000n);
  store.floor.raise(5n);
  assert.equal(store.floor.get(), 1_700_000_000_000n);
  recordCode(store, 3n);
  assert.equal(store.floor.get(), 1_700_000_000_000n);
  store.floor.raise(1_700_000_000_001n);
  assert.equal(store.floor.get(), 1_700_000_000_001n);
  store.close();
  const again = openStore(path);
  assert.equal(again.floor.get(), 1_700_000_000_001n);
  again.close();
  refuses(() => store.floor.raise(1n), "CLOSED");
});

test("bad input gets INVALID and changes nothing", (t) => {
  const { store } = fresh(t);
  const ok = { codeId: id(), keyId: 1, issuedAt: 5n, expiresAt: 6n };
  const bad: unknown[] = [
    { ...ok, codeId: new Uint8Array(15) },
    { ...ok, codeId: "00" },
    { ...ok, keyId: -1 },
    { ...ok, keyId: 2 ** 32 },
    { ...ok, keyId: 1.5 },
    { ...ok, issuedAt: -1n },
    { ...ok, issuedAt: U64_MAX + 1n },
    { ...ok, issuedAt: 5 },
    { ...ok, expiresAt: 4n },
    { ...ok, carrier: "bus" },
    { ...ok, deviceId: "" },
    null,
  ];
  for (const b of bad) refuses(() => store.ledger.record(b as never), "INVALID");
  refuses(() => store.floor.raise(-1n), "INVALID");
  refuses(() => store.floor.raise(U64_MAX + 1n), "INVALID");
  refuses(() => store.ledger.prune(-1n), "INVALID");
  refuses(() => store.ledger.isUsed(new Uint8Array(3)), "INVALID");
  refuses(() => store.sessions.list({ limit: -1 }), "INVALID");
  refuses(() => store.audit.append({ at: 1, actor: "root" as never, action: "x", outcome: "y" }), "INVALID");
  refuses(() => store.faults.raise("all", "reserved", 1), "INVALID");
  refuses(() => store.faults.raise("", "empty", 1), "INVALID");
  assert.equal(store.ledger.count(), 0);
  assert.equal(store.floor.get(), 0n);
  assert.equal(store.audit.list({ limit: 10 }).length, 0);
  assert.equal(store.faults.history(10).length, 0);
});

test("sessions: begin → progress → finish keeps every figure", (t) => {
  const { store } = fresh(t);
  const codeId = recordCode(store);
  const sessionId = id();
  store.sessions.begin(sessionStart(codeId, sessionId));
  assert.deepEqual(store.sessions.active()?.sessionId, sessionId);
  store.sessions.progress(sessionId, { energyWh: 10, lastMeterWh: 5010, at: 2000 });
  store.sessions.progress(sessionId, { energyWh: 20.5, lastMeterWh: 5020.5, at: 3000 });
  assert.equal(store.sessions.get(sessionId)?.energyWh, 20.5);
  store.sessions.finish(sessionId, {
    stoppedAt: 4000,
    meterStopWh: 5030,
    energyWh: 30,
    stopReason: "STOPPED",
    faults: ["METER_STALE"],
  });
  assert.equal(store.sessions.active(), undefined);
  assert.deepEqual(store.sessions.get(sessionId), {
    sessionId,
    codeId,
    keyId: 1,
    deviceId: "VD-1",
    carrier: "vehicle",
    connectionId: "ble-1",
    status: "finished",
    startedAt: 1000,
    meterStartWh: 5000,
    energyWh: 30,
    lastMeterWh: 5020.5,
    progressAt: 3000,
    stoppedAt: 4000,
    meterStopWh: 5030,
    stopReason: "STOPPED",
    energySource: "meter",
    faults: ["METER_STALE"],
    closedAt: 4000,
  });
  refuses(
    () => store.sessions.progress(sessionId, { energyWh: 1, lastMeterWh: null, at: 5000 }),
    "NOT_ACTIVE",
  );
  refuses(
    () => store.sessions.finish(sessionId, { stoppedAt: 1, meterStopWh: null, energyWh: 0, stopReason: "X" }),
    "NOT_ACTIVE",
  );
  refuses(
    () => store.sessions.finish(id(), { stoppedAt: 1, meterStopWh: null, energyWh: 0, stopReason: "X" }),
    "NOT_FOUND",
  );
  assert.equal(store.sessions.get(sessionId)?.energyWh, 30);
});

test("sessions: one active at a time, ids unique, the code must be in the ledger", (t) => {
  const { store } = fresh(t);
  const base = { keyId: 1, deviceId: "VD", carrier: "mobile" as const, startedAt: 1, meterStartWh: null };
  const a = id();
  refuses(() => store.sessions.begin({ ...base, sessionId: a, codeId: id() }), "UNKNOWN_CODE");
  store.sessions.begin({ ...base, sessionId: a, codeId: recordCode(store) });
  refuses(
    () => store.sessions.begin({ ...base, sessionId: id(), codeId: recordCode(store) }),
    "ACTIVE_SESSION",
  );
  store.sessions.finish(a, { stoppedAt: 2, meterStopWh: null, energyWh: 0, stopReason: "STOPPED" });
  refuses(() => store.sessions.begin({ ...base, sessionId: a, codeId: recordCode(store) }), "DUPLICATE");
  assert.equal(store.sessions.list({ limit: 10 }).length, 1);
});

test("sessions: markInterrupted closes the unfinished session with its last progress", (t) => {
  const { store, path } = fresh(t);
  const base = { keyId: 1, deviceId: "VD", carrier: "vehicle" as const, meterStartWh: 100 };
  const done = id();
  store.sessions.begin({ ...base, sessionId: done, codeId: recordCode(store), startedAt: 10 });
  store.sessions.finish(done, { stoppedAt: 20, meterStopWh: 110, energyWh: 10, stopReason: "STOPPED" });
  const open = id();
  store.sessions.begin({ ...base, sessionId: open, codeId: recordCode(store), startedAt: 30 });
  store.sessions.progress(open, { energyWh: 7, lastMeterWh: 117, at: 40 });
  store.close();

  const again = openStore(path);
  t.after(() => again.close());
  const out = again.sessions.markInterrupted(99);
  assert.equal(out.length, 1);
  assert.deepEqual(out[0]?.sessionId, open);
  assert.equal(out[0]?.status, "interrupted");
  assert.equal(out[0]?.stopReason, "INTERRUPTED");
  assert.equal(out[0]?.energyWh, 7);
  assert.equal(out[0]?.meterStopWh, 117);
  assert.equal(out[0]?.stoppedAt, 40);
  assert.equal(out[0]?.closedAt, 99);
  assert.deepEqual(again.sessions.get(out[0]!.sessionId), out[0]);
  assert.equal(again.sessions.active(), undefined);
  assert.equal(again.sessions.get(done)?.status, "finished");
  assert.deepEqual(again.sessions.markInterrupted(100), []);
  // A session never progressed stops at its start.
  const bare = id();
  again.sessions.begin({ ...base, sessionId: bare, codeId: recordCode(again), startedAt: 200 });
  const [b] = again.sessions.markInterrupted(300);
  assert.equal(b?.stoppedAt, 200);
  assert.equal(b?.energyWh, 0);
  assert.equal(b?.meterStopWh, null);
});

test("field report: an interrupted session is closed from the meter's register, or marked unknown", (t) => {
  const { store } = fresh(t);
  const base = { keyId: 1, deviceId: "VD", carrier: "vehicle" as const };
  // The last progress said 1.3 Wh; the meter's register says 3 Wh flowed before the contactor opened.
  const a = id();
  store.sessions.begin({
    ...base,
    sessionId: a,
    codeId: recordCode(store),
    startedAt: 10,
    meterStartWh: 100,
  });
  store.sessions.progress(a, { energyWh: 1.3, lastMeterWh: 101.3, at: 20 });
  const [fromMeter] = store.sessions.markInterrupted(50, 103);
  assert.equal(fromMeter?.energyWh, 3);
  assert.equal(fromMeter?.meterStopWh, 103);
  assert.equal(fromMeter?.energySource, "meter");
  assert.equal(fromMeter?.stopReason, "INTERRUPTED");
  // The meter cannot be read: the last progress is kept, the energy marked unknown.
  const b = id();
  store.sessions.begin({
    ...base,
    sessionId: b,
    codeId: recordCode(store),
    startedAt: 60,
    meterStartWh: 200,
  });
  store.sessions.progress(b, { energyWh: 2, lastMeterWh: 202, at: 70 });
  const [noMeter] = store.sessions.markInterrupted(80);
  assert.equal(noMeter?.energyWh, 2);
  assert.equal(noMeter?.meterStopWh, 202);
  assert.equal(noMeter?.energySource, "unknown");
  // A register below the start (a meter changed) tells nothing.
  const c = id();
  store.sessions.begin({
    ...base,
    sessionId: c,
    codeId: recordCode(store),
    startedAt: 90,
    meterStartWh: 500,
  });
  const [below] = store.sessions.markInterrupted(95, 12);
  assert.equal(below?.energyWh, 0);
  assert.equal(below?.energySource, "unknown");
  // A session that never closed its contactor (no start register) delivered nothing.
  const d = id();
  store.sessions.begin({
    ...base,
    sessionId: d,
    codeId: recordCode(store),
    startedAt: 96,
    meterStartWh: null,
  });
  const [never] = store.sessions.markInterrupted(97, 600);
  assert.equal(never?.energyWh, 0);
  assert.equal(never?.energySource, "meter");
  assert.equal(store.sessions.get(a)?.energySource, "meter");
  refuses(() => store.sessions.markInterrupted(98, -1), "INVALID");
});

test("field report: the code and its session's start are written in one transaction, or neither", (t) => {
  const { store } = fresh(t);
  const code = (codeId: Uint8Array) => ({
    codeId,
    keyId: 3,
    issuedAt: 5000n,
    expiresAt: 9000n,
    carrier: "mobile" as const,
    deviceId: "PHONE-7",
  });
  const begin = (sessionId: Uint8Array, codeId: Uint8Array) => ({
    sessionId,
    codeId,
    keyId: 3,
    deviceId: "PHONE-7",
    carrier: "mobile" as const,
    startedAt: 1,
    meterStartWh: null,
  });
  const c1 = id();
  const s1 = id();
  store.sessions.beginWithCode(code(c1), begin(s1, c1));
  const entry = store.ledger.get(c1);
  assert.equal(entry?.carrier, "mobile");
  assert.equal(entry?.deviceId, "PHONE-7");
  assert.equal(store.floor.get(), 5000n);
  assert.deepEqual(store.sessions.active()?.sessionId, s1);
  // The session cannot begin (another is active): the code is not spent either.
  const c2 = id();
  refuses(
    () => store.sessions.beginWithCode({ ...code(c2), issuedAt: 6000n }, begin(id(), c2)),
    "ACTIVE_SESSION",
  );
  assert.equal(store.ledger.isUsed(c2), false);
  assert.equal(store.floor.get(), 5000n);
  // A code already spent: no session.
  store.sessions.finish(s1, { stoppedAt: 2, meterStopWh: null, energyWh: 0, stopReason: "S" });
  const s3 = id();
  refuses(() => store.sessions.beginWithCode(code(c1), begin(s3, c1)), "DUPLICATE");
  assert.equal(store.sessions.get(s3), undefined);
  // The session must be the code's.
  refuses(() => store.sessions.beginWithCode(code(id()), begin(id(), id())), "INVALID");
  assert.equal(store.sessions.list({ limit: 10 }).length, 1);
});

test("sessions: list is newest first and pages with before", (t) => {
  const { store } = fresh(t);
  const made: Uint8Array[] = [];
  for (let i = 1; i <= 5; i++) {
    const sessionId = id();
    made.push(sessionId);
    store.sessions.begin({
      sessionId,
      codeId: recordCode(store),
      keyId: 1,
      deviceId: "VD",
      carrier: "vehicle",
      startedAt: i * 100,
      meterStartWh: null,
    });
    store.sessions.finish(sessionId, {
      stoppedAt: i * 100 + 50,
      meterStopWh: null,
      energyWh: i,
      stopReason: "S",
    });
  }
  assert.deepEqual(
    store.sessions.list({ limit: 2 }).map((s) => s.startedAt),
    [500, 400],
  );
  assert.deepEqual(
    store.sessions.list({ limit: 10, before: 400 }).map((s) => s.startedAt),
    [300, 200, 100],
  );
  assert.deepEqual(store.sessions.list({ limit: 1, before: 200 })[0]?.sessionId, made[0]);
});

test("faults: latch, repeat, clear one or all, survive restart, history", (t) => {
  const { store, path } = fresh(t);
  assert.equal(store.faults.raise("WELD", "contactor reads closed after open", 10), true);
  assert.equal(store.faults.raise("WELD", "again", 20), false);
  assert.equal(store.faults.raise("METER", "silent 5 s", 30), true);
  store.close();
  const s = openStore(path);
  t.after(() => s.close());
  const active = s.faults.active();
  assert.deepEqual(
    active.map((f) => [f.code, f.detail, f.raisedAt, f.lastAt, f.count]),
    [
      ["WELD", "contactor reads closed after open", 10, 20, 2],
      ["METER", "silent 5 s", 30, 30, 1],
    ],
  );
  assert.equal(s.faults.clear("METER", "console", 40), 1);
  assert.equal(s.faults.clear("METER", "console", 41), 0);
  assert.deepEqual(
    s.faults.active().map((f) => f.code),
    ["WELD"],
  );
  assert.equal(s.faults.raise("METER", "back", 50), true);
  assert.equal(s.faults.clear("all", "technician", 60), 2);
  assert.equal(s.faults.active().length, 0);
  const h = s.faults.history(10);
  assert.deepEqual(
    h.map((f) => [f.code, f.clearedAt, f.clearedBy]),
    [
      ["METER", 60, "technician"],
      ["METER", 40, "console"],
      ["WELD", 60, "technician"],
    ],
  );
  assert.equal(s.faults.history(1).length, 1);
});

test("audit: append, list newest first, filter by actor, trim", (t) => {
  const { store } = fresh(t);
  store.audit.append({ at: 1, actor: "ble", action: "PRESENT", outcome: "ACCEPTED", detail: "code 0a0b" });
  store.audit.append({ at: 2, actor: "console", action: "fault-clear", outcome: "ok" });
  store.audit.append({ at: 3, actor: "ble", action: "STOP", outcome: "STOPPED" });
  assert.deepEqual(
    store.audit.list({ limit: 10 }).map((e) => [e.at, e.actor, e.action, e.outcome, e.detail]),
    [
      [3, "ble", "STOP", "STOPPED", null],
      [2, "console", "fault-clear", "ok", null],
      [1, "ble", "PRESENT", "ACCEPTED", "code 0a0b"],
    ],
  );
  assert.deepEqual(
    store.audit.list({ limit: 10, actor: "ble" }).map((e) => e.at),
    [3, 1],
  );
  assert.equal(store.audit.trim(1), 2);
  assert.deepEqual(
    store.audit.list({ limit: 10 }).map((e) => e.at),
    [3],
  );
  assert.equal(store.audit.trim(5), 0);
});

test("secret guard: a 64-hex-digit run in free text is SECRET and nothing is written", (t) => {
  const { store } = fresh(t);
  const key = "9f".repeat(32);
  const upper = "AB".repeat(32);
  refuses(
    () => store.audit.append({ at: 1, actor: "daemon", action: "x", outcome: "y", detail: `k=${key}` }),
    "SECRET",
  );
  refuses(() => store.audit.append({ at: 1, actor: "daemon", action: upper, outcome: "y" }), "SECRET");
  refuses(() => store.faults.raise("KEY", `V ${key}.`, 1), "SECRET");
  const codeId = recordCode(store);
  const sessionId = id();
  store.sessions.begin({
    sessionId,
    codeId,
    keyId: 1,
    deviceId: "VD",
    carrier: "vehicle",
    startedAt: 1,
    meterStartWh: null,
  });
  refuses(
    () => store.sessions.finish(sessionId, { stoppedAt: 2, meterStopWh: null, energyWh: 0, stopReason: key }),
    "SECRET",
  );
  assert.equal(store.audit.list({ limit: 10 }).length, 0);
  assert.equal(store.faults.history(10).length, 0);
  assert.equal(store.sessions.get(sessionId)?.status, "active");
  // 63 hex digits, or 64 broken by a space, are ordinary text.
  store.audit.append({ at: 1, actor: "daemon", action: "x", outcome: "y", detail: key.slice(1) });
  store.audit.append({
    at: 1,
    actor: "daemon",
    action: "x",
    outcome: "y",
    detail: `${key.slice(0, 32)} ${key.slice(32)}`,
  });
  assert.equal(store.audit.list({ limit: 10 }).length, 2);
});

test("an in-memory store works for other layers' tests", () => {
  const s = openStore(":memory:");
  const codeId = recordCode(s, 9n);
  assert.equal(s.ledger.isUsed(codeId), true);
  assert.equal(s.floor.get(), 9n);
  s.close();
});

test("property: prune and the floor follow 64-bit numeric order exactly (BLOB encoding)", () => {
  const u64 = fc.bigInt({ min: 0n, max: U64_MAX });
  const near = fc.oneof(
    u64,
    fc.bigInt({ min: 0n, max: 1000n }),
    fc.bigInt({ min: U64_MAX - 1000n, max: U64_MAX }),
  );
  fc.assert(
    fc.property(fc.array(near, { minLength: 1, maxLength: 20 }), near, (expiries, now) => {
      const s = openStore(":memory:");
      try {
        const ids = expiries.map((exp) => {
          const codeId = id();
          s.ledger.record({ codeId, keyId: 1, issuedAt: 0n, expiresAt: exp });
          return codeId;
        });
        const removed = s.ledger.prune(now);
        assert.equal(removed, expiries.filter((e) => e < now).length);
        ids.forEach((c, i) => {
          assert.equal(s.ledger.isUsed(c), !(expiries[i]! < now));
        });
        let highest = 0n;
        for (const e of expiries) {
          s.floor.raise(e);
          if (e > highest) highest = e;
        }
        assert.equal(s.floor.get(), highest);
      } finally {
        s.close();
      }
    }),
    { numRuns: 200 },
  );
});

test("field report: the audit table is bounded to its configured row cap, newest kept", (t) => {
  const dir = tempDir(t);
  const path = join(dir, "capped.db");
  const store = openStore(path, { auditMaxRows: 50 });
  t.after(() => store.close());
  for (let i = 1; i <= 500; i++)
    store.audit.append({ at: i, actor: "control", action: "stop", outcome: "ok" });
  const rows = store.audit.list({ limit: 1000 });
  assert.equal(rows.length, 50);
  assert.equal(rows[0]!.at, 500, "the newest is kept");
  assert.equal(rows.at(-1)!.at, 451);
  refuses(() => openStore(join(dir, "bad.db"), { auditMaxRows: -1 }), "INVALID");
});

test("audit: the peer's uid and pid are kept; a bad one is refused INVALID", (t) => {
  const { store } = fresh(t);
  store.audit.append({ at: 1, actor: "control", action: "stop", outcome: "ok", uid: 65534, pid: 4321 });
  store.audit.append({ at: 2, actor: "console", action: "login", outcome: "ok" });
  assert.deepEqual(
    store.audit.list({ limit: 10 }).map((e) => [e.action, e.uid, e.pid]),
    [
      ["login", null, null],
      ["stop", 65534, 4321],
    ],
  );
  refuses(
    () => store.audit.append({ at: 3, actor: "control", action: "x", outcome: "ok", uid: -1 }),
    "INVALID",
  );
  refuses(
    () => store.audit.append({ at: 3, actor: "control", action: "x", outcome: "ok", pid: 2 ** 32 }),
    "INVALID",
  );
  assert.equal(store.audit.list({ limit: 10 }).length, 2);
});

test("every connection keeps a bounded page cache (the file grows with every session; the cache does not)", (t) => {
  const path = join(tempDir(t), "piled.db");
  const seen: unknown[] = [];
  const store = openStore(path, {
    onSessionRecord: (db) => seen.push(db.pragma("cache_size", { simple: true })),
  });
  t.after(() => store.close());
  store.sessions.begin(sessionStart(recordCode(store)));
  assert.deepEqual(seen, [-CACHE_KIB], "cache_size in KiB (negative), SQLite's default being 2 MiB");
  assert.ok(CACHE_KIB <= 1024);
});
