/**
 * Kill-aimed crash tier of the daemon's control loop (fixture runtime-child): the child holds at
 * the instant the lock is about to move and the parent SIGKILLs it there, then reads the store.
 * - At the lock's engaging for a session: the code spent in the ledger has its session row, and
 *   the ledger row keeps the carrier and device.
 * - At the lock's release after the carrier's STOP (FINISHING): the session is already recorded
 *   finished with its stop reason and energy, and the carrier was told before.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import Database from "better-sqlite3";
import { openStore } from "../../src/store/index.js";
import { spawnFixture, tempDir } from "./util.js";

const KILLS = 6;

async function killAt(t: TestContext, dir: string, key: string, mode: "start" | "finish"): Promise<string[]> {
  let stopConn: string | undefined;
  const child = spawnFixture(t, "runtime-child.js", [dir, key, mode], (line, c) => {
    if (line.startsWith("STOPPING ")) stopConn = line.slice(9);
    if (mode === "start" && line === "OUT lock:true" && c.lines.includes("READY")) c.kill();
    if (mode === "finish" && line === "OUT lock:false" && stopConn !== undefined) c.kill();
  });
  const end = await child.done;
  assert.equal(end.signal, "SIGKILL", `child ended by itself: code ${end.code}, stderr ${end.stderr}`);
  return child.lines;
}

test(`field report: killed as the lock engages, every spent code has its session row (${KILLS} kills)`, async (t) => {
  const dir = tempDir(t);
  const key = randomBytes(32).toString("hex");
  for (let k = 0; k < KILLS; k++) {
    await killAt(t, dir, key, "start");
    const raw = new Database(join(dir, "piled.db"), { readonly: true });
    try {
      const orphans = raw
        .prepare("SELECT count(*) FROM ledger WHERE code_id NOT IN (SELECT code_id FROM sessions)")
        .pluck()
        .get();
      assert.equal(orphans, 0, `kill ${k}: a code spent with no session row`);
      const rows = raw.prepare("SELECT carrier, device_id FROM ledger").all() as Record<string, unknown>[];
      assert.equal(rows.length, k + 1);
      for (const r of rows) assert.deepEqual(r, { carrier: "vehicle", device_id: "VIN-K" });
    } finally {
      raw.close();
    }
  }
});

test(`field report: killed as the lock releases after a STOP, the session is recorded finished (${KILLS} kills)`, async (t) => {
  const dir = tempDir(t);
  const key = randomBytes(32).toString("hex");
  for (let k = 0; k < KILLS; k++) {
    const lines = await killAt(t, dir, key, "finish");
    const store = openStore(join(dir, "piled.db"), { readonly: true });
    try {
      const [s] = store.sessions.list({ limit: 1 });
      assert.equal(s?.status, "finished", `kill ${k}: ${JSON.stringify(s)}`);
      assert.equal(s?.stopReason, "CARRIER_STOP");
      assert.equal(s?.energySource, "meter");
      assert.ok(s.meterStartWh !== null && s.meterStopWh !== null && s.energyWh > 0, JSON.stringify(s));
      assert.ok(Math.abs(s.meterStopWh - s.meterStartWh - s.energyWh) < 1e-6);
    } finally {
      store.close();
    }
    // After the contactor opened: the STATUS FINISHING and the RESULT STOPPED to the stopping
    // connection, both before the lock's release.
    const stopAt = lines.findIndex((l) => l.startsWith("STOPPING "));
    const stopConn = lines[stopAt]?.slice(9);
    const opened = lines.indexOf("OUT contactor:false", stopAt);
    const released = lines.lastIndexOf("OUT lock:false");
    const told = lines.slice(opened, released).filter((l) => l === `NOTIFY ${stopConn}`).length;
    assert.ok(
      opened > stopAt && told >= 2,
      `kill ${k}: the carrier was not told first: ${lines.slice(stopAt).join(" ")}`,
    );
  }
});
