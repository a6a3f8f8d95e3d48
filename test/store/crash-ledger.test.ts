/**
 * Crash test of the replay ledger: a child records a code and only then prints "ACCEPTED"; the
 * parent SIGKILLs it the instant it reads the line (or a few lines later), reopens the store and
 * requires every code it was told about to be there, with the floor raised to it. A SIGKILL
 * tests SQLite's atomic commit and WAL recovery; durability against power loss rests on
 * synchronous=FULL, which a process kill cannot show.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import Database from "better-sqlite3";
import { openStore } from "../../src/store/index.js";
import { prng, spawnFixture, tempDir, unhex } from "./util.js";

const KILLS = 50;

test(`every code reported ACCEPTED survives a SIGKILL (${KILLS} kills)`, async (t) => {
  const seed = Number(process.env["PILED_CRASH_SEED"] ?? Date.now() % 1_000_000);
  t.diagnostic(`seed ${seed} (PILED_CRASH_SEED to replay)`);
  const rand = prng(seed);
  const path = join(tempDir(t), "piled.db");
  const reported = new Map<string, bigint>();
  let highest = 0n;
  for (let k = 0; k < KILLS; k++) {
    // Half the kills land on the first ACCEPTED line, the rest a few lines later.
    const killAfter = rand() < 0.5 ? 1 : 1 + Math.floor(rand() * 8);
    let accepted = 0;
    const child = spawnFixture(t, "ledger-child.js", [path, String(1_000_000 * (k + 1))], (line, c) => {
      if (line.startsWith("ACCEPTED ") && ++accepted >= killAfter) c.kill();
    });
    const end = await child.done;
    assert.equal(end.signal, "SIGKILL", `child ${k} ended by itself: code ${end.code}, stderr ${end.stderr}`);
    const lines = child.lines.filter((l) => l.startsWith("ACCEPTED "));
    assert.ok(lines.length >= killAfter, `child ${k} was killed before reporting`);
    for (const l of lines) {
      const [, codeHex, issued] = l.split(" ");
      reported.set(codeHex!, BigInt(issued!));
      if (BigInt(issued!) > highest) highest = BigInt(issued!);
    }

    const store = openStore(path);
    try {
      for (const [codeHex, issuedAt] of reported) {
        const e = store.ledger.get(unhex(codeHex));
        assert.ok(e, `code ${codeHex} reported ACCEPTED is missing after kill ${k}`);
        assert.equal(e.issuedAt, issuedAt);
      }
      assert.ok(store.floor.get() >= highest, `floor ${store.floor.get()} below reported ${highest}`);
      assert.ok(store.ledger.count() >= reported.size);
    } finally {
      store.close();
    }
  }
  const raw = new Database(path, { readonly: true });
  assert.equal(raw.pragma("integrity_check", { simple: true }), "ok");
  raw.close();
});
