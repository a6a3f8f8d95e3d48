/** Opening: schema creation, reopen, migrations, and the files the store must refuse untouched. */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import Database from "better-sqlite3";
import { StoreError, type StoreErrorCode } from "../../src/store/errors.js";
import { APPLICATION_ID, CURRENT_VERSION, type Migration, migrate } from "../../src/store/schema.js";
import { openStore, openStoreWith } from "../../src/store/store.js";
import { id, tempDir } from "./util.js";

function refuses(f: () => unknown, code: StoreErrorCode): void {
  assert.throws(f, (e: unknown) => e instanceof StoreError && e.code === code);
}

/** Asserts the file and its folder are exactly as before `f` ran. */
function leavesUntouched(dir: string, file: string, f: () => void): void {
  const before = readFileSync(file);
  const listing = readdirSync(dir).sort();
  f();
  assert.deepEqual(readFileSync(file), before);
  assert.deepEqual(readdirSync(dir).sort(), listing);
}

/** A real store with enough rows to span many pages (filled in one transaction), closed. */
function filledStore(path: string): void {
  openStore(path).close();
  const raw = new Database(path);
  const ins = raw.prepare(
    "INSERT INTO ledger (code_id, key_id, issued_at, expires_at, device_id, recorded_at) VALUES (?, 1, ?, ?, ?, 0)",
  );
  raw.transaction(() => {
    for (let i = 0; i < 300; i++) ins.run(randomBytes(16), randomBytes(8), randomBytes(8), "VD-".repeat(20));
  })();
  raw.close();
}

test("a new file gets the current schema and marker, and reopens with its data", (t) => {
  const dir = tempDir(t);
  const p = join(dir, "piled.db");
  const s = openStore(p);
  assert.equal(s.schemaVersion, CURRENT_VERSION);
  const code = id();
  s.ledger.record({ codeId: code, keyId: 7, issuedAt: 5n, expiresAt: 10n });
  s.close();
  const raw = new Database(p, { readonly: true });
  assert.equal(raw.pragma("application_id", { simple: true }), APPLICATION_ID);
  assert.equal(raw.pragma("user_version", { simple: true }), CURRENT_VERSION);
  assert.equal(raw.pragma("journal_mode", { simple: true }), "wal");
  raw.close();
  const again = openStore(p);
  assert.equal(again.ledger.isUsed(code), true);
  assert.equal(again.floor.get(), 5n);
  again.close();
});

test("an empty existing file is initialised", (t) => {
  const dir = tempDir(t);
  const p = join(dir, "empty.db");
  writeFileSync(p, "");
  const s = openStore(p);
  assert.equal(s.ledger.count(), 0);
  s.close();
  assert.ok(statSync(p).size > 0);
});

test("a v1 file is migrated to the current version with its data kept", (t) => {
  assert.ok(CURRENT_VERSION >= 2, "this test needs an earlier schema version");
  const dir = tempDir(t);
  const p = join(dir, "v1.db");
  const raw = new Database(p);
  raw.pragma("journal_mode = WAL");
  migrate(raw, 0, 1);
  const code = Buffer.alloc(16, 0xab);
  raw
    .prepare(
      "INSERT INTO ledger (code_id, key_id, issued_at, expires_at, recorded_at) VALUES (?, 3, ?, ?, 0)",
    )
    .run(code, Buffer.from("0000000000000009", "hex"), Buffer.from("00000000000000ff", "hex"));
  raw.close();
  // read-only cannot migrate
  refuses(() => openStore(p, { readonly: true }), "OLD_SCHEMA");
  const s = openStore(p);
  assert.equal(s.schemaVersion, CURRENT_VERSION);
  assert.equal(s.ledger.isUsed(new Uint8Array(code)), true);
  assert.equal(s.ledger.get(new Uint8Array(code))?.expiresAt, 255n);
  s.faults.raise("WELD", "contactor reads closed", 1);
  assert.equal(s.faults.active().length, 1);
  s.close();
});

test("the migration runner applies an ordered list in one transaction, all or nothing", (t) => {
  const dir = tempDir(t);
  const p = join(dir, "m.db");
  const ran: number[] = [];
  const step =
    (version: number, sql: string) =>
    (db: Database.Database): void => {
      if (!db.memory) ran.push(version);
      db.exec(sql);
    };
  const list: Migration[] = [
    { version: 1, up: step(1, "CREATE TABLE a (x)") },
    { version: 2, up: step(2, "CREATE TABLE b (x)") },
  ];
  openStoreWith(p, {}, list.slice(0, 1)).close();
  assert.deepEqual(ran, [1]);
  const s = openStoreWith(p, {}, list);
  assert.deepEqual(ran, [1, 2]);
  assert.equal(s.schemaVersion, 2);
  s.close();

  // A failing step leaves the file at its old version.
  const failing: Migration[] = [
    ...list,
    { version: 3, up: (db) => db.exec("CREATE TABLE c (x)") },
    {
      version: 4,
      up: () => {
        throw new Error("step fails");
      },
    },
  ];
  assert.throws(() => openStoreWith(p, {}, failing));
  const raw = new Database(p, { readonly: true });
  assert.equal(raw.pragma("user_version", { simple: true }), 2);
  assert.equal(raw.prepare("SELECT count(*) FROM sqlite_schema WHERE name = 'c'").pluck().get(), 0);
  raw.close();

  // A list out of order is refused.
  refuses(() => openStoreWith(join(dir, "n.db"), {}, [list[1]!, list[0]!]), "INVALID");
});

test("a file from a newer piled is refused NEWER_SCHEMA and left untouched", (t) => {
  const dir = tempDir(t);
  const p = join(dir, "new.db");
  openStore(p).close();
  const raw = new Database(p);
  raw.pragma(`user_version = ${CURRENT_VERSION + 1}`);
  raw.close();
  leavesUntouched(dir, p, () => refuses(() => openStore(p), "NEWER_SCHEMA"));
});

test("random bytes are CORRUPT and left byte-identical", (t) => {
  const dir = tempDir(t);
  const p = join(dir, "rand.db");
  writeFileSync(p, randomBytes(8192));
  leavesUntouched(dir, p, () => refuses(() => openStore(p), "CORRUPT"));
});

test("a valid SQLite header followed by garbage is CORRUPT and left byte-identical", (t) => {
  const dir = tempDir(t);
  const good = join(dir, "good.db");
  filledStore(good);
  const header = readFileSync(good).subarray(0, 100);
  const p = join(dir, "garbage.db");
  writeFileSync(p, Buffer.concat([header, randomBytes(4096 * 4 - 100)]));
  leavesUntouched(dir, p, () => refuses(() => openStore(p), "CORRUPT"));
});

test("a truncated store is CORRUPT and left byte-identical", (t) => {
  const dir = tempDir(t);
  const p = join(dir, "trunc.db");
  filledStore(p);
  const size = statSync(p).size;
  assert.ok(size >= 4096 * 8, "the store must span several pages");
  truncateSync(p, 4096 * 3);
  leavesUntouched(dir, p, () => refuses(() => openStore(p), "CORRUPT"));
  truncateSync(p, 60);
  leavesUntouched(dir, p, () => refuses(() => openStore(p), "CORRUPT"));
});

test("a store whose page content is damaged is CORRUPT (quick_check)", (t) => {
  const dir = tempDir(t);
  const p = join(dir, "damaged.db");
  filledStore(p);
  const buf = readFileSync(p);
  // Overwrite the middle pages (ledger b-tree pages) with garbage, keeping page 1 (the schema).
  randomBytes(4096 * 3).copy(buf, 4096 * 3);
  writeFileSync(p, buf);
  leavesUntouched(dir, p, () => refuses(() => openStore(p), "CORRUPT"));
});

test("another application's SQLite file is FOREIGN and left untouched", (t) => {
  const dir = tempDir(t);
  const p = join(dir, "other.db");
  const raw = new Database(p);
  raw.exec("CREATE TABLE contacts (name TEXT)");
  raw.prepare("INSERT INTO contacts VALUES (?)").run("x");
  raw.close();
  leavesUntouched(dir, p, () => refuses(() => openStore(p), "FOREIGN"));

  const q = join(dir, "other-app.db");
  const raw2 = new Database(q);
  raw2.pragma("application_id = 1234");
  raw2.close();
  leavesUntouched(dir, q, () => refuses(() => openStore(q), "FOREIGN"));
});

test("a piled-marked file holding unknown tables is FOREIGN and left untouched", (t) => {
  const dir = tempDir(t);
  const p = join(dir, "extra.db");
  openStore(p).close();
  const raw = new Database(p);
  raw.exec("CREATE TABLE stranger (x)");
  raw.close();
  leavesUntouched(dir, p, () => refuses(() => openStore(p), "FOREIGN"));
});

test("a piled-marked file missing a table is CORRUPT", (t) => {
  const dir = tempDir(t);
  const p = join(dir, "missing.db");
  openStore(p).close();
  const raw = new Database(p);
  raw.exec("DROP TABLE audit");
  raw.close();
  leavesUntouched(dir, p, () => refuses(() => openStore(p), "CORRUPT"));
});

test("a missing file opened read-only, or an unusable path, is IO", (t) => {
  const dir = tempDir(t);
  refuses(() => openStore(join(dir, "absent.db"), { readonly: true }), "IO");
  refuses(() => openStore(join(dir, "no", "such", "dir.db")), "IO");
  refuses(() => openStore(""), "INVALID");
});

test("a read-only store reads and refuses writes with READONLY", (t) => {
  const dir = tempDir(t);
  const p = join(dir, "ro.db");
  const w = openStore(p);
  const code = id();
  w.ledger.record({ codeId: code, keyId: 1, issuedAt: 1n, expiresAt: 2n });
  const r = openStore(p, { readonly: true });
  assert.equal(r.ledger.isUsed(code), true);
  refuses(() => r.ledger.record({ codeId: id(), keyId: 1, issuedAt: 1n, expiresAt: 2n }), "READONLY");
  r.close();
  w.close();
});

test("a write blocked by another connection's lock beyond the busy timeout is LOCKED, and changes nothing", (t) => {
  const dir = tempDir(t);
  const p = join(dir, "lock.db");
  const s = openStore(p, { busyTimeoutMs: 20 });
  const other = new Database(p);
  other.exec("BEGIN IMMEDIATE");
  const code = id();
  refuses(() => s.ledger.record({ codeId: code, keyId: 1, issuedAt: 9n, expiresAt: 10n }), "LOCKED");
  other.exec("ROLLBACK");
  other.close();
  assert.equal(s.ledger.isUsed(code), false);
  assert.equal(s.floor.get(), 0n);
  s.close();
});

test("a closed store refuses every call with CLOSED; close is idempotent", (t) => {
  const dir = tempDir(t);
  const s = openStore(join(dir, "c.db"));
  s.close();
  s.close();
  refuses(() => s.ledger.count(), "CLOSED");
  refuses(() => s.floor.get(), "CLOSED");
  refuses(() => s.sessions.active(), "CLOSED");
});
