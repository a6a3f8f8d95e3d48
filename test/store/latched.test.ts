/** The stop step's read of the latched faults: read-only, never creating or altering the file. */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { readLatchedFaults } from "../../src/store/latched.js";
import { openStore } from "../../src/store/store.js";
import { tempDir } from "./util.js";

test("field report: a latched weld is undone by the stop step: the latched faults are read without writing", (t) => {
  const dir = tempDir(t);
  const path = join(dir, "piled.db");
  const s = openStore(path);
  s.faults.raise("WELD", "contactor reads closed while commanded open", 1000);
  s.faults.raise("LOCK_LOST", "lock released during a session", 1001);
  s.faults.clear("LOCK_LOST", "technician", 1002);
  s.close();
  const before = readFileSync(path);
  assert.deepEqual(readLatchedFaults(path), { readable: true, codes: ["WELD"] });
  assert.deepEqual(readFileSync(path), before, "the file is as it was");
  // A read-only reader of a WAL file may leave the (empty) -wal and -shm beside it: SQLite's own.
  for (const f of readdirSync(dir)) if (f.endsWith("-wal")) assert.equal(statSync(join(dir, f)).size, 0, f);
});

test("the latched faults are read while the daemon still holds the store open", (t) => {
  const dir = tempDir(t);
  const path = join(dir, "piled.db");
  const s = openStore(path);
  s.faults.raise("WELD", "contactor reads closed while commanded open", 1000);
  try {
    assert.deepEqual(readLatchedFaults(path), { readable: true, codes: ["WELD"] });
  } finally {
    s.close();
  }
});

test("a store that is missing or damaged is unreadable, and is neither created nor touched", (t) => {
  const dir = tempDir(t);
  const missing = readLatchedFaults(join(dir, "piled.db"));
  assert.equal(missing.readable, false);
  assert.deepEqual(readdirSync(dir), [], "no file was created");
  const junk = join(dir, "junk.db");
  writeFileSync(junk, "not a database at all, just text".repeat(200));
  const damaged = readLatchedFaults(junk);
  assert.equal(damaged.readable, false);
  assert.ok(!damaged.readable && /CORRUPT|FOREIGN|IO/.test(damaged.detail), JSON.stringify(damaged));
});
