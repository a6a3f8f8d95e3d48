/**
 * Crash test of the session records: a child runs sessions in a loop and reports each finish;
 * the parent SIGKILLs it at random instants, then on reopen every reported session is there,
 * finished, with its figures; at most one session is left open, and markInterrupted closes it
 * with at least the energy last reported for it. The file passes integrity_check every time.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import Database from "better-sqlite3";
import { openStore } from "../../src/store/index.js";
import { prng, spawnFixture, tempDir, unhex } from "./util.js";

const KILLS = 40;

interface Finished {
  energyWh: number;
  meterStopWh: number;
  stoppedAt: number;
  stopReason: string;
}

test(`sessions survive SIGKILL at ${KILLS} random instants`, async (t) => {
  const seed = Number(process.env["PILED_CRASH_SEED"] ?? Date.now() % 1_000_000);
  t.diagnostic(`seed ${seed} (PILED_CRASH_SEED to replay)`);
  const rand = prng(seed);
  const path = join(tempDir(t), "piled.db");
  const finished = new Map<string, Finished>();
  let interruptedSeen = 0;
  for (let k = 0; k < KILLS; k++) {
    const lastProgress = new Map<string, number>();
    // Kill point: a random number of reported writes into the run, then a random delay, so the
    // kill lands anywhere in begin → progress … → finish whatever the machine's fsync speed.
    const afterLines = Math.floor(rand() * 14);
    const delayMs = Math.floor(rand() * 8);
    let seen = -1;
    let armed!: () => void;
    const trigger = new Promise<void>((r) => {
      armed = r;
    });
    const child = spawnFixture(t, "sessions-child.js", [path, String(seed + k)], (line) => {
      const [kind, sid, a, b, c, d] = line.split(" ");
      if (++seen === afterLines) armed();
      if (kind === "PROGRESS") lastProgress.set(sid!, Number(a));
      else if (kind === "FINISHED") {
        finished.set(sid!, {
          energyWh: Number(a),
          meterStopWh: Number(b),
          stoppedAt: Number(c),
          stopReason: d!,
        });
        lastProgress.delete(sid!);
      }
    });
    await Promise.race([trigger, child.done]);
    if (delayMs > 0) await sleep(delayMs);
    child.kill();
    const end = await child.done;
    assert.equal(end.signal, "SIGKILL", `child ${k} ended by itself: code ${end.code}, stderr ${end.stderr}`);

    const raw = new Database(path, { readonly: true });
    const open = raw.prepare("SELECT count(*) FROM sessions WHERE status = 'active'").pluck().get();
    assert.equal(raw.pragma("integrity_check", { simple: true }), "ok");
    raw.close();
    assert.ok(Number(open) <= 1, `${open} sessions left open after kill ${k}`);

    const store = openStore(path);
    try {
      for (const [sid, f] of finished) {
        const s = store.sessions.get(unhex(sid));
        assert.ok(s, `session ${sid} reported FINISHED is missing after kill ${k}`);
        assert.equal(s.status, "finished");
        assert.deepEqual(
          {
            energyWh: s.energyWh,
            meterStopWh: s.meterStopWh,
            stoppedAt: s.stoppedAt,
            stopReason: s.stopReason,
          },
          f,
        );
        assert.equal(s.meterStopWh! - s.meterStartWh!, s.energyWh);
        assert.deepEqual(s.faults, f.stopReason === "STOPPED" ? [] : ["LIMIT"]);
      }
      const before = store.sessions.active();
      const out = store.sessions.markInterrupted(Date.now());
      assert.equal(out.length, before === undefined ? 0 : 1);
      const [cut] = out;
      if (cut !== undefined) {
        interruptedSeen++;
        const sid = Buffer.from(cut.sessionId).toString("hex");
        assert.equal(cut.status, "interrupted");
        assert.equal(cut.stopReason, "INTERRUPTED");
        assert.equal(finished.has(sid), false);
        assert.ok(
          cut.energyWh >= (lastProgress.get(sid) ?? 0),
          "interrupted below its last reported progress",
        );
        assert.equal(cut.stoppedAt, cut.progressAt ?? cut.startedAt);
      }
      assert.equal(store.sessions.active(), undefined);
    } finally {
      store.close();
    }
  }
  t.diagnostic(`${finished.size} sessions reported finished, ${interruptedSeen} interrupted by a kill`);
  assert.ok(finished.size > 0, "no child ever finished a session: the kills came too early to test anything");
});
