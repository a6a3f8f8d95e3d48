/**
 * The identity file in two slots: a change of the marks overwrites the older slot in place (no
 * new inode, no rename); a torn or damaged slot leaves the other; the first format still reads.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { StoreError } from "../../src/store/errors.js";
import {
  encodeIdentity,
  type Identity,
  identityPath,
  newIdentity,
  readIdentity,
  SLOT,
  writeIdentity,
  writeMarks,
} from "../../src/store/identity.js";
import { openStore } from "../../src/store/index.js";

const marks = (ledgerRows: number) => ({ ledgerRows, floor: BigInt(1_000 + ledgerRows), latched: 0 });
const withMarks = (id: Identity, n: number): Identity => ({ ...id, marks: marks(n) });

function dir(t: { after(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), "piled-ident-"));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

test("a change of the marks overwrites a slot in place: the same inode, the newest marks read back", (t) => {
  const path = join(dir(t), "piled.id");
  const id = newIdentity(marks(0));
  writeIdentity(path, id);
  assert.equal(statSync(path).size, 2 * SLOT);
  const ino = statSync(path).ino;
  for (let n = 1; n <= 5; n++) {
    writeMarks(path, withMarks(id, n));
    assert.equal(statSync(path).ino, ino, "no rename: the marks are written in place");
    assert.equal(statSync(path).size, 2 * SLOT);
    assert.deepEqual(readIdentity(path)?.marks, marks(n));
  }
  assert.ok(readIdentity(path)?.key.equals(id.key));
});

test("a change made by another connection since this one's last write is read, not assumed", (t) => {
  const d = dir(t);
  const path = join(d, "piled.id");
  const other = join(d, "other.id");
  const id = newIdentity(marks(0));
  writeIdentity(path, id);
  writeMarks(path, withMarks(id, 1));
  // another connection of the store (the write worker) changes the marks: modelled by the same
  // write made through another path, its result copied over this one
  writeFileSync(other, readFileSync(path));
  writeMarks(other, withMarks(id, 2));
  writeFileSync(path, readFileSync(other));
  writeMarks(path, withMarks(id, 3));
  // the write of 3 must have gone over the older slot (1), keeping 2: tear 3 and 2 is what is left
  const b = readFileSync(path);
  const newest = b.subarray(0, SLOT).includes('"ledgerRows":3') ? 0 : 1;
  b[newest * SLOT + 40] = (b[newest * SLOT + 40] ?? 0) ^ 0x01;
  writeFileSync(path, b);
  assert.deepEqual(readIdentity(path)?.marks, marks(2), "the newest slot of the other connection kept");
});

test("a torn newest slot leaves the one before it; both damaged is CORRUPT", (t) => {
  const path = join(dir(t), "piled.id");
  const id = newIdentity(marks(0));
  writeIdentity(path, id);
  writeMarks(path, withMarks(id, 1));
  writeMarks(path, withMarks(id, 2));
  const b = readFileSync(path);
  // the newest (marks 2) went to the slot the older one held: find it by its text
  const newest = b.subarray(0, SLOT).includes('"ledgerRows":2') ? 0 : 1;
  const torn = Buffer.from(b);
  torn[newest * SLOT + 40] = (torn[newest * SLOT + 40] ?? 0) ^ 0x01;
  writeFileSync(path, torn);
  assert.deepEqual(readIdentity(path)?.marks, marks(1), "one change behind, never a mix");
  writeMarks(path, withMarks(id, 3)); // over the torn slot, the good one kept
  assert.deepEqual(readIdentity(path)?.marks, marks(3));
  const both = readFileSync(path);
  both[40] = (both[40] ?? 0) ^ 0x01;
  both[SLOT + 40] = (both[SLOT + 40] ?? 0) ^ 0x01;
  writeFileSync(path, both);
  assert.throws(
    () => readIdentity(path),
    (e) => e instanceof StoreError && e.code === "CORRUPT",
  );
});

test("a file of the first format (one JSON line) is read, and written in two slots at its next change", (t) => {
  const path = join(dir(t), "piled.id");
  const id = newIdentity(marks(4));
  writeFileSync(path, encodeIdentity(id), { mode: 0o600 });
  assert.deepEqual(readIdentity(path)?.marks, marks(4));
  writeMarks(path, withMarks(id, 5));
  assert.equal(statSync(path).size, 2 * SLOT);
  assert.deepEqual(readIdentity(path)?.marks, marks(5));
  assert.ok(readIdentity(path)?.storeId.equals(id.storeId));
});

test("slots of two stores in one file are not an identity", (t) => {
  const path = join(dir(t), "piled.id");
  const a = join(dir(t), "a.id");
  const b = join(dir(t), "b.id");
  writeIdentity(a, newIdentity(marks(1)));
  writeIdentity(b, newIdentity(marks(1)));
  writeFileSync(path, Buffer.concat([readFileSync(a).subarray(0, SLOT), readFileSync(b).subarray(SLOT)]));
  assert.throws(
    () => readIdentity(path),
    (e) => e instanceof StoreError && e.code === "CORRUPT",
  );
});

test("an accepted code's marks change the identity file in place, not by a new file and a rename", (t) => {
  const d = dir(t);
  const store = openStore(join(d, "piled.db"));
  t.after(() => store.close());
  const idFile = identityPath(join(d, "piled.db"));
  const ino = statSync(idFile).ino;
  for (let i = 1; i <= 3; i++) {
    store.ledger.record({
      codeId: new Uint8Array(16).fill(i),
      keyId: 1,
      issuedAt: 1000n * BigInt(i),
      expiresAt: 1000n * BigInt(i) + 60_000n,
      carrier: "vehicle",
      deviceId: "VD-1",
    });
    assert.equal(statSync(idFile).ino, ino, `code ${i}: the same file`);
  }
  assert.equal(readIdentity(idFile)?.marks.ledgerRows, 3);
});
