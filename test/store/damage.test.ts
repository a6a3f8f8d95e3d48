/**
 * The store-damage tier: a truncated, flipped, emptied, replaced or rolled-back store is never
 * taken as new, and a dropped or changed ledger id is never accepted as unused.
 */
import assert from "node:assert/strict";
import {
  copyFileSync,
  existsSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import Database from "better-sqlite3";
import { StoreError, type StoreErrorCode } from "../../src/store/errors.js";
import { identityPath } from "../../src/store/identity.js";
import { openStore, recoverStore } from "../../src/store/store.js";
import type { Store } from "../../src/store/types.js";
import { id, prng, tempDir } from "./util.js";

function refuses(f: () => unknown, ...codes: StoreErrorCode[]): StoreErrorCode {
  let got: StoreErrorCode | undefined;
  assert.throws(f, (e: unknown) => {
    if (!(e instanceof StoreError) || !codes.includes(e.code)) return false;
    got = e.code;
    return true;
  });
  return got as StoreErrorCode;
}

const NOW = 1_900_000_000_000;

/** A store that has lived: codes recorded (spanning many pages), a latched WELD, a time floor. */
function livedStore(path: string, n = 200): Uint8Array[] {
  const s = openStore(path, { clock: () => NOW });
  const codes: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const c = id();
    codes.push(c);
    s.ledger.record({
      codeId: c,
      keyId: 1,
      issuedAt: BigInt(NOW - 60_000 + i),
      expiresAt: BigInt(NOW + 600_000),
      deviceId: `VD-${i}-${"x".repeat(40)}`,
    });
  }
  s.faults.raise("WELD", "contactor reads closed", NOW);
  s.close();
  return codes;
}

/** Opening either refuses with a typed error or gives back every code, the WELD and the floor. */
function neverForgets(path: string, codes: Uint8Array[], floor: bigint): "refused" | "opened" {
  let s: Store;
  try {
    s = openStore(path, { clock: () => NOW });
  } catch (e) {
    assert.ok(e instanceof StoreError, `untyped error: ${String(e)}`);
    return "refused";
  }
  try {
    for (const c of codes) {
      let used: boolean | undefined;
      try {
        used = s.ledger.isUsed(c);
      } catch (e) {
        assert.ok(e instanceof StoreError && e.code === "CORRUPT", "a failed lookup is CORRUPT");
        continue;
      }
      assert.equal(used, true, "a recorded code id was dropped and would be accepted");
    }
    assert.ok(s.floor.get() >= floor, "the time floor went down");
    assert.ok(
      s.faults.active().some((f) => f.code === "WELD"),
      "the latched WELD vanished",
    );
    return "opened";
  } finally {
    s.close();
  }
}

test("field report: a store truncated to 0 bytes, 1 byte or half is refused, never taken as new", (t) => {
  const dir = tempDir(t);
  const p = join(dir, "piled.db");
  const codes = livedStore(p);
  const orig = readFileSync(p);
  for (const size of [0, 1, Math.floor(orig.length / 2)]) {
    writeFileSync(p, orig);
    truncateSync(p, size);
    const code = refuses(() => openStore(p), "LOST_PAST", "CORRUPT");
    if (size === 0) assert.equal(code, "LOST_PAST");
    assert.equal(readFileSync(p).length, size, "the refused file is left as found");
  }
  // A deleted database is not re-created.
  rmSync(p);
  refuses(() => openStore(p), "LOST_PAST");
  assert.equal(existsSync(p), false);
  writeFileSync(p, orig);
  assert.equal(neverForgets(p, codes, BigInt(NOW - 60_000 + 199)), "opened");
});

test("field report: a byte flipped anywhere in any page never opens with a dropped ledger id accepted", (t) => {
  const dir = tempDir(t);
  const p = join(dir, "piled.db");
  const codes = livedStore(p);
  const orig = readFileSync(p);
  const idFile = existsSync(identityPath(p)) ? readFileSync(identityPath(p)) : undefined;
  const pageSize = 4096;
  const pages = Math.ceil(orig.length / pageSize);
  assert.ok(pages >= 8, `the store must span several pages (has ${pages})`);
  const seed = 0x5eed;
  const rnd = prng(seed);
  const floor = BigInt(NOW - 60_000 + 199);
  let refused = 0;
  let opened = 0;
  for (let page = 0; page < pages; page++) {
    for (let k = 0; k < 6; k++) {
      const buf = Buffer.from(orig);
      const at = page * pageSize + Math.floor(rnd() * pageSize);
      if (at >= buf.length) continue;
      buf[at] = (buf[at] ?? 0) ^ (1 << Math.floor(rnd() * 8));
      for (const f of readdirSync(dir)) rmSync(join(dir, f));
      writeFileSync(p, buf);
      if (idFile !== undefined) writeFileSync(identityPath(p), idFile);
      if (neverForgets(p, codes, floor) === "refused") refused++;
      else opened++;
    }
  }
  console.log(
    `byte flips (seed ${seed}): ${pages} pages, ${refused} refused, ${opened} opened with every code`,
  );
  assert.ok(refused > 0);
});

test("field report: a ledger row whose code id changed is CORRUPT, at open and at lookup", (t) => {
  const dir = tempDir(t);
  const p = join(dir, "piled.db");
  const codes = livedStore(p, 5);
  const raw = new Database(p);
  raw
    .prepare("UPDATE ledger SET code_id = ? WHERE code_id = ?")
    .run(Buffer.from(id()), Buffer.from(codes[2]!));
  raw.close();
  refuses(() => openStore(p), "CORRUPT");

  const q = join(dir, "live.db");
  const live = livedStore(q, 3);
  const s = openStore(q);
  const other = new Database(q);
  other.prepare("UPDATE ledger SET device_id = 'VD-forged' WHERE code_id = ?").run(Buffer.from(live[1]!));
  other.close();
  refuses(() => s.ledger.isUsed(live[1]!), "CORRUPT");
  refuses(() => s.ledger.get(live[1]!), "CORRUPT");
  assert.equal(s.ledger.isUsed(live[0]!), true);
  s.close();
});

test("field report: an added trigger, index or view, or a changed index, is FOREIGN and left untouched", (t) => {
  const dir = tempDir(t);
  const cases = [
    "CREATE TRIGGER forget AFTER INSERT ON ledger BEGIN DELETE FROM ledger; END",
    "CREATE INDEX stranger ON ledger (device_id)",
    "CREATE VIEW v AS SELECT * FROM ledger",
    "DROP INDEX ledger_expiry; CREATE INDEX ledger_expiry ON ledger (recorded_at)",
  ];
  cases.forEach((sql, i) => {
    const p = join(dir, `f${i}.db`);
    livedStore(p, 2);
    const raw = new Database(p);
    raw.exec(sql);
    raw.close();
    const before = readFileSync(p);
    refuses(() => openStore(p), "FOREIGN");
    assert.deepEqual(readFileSync(p), before);
  });
});

test("field report: a store that lost its past is LOST_PAST: replaced, identity gone, rows, floor or WELD rolled back", (t) => {
  const dir = tempDir(t);
  const p = join(dir, "piled.db");
  livedStore(p, 4);
  const orig = readFileSync(p);
  const idFile = existsSync(identityPath(p)) ? readFileSync(identityPath(p)) : undefined;
  const reset = () => {
    for (const f of readdirSync(dir)) rmSync(join(dir, f));
    writeFileSync(p, orig);
    if (idFile !== undefined) writeFileSync(identityPath(p), idFile);
  };
  const rawExec = (sql: string) => {
    const raw = new Database(p);
    raw.exec(sql);
    raw.close();
  };
  // Another store's database in its place.
  const other = join(dir, "other.db");
  livedStore(other, 1);
  copyFileSync(other, p);
  refuses(() => openStore(p), "LOST_PAST");
  reset();
  // A fresh database in its place (same schema, nothing lived).
  rmSync(p);
  const fresh = new Database(p);
  fresh.close();
  refuses(() => openStore(p), "LOST_PAST");
  reset();
  rmSync(identityPath(p));
  refuses(() => openStore(p), "LOST_PAST");
  reset();
  rawExec("DELETE FROM ledger WHERE code_id IN (SELECT code_id FROM ledger LIMIT 1)");
  refuses(() => openStore(p), "LOST_PAST");
  reset();
  rawExec("UPDATE time_floor SET ms = zeroblob(8)");
  refuses(() => openStore(p), "LOST_PAST");
  reset();
  rawExec("DELETE FROM faults");
  refuses(() => openStore(p), "LOST_PAST");
  reset();
  writeFileSync(identityPath(p), "{not json");
  refuses(() => openStore(p), "CORRUPT");
  reset();
  // Untouched, it opens; a prune and a clear through the store lower the marks with them.
  const s = openStore(p, { clock: () => NOW });
  assert.equal(s.ledger.prune(BigInt(NOW + 600_001)), 4);
  assert.equal(s.faults.clear("WELD", "technician", NOW + 1), 1);
  s.close();
  const again = openStore(p);
  assert.equal(again.ledger.count(), 0);
  again.close();
});

test("field report: recovery is explicit, keeps the damaged files, raises the floor to now and is audited", (t) => {
  const dir = tempDir(t);
  const p = join(dir, "piled.db");
  const codes = livedStore(p, 3);
  truncateSync(p, 0);
  refuses(() => openStore(p), "LOST_PAST");
  const later = NOW + 5_000;
  const r = recoverStore(p, { clock: () => later, reason: "disk replaced" });
  assert.equal(r.floor, BigInt(later));
  assert.equal(r.store.floor.get(), BigInt(later));
  assert.ok(r.keptAs.includes(`piled.db.damaged-${later}`));
  assert.ok(r.keptAs.includes(`piled.id.damaged-${later}`));
  const a = r.store.audit.list({ limit: 5 });
  assert.equal(a[0]?.action, "store.recover");
  assert.equal(r.store.ledger.isUsed(codes[0]!), false);
  r.store.close();
  assert.equal(readFileSync(join(dir, `piled.db.damaged-${later}`)).length, 0);
  assert.doesNotMatch(readFileSync(join(dir, `piled.id`), "utf8"), /damaged/);
  const s = openStore(p);
  assert.equal(s.floor.get(), BigInt(later));
  s.close();
});
