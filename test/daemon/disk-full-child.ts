/**
 * Run by the disk-full tier (disk-full.test.ts) with TMPDIR on a small tmpfs of its own (a private
 * mount namespace): the real runtime, pile core and store on that tmpfs, whole sessions while a
 * filler file takes the space away and gives it back. Prints one JSON line of what it saw; the
 * tier asserts on it. Exits 1 with the stack when a step cannot be reached.
 */
import { closeSync, openSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { formatResult } from "../../src/control/index.js";
import { pileControl } from "../../src/daemon/control-impl.js";
import { KeyDirectory } from "../../src/daemon/keys.js";
import { systemClock } from "../../src/hw/ports.js";
import { nodeSuite } from "../../src/protocol/node-suite.js";
import { unlock } from "../../src/sdk/carrier.js";
import { charge, type DiskRig, diskRig, PILE, waitFor } from "./disk-rig.js";

/** Takes every free byte of the file system under `dir`; returns the file to delete to give it back. */
function fill(dir: string): string {
  const path = join(dir, "filler");
  const fd = openSync(path, "w");
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOSPC") throw e;
  }
  const small = Buffer.alloc(512, 0x5a);
  try {
    for (;;) writeSync(fd, small);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOSPC") throw e;
  }
  closeSync(fd);
  return path;
}

interface Attempt {
  outcome: string;
  recorded: boolean;
  contactorClosed: boolean;
}

async function attempt(r: DiskRig): Promise<Attempt> {
  const code = r.issuer.issue({ deviceId: "VIN-F", pileId: PILE, validForS: 600 });
  if (!code.ok) throw new Error("issue failed");
  const closesBefore = r.contactorWrites.filter((w) => w.closed).length;
  const outcome = await unlock(r.ble.connect(), {
    code: code.value.code,
    verifySecret: code.value.verifySecret,
    pileId: PILE,
    suite: nodeSuite,
  });
  await r.sleep(200);
  return {
    outcome: outcome.kind === "rejected" ? `rejected:${outcome.reason}` : outcome.kind,
    recorded: r.store.ledger.isUsed(code.value.codeId),
    contactorClosed: r.contactorWrites.filter((w) => w.closed).length > closesBefore,
  };
}

function status(r: DiskRig) {
  const keys = new KeyDirectory(r.config.keyDir);
  const control = pileControl({
    runtime: r.runtime,
    store: r.store,
    keys,
    clock: systemClock,
    meterStaleMs: r.config.deadlines.meterStaleMs,
  });
  const view = control.status();
  return { view, text: formatResult("status", view) };
}

async function stopSession(r: DiskRig): Promise<void> {
  await r.runtime.technician({ command: "stop" });
  await waitFor("the session over", () => r.runtime.snapshot().session === undefined);
}

/** A record that cannot be written: first a code's own, then a session's end. */
async function writeFails(out: Record<string, unknown>): Promise<void> {
  const r = await diskRig({ config: (c) => Object.assign(c.store, { minFreeBytes: 0, retryMs: 200 }) });
  try {
    let filler = fill(r.config.stateDir);
    out["beginFull"] = await attempt(r);
    out["beginFullStatus"] = status(r);
    rmSync(filler);
    await waitFor("the store fault cleared", () => r.runtime.storeHealth.view().fault === null);
    await waitFor("AVAILABLE", () => r.runtime.snapshot().state === "AVAILABLE");
    out["beginRecovered"] = status(r).view;
    out["faultAudit"] = r.store.audit
      .list({ limit: 20 })
      .some((a) => a.action === "store" && a.outcome === "fault");

    await charge(r);
    filler = fill(r.config.stateDir);
    await stopSession(r);
    out["endFullStatus"] = status(r);
    out["activeWhileFull"] = r.store.sessions.active() !== undefined;
    out["afterEndFull"] = await attempt(r);
    rmSync(filler);
    await waitFor("the store fault cleared", () => r.runtime.storeHealth.view().fault === null);
    await waitFor("AVAILABLE", () => r.runtime.snapshot().state === "AVAILABLE");
    out["endRecovered"] = status(r).view;
    out["activeAfterRecovery"] = r.store.sessions.active() !== undefined;
    out["lastSession"] = r.store.sessions
      .list({ limit: 1 })
      .map((s) => ({ status: s.status, reason: s.stopReason }));
    out["afterRecovery"] = await attempt(r);
    await waitFor("charging", () => r.runtime.snapshot().phase === "charging");
    await stopSession(r);
    out["sessions"] = r.store.sessions.list({ limit: 10 }).map((s) => s.status);
  } finally {
    await r.close();
  }
}

/** Below the free-space threshold the pile is UNAVAILABLE before any write fails. */
async function diskLow(out: Record<string, unknown>): Promise<void> {
  const r = await diskRig({
    config: (c) => Object.assign(c.store, { minFreeBytes: 2 * 1024 * 1024, retryMs: 200 }),
  });
  try {
    const filler = fill(r.config.stateDir);
    await waitFor("UNAVAILABLE", () => r.runtime.snapshot().state === "UNAVAILABLE");
    out["lowStatus"] = status(r);
    out["lowAttempt"] = await attempt(r);
    out["lowFault"] = r.runtime.storeHealth.view().fault;
    rmSync(filler);
    await waitFor("AVAILABLE", () => r.runtime.snapshot().state === "AVAILABLE");
    out["lowRecovered"] = await attempt(r);
    await stopSession(r);
  } finally {
    await r.close();
  }
}

async function main(): Promise<void> {
  const out: Record<string, unknown> = {};
  await writeFails(out);
  await diskLow(out);
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
