/** `pilectl store recover`: the explicit, audited way out of a refused store. */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { main } from "../../src/cli/main.js";
import { StoreError } from "../../src/store/errors.js";
import { openStore } from "../../src/store/store.js";

async function pilectl(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(args, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

test("field report: pilectl store recover accepts a refused store, keeps it aside and raises the floor to now", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "piled-cli-store-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const p = join(dir, "piled.db");
  const s = openStore(p);
  const code = new Uint8Array(randomBytes(16));
  s.ledger.record({ codeId: code, keyId: 1, issuedAt: 1000n, expiresAt: BigInt(Date.now() + 600_000) });
  s.close();
  truncateSync(p, 0);
  assert.throws(
    () => openStore(p),
    (e: unknown) => e instanceof StoreError && e.code === "LOST_PAST",
  );

  // Not without --yes, and nothing moves.
  const listing = readdirSync(dir).sort();
  const no = await pilectl(["store", "recover", "--db", p]);
  assert.equal(no.code, 2);
  assert.deepEqual(readdirSync(dir).sort(), listing);
  assert.equal((await pilectl(["store", "recover", "--db", p, "--yes", "--floor-ms", "-1"])).code, 2);

  const before = Date.now();
  const r = await pilectl(["store", "recover", "--db", p, "--yes", "--reason", "bench test"]);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out.trim()) as { floorMs: string; keptAs: string[] };
  assert.ok(BigInt(j.floorMs) >= BigInt(before));
  assert.equal(j.keptAs.length, 2);
  assert.doesNotMatch(r.out, /[0-9a-f]{64}/, "the store key never reaches the output");
  const after = openStore(p);
  assert.ok(after.floor.get() >= BigInt(before));
  assert.equal(after.audit.list({ limit: 1 })[0]?.action, "store.recover");
  after.close();
});
