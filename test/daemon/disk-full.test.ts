/**
 * The disk-full tier: the state directory on a tmpfs of 4 MiB in a private mount namespace
 * (`unshare -m`, as root), the real runtime, pile core and store on it (disk-full-child.ts) through
 * whole sessions while a filler file takes every free byte and gives it back. A record that cannot
 * be written is a fault: the code is refused (FAULTED), nothing is charged without its record,
 * status names the reason and the free space, and once space is back the held record is written
 * and the fault clears. Below the free-space threshold the pile is UNAVAILABLE ("disk low") before
 * any write fails.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const CHILD = join(here, "disk-full-child.js");

interface Attempt {
  outcome: string;
  recorded: boolean;
  contactorClosed: boolean;
}
interface Status {
  view: {
    state: string;
    unavailableBecause: string[];
    store: { freeBytes: number | null; fault: string | null; pending: number };
  };
  text: string;
}

const rootReason = process.getuid?.() === 0 ? undefined : "needs root: a tmpfs in a private mount namespace";
if (rootReason) console.log(`disk-full tier skipped: ${rootReason}`);

test("field report: a full state directory: codes refused cleanly, nothing charged without a record, the reason in status, recovery once space frees", {
  timeout: 120_000,
  skip: rootReason,
}, () => {
  const mnt = mkdtempSync(join(tmpdir(), "piled-full-"));
  try {
    const script = 'mount -t tmpfs -o size=4m,mode=0700 piled-full "$1" && TMPDIR="$1" exec "$2" "$3"';
    const r = spawnSync(
      "unshare",
      ["-m", "--propagation", "private", "sh", "-c", script, "sh", mnt, process.execPath, CHILD],
      { encoding: "utf8", timeout: 110_000 },
    );
    assert.equal(r.error, undefined, "needs unshare (util-linux, scripts/system-deps.txt)");
    assert.equal(r.status, 0, `disk-full run failed:\n${r.stderr}`);
    const o = JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}") as Record<string, unknown>;
    const att = (k: string) => o[k] as Attempt;
    const st = (k: string) => o[k] as Status;

    // 1. the code's own record cannot be written: refused, not spent, nothing moved, the fault shown
    assert.deepEqual(att("beginFull"), {
      outcome: "rejected:FAULTED",
      recorded: false,
      contactorClosed: false,
    });
    const bf = st("beginFullStatus");
    assert.equal(bf.view.state, "UNAVAILABLE");
    assert.match(bf.view.store.fault ?? "", /session record not written \(SQLITE_FULL/);
    assert.ok(
      bf.view.unavailableBecause.some((w) => /store fault/.test(w)),
      bf.view.unavailableBecause.join(),
    );
    assert.ok((bf.view.store.freeBytes ?? -1) >= 0 && (bf.view.store.freeBytes ?? 1e9) < 64 * 1024);
    assert.match(bf.text, /unavailable because: store fault/);
    assert.match(bf.text, /store FAULT since .*held records 1 {2}disk \d+ KiB free/);
    const br = o["beginRecovered"] as Status["view"];
    assert.equal(br.store.fault, null);
    assert.equal(br.store.pending, 0);
    assert.equal(o["faultAudit"], true, "the held audit row of the fault is written on recovery");

    // 2. a session's end cannot be written: held, no new code (nothing charged), then recovered
    const ef = st("endFullStatus");
    assert.match(ef.view.store.fault ?? "", /sessions\.(progress|finish) not written/);
    assert.ok(ef.view.store.pending >= 1);
    assert.equal(o["activeWhileFull"], true, "the end is held in memory while the disk is full");
    assert.deepEqual(att("afterEndFull"), {
      outcome: "rejected:FAULTED",
      recorded: false,
      contactorClosed: false,
    });
    assert.equal((o["endRecovered"] as Status["view"]).store.pending, 0);
    assert.equal(o["activeAfterRecovery"], false, "no stale active row once the held end is written");
    assert.deepEqual(o["lastSession"], [{ status: "finished", reason: "TECHNICIAN" }]);
    // and a later code is taken again: the stale row does not block it
    assert.deepEqual(att("afterRecovery"), { outcome: "accepted", recorded: true, contactorClosed: true });
    assert.deepEqual(o["sessions"], ["finished", "finished"]);

    // 3. disk low: UNAVAILABLE with the reason before any write fails; back once space frees
    const low = st("lowStatus");
    assert.equal(low.view.state, "UNAVAILABLE");
    assert.ok(low.view.unavailableBecause.some((w) => /^disk low: \d+ KiB free \(below 2048 KiB\)$/.test(w)));
    assert.match(low.text, /unavailable because: disk low/);
    assert.deepEqual(att("lowAttempt"), {
      outcome: "rejected:FAULTED",
      recorded: false,
      contactorClosed: false,
    });
    assert.equal(o["lowFault"], null, "refused before any write failed");
    assert.deepEqual(att("lowRecovered"), { outcome: "accepted", recorded: true, contactorClosed: true });
  } finally {
    rmSync(mnt, { recursive: true, force: true });
  }
});
