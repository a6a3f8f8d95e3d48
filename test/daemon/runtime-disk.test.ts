/**
 * The control loop and the disk (DESIGN.md: while the contactor may be live, nothing on the
 * control path waits for a durable write), and the loop after a stall (no deadline fires on a
 * stale view of the inputs). Real runtime, real core, real store file and write worker, the
 * simulated plant; see disk-rig.ts.
 */
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import { toHex } from "../../src/protocol/index.js";
import { charge, type DiskRig, diskRig, waitFor } from "./disk-rig.js";

const open: DiskRig[] = [];
afterEach(async () => {
  for (const r of open.splice(0)) await r.close();
});
const rig = async (o: Parameters<typeof diskRig>[0]) => {
  const r = await diskRig(o);
  open.push(r);
  return r;
};

test("field report: no synchronous durable write while the contactor may be live (progress, fault, session end go to the write worker)", async () => {
  const r = await rig({
    writer: true,
    progressEveryMs: 200,
    config: (c) => {
      c.statusIntervalMs = 100;
    },
  });
  await charge(r);
  await r.sleep(700);
  r.plant.pressEmergencyStop();
  await waitFor("the pile faulted and idle", () => {
    const s = r.runtime.snapshot();
    return s.faults.includes("EMERGENCY_STOP") && !s.session;
  });
  await waitFor("the worker's acknowledgements", () => (r.runtime.counters["store.offLoop"] ?? 0) > 0);
  const onLoopWhileLive = r.writes.filter((w) => w.live).map((w) => w.op);
  assert.deepEqual(onLoopWhileLive, [], `synchronous writes while live: ${onLoopWhileLive.join(" ")}`);
  assert.equal(r.runtime.counters["store.refusedWhileLive"] ?? 0, 0);
  // what the worker wrote is in the same file, seen through the loop's own connection
  await waitFor("the fault durable", () => r.store.faults.active().some((f) => f.code === "EMERGENCY_STOP"));
  await waitFor("the session durable", () => r.store.sessions.list({ limit: 1 })[0]?.status === "finished");
  const s = r.store.sessions.list({ limit: 1 })[0]!;
  assert.equal(s.stopReason, "EMERGENCY_STOP");
  assert.ok(s.energyWh > 0, `energy recorded: ${s.energyWh}`);
});

test("field report: without a write worker, the writes made while live wait until the contactor reads open, in order", async () => {
  const r = await rig({});
  await charge(r);
  const from = r.journal.length;
  r.plant.pressEmergencyStop();
  await waitFor("the fault record", () => r.journal.includes("faults.raise"));
  await waitFor("the session record", () => r.journal.includes("sessions.finish"));
  const j = r.journal.slice(from);
  assert.equal(j[0], "contactor:false", j.join(" "));
  assert.ok(j.indexOf("faults.raise") < j.indexOf("sessions.finish"), j.join(" "));
  assert.deepEqual(
    r.writes.filter((w) => w.live).map((w) => w.op),
    [],
  );
  assert.ok((r.runtime.counters["store.deferred"] ?? 0) > 0);
  assert.deepEqual(
    r.store.faults.active().map((f) => f.code),
    ["EMERGENCY_STOP"],
  );
});

test("field report: a write worker that cannot reach the file loses nothing: its records wait for the contactor to read open", async () => {
  const r = await rig({ writer: "/nonexistent-dir/piled.db" });
  await charge(r);
  r.plant.pressEmergencyStop();
  await waitFor("the fault durable", () => r.store.faults.active().some((f) => f.code === "EMERGENCY_STOP"));
  await waitFor("the session durable", () => r.store.sessions.list({ limit: 1 })[0]?.status === "finished");
  assert.ok((r.runtime.counters["store.workerFailed"] ?? 0) > 0, JSON.stringify(r.runtime.counters));
  assert.deepEqual(
    r.writes.filter((w) => w.live).map((w) => w.op),
    [],
  );
  assert.equal(r.store.sessions.list({ limit: 1 })[0]?.stopReason, "EMERGENCY_STOP");
});

test("field report: session progress is durable at most once per interval, not once per status (durable writes per hour of charging)", async () => {
  const everyMs = 1000;
  const r = await rig({
    writer: true,
    progressEveryMs: everyMs,
    config: (c) => {
      c.statusIntervalMs = 100;
    },
  });
  await charge(r);
  const t0 = r.clock.monotonic();
  await r.sleep(3000);
  const elapsed = r.clock.monotonic() - t0;
  const written =
    (r.runtime.counters["store.offLoop"] ?? 0) + r.writes.filter((w) => w.op === "sessions.progress").length;
  const updates = r.runtime.counters["ble.tx.STATUS"] ?? 0;
  const perHour = (n: number) => Math.round((n * 3_600_000) / elapsed);
  console.log(
    `progress over ${Math.round(elapsed)} ms of charging (status every 100 ms, progress every ${everyMs} ms): ` +
      `${updates} status updates (one durable write each before: ${perHour(updates)}/h), ` +
      `${written} durable progress writes now (${perHour(written)}/h); ` +
      `at the defaults (status 1 s, progress 1 s) 3600/h both before and now, none of them on the loop now`,
  );
  assert.ok(updates >= 20, `status updates: ${updates}`);
  assert.ok(written <= Math.ceil(elapsed / everyMs) + 1, `durable progress writes: ${written}`);
  const session = r.runtime.snapshot().session!;
  await waitFor("the progress durable", () => {
    const rec = r.store.sessions.list({ limit: 1 })[0];
    return rec !== undefined && toHex(rec.sessionId) === session.sessionId && rec.progressAt !== null;
  });
});

test("field report: a 1 s stall of the loop while the contactor and the lock close and open latches nothing on a healthy plant", async () => {
  let held: DiskRig | undefined;
  const r = await rig({
    ioDelivery: true,
    afterWrite: () => void held?.clock.setTimeout(() => held?.stall(1000), 1),
    config: (c) => {
      c.deadlines.contactorCloseMs = 300;
      c.deadlines.contactorOpenMs = 300;
      c.deadlines.lockConfirmMs = 300;
      c.deadlines.lockReleaseMs = 300;
      c.deadlines.meterStaleMs = 5000;
    },
  });
  held = r;
  await charge(r);
  r.plant.pullPlug();
  await waitFor("the session to end", () => r.store.sessions.list({ limit: 1 })[0]?.status === "finished");
  await waitFor("idle", () => !r.runtime.snapshot().session && r.runtime.snapshot().outputs.lock === false);
  assert.deepEqual(r.runtime.snapshot().faults, [], r.journal.join(" "));
  assert.deepEqual(r.store.faults.active(), []);
  assert.equal(r.store.sessions.list({ limit: 1 })[0]?.stopReason, "PLUG_REMOVED");
  assert.ok((r.runtime.counters["inputs.sampledChanges"] ?? 0) >= 1, JSON.stringify(r.runtime.counters));
});

test("field report: after a 1 s stall a real weld is still caught", async () => {
  let stall = false;
  let held: DiskRig | undefined;
  const r = await rig({
    ioDelivery: true,
    afterWrite: (line, v) => {
      if (stall && line === "contactor" && !v) held?.clock.setTimeout(() => held?.stall(1000), 1);
    },
    config: (c) => {
      c.deadlines.contactorOpenMs = 300;
    },
  });
  held = r;
  await charge(r);
  r.plant.weldContactor();
  stall = true;
  r.plant.pullPlug();
  await waitFor("the weld latched", () => r.runtime.snapshot().faults.includes("WELD"));
  assert.equal(r.runtime.snapshot().outputs.lock, true, "the lock stays engaged on a weld");
});

test("field report: a latched weld is durable at once, even without a write worker (nothing is left to open)", async () => {
  const r = await rig({});
  await charge(r);
  r.plant.weldContactor();
  r.plant.pullPlug();
  await waitFor("the weld latched", () => r.runtime.snapshot().faults.includes("WELD"));
  await waitFor("the weld durable", () => r.store.faults.active().some((f) => f.code === "WELD"));
  assert.equal(r.runtime.snapshot().outputs.lock, true, "the lock stays engaged on a weld");
});
