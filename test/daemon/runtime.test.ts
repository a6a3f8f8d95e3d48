/**
 * The daemon's control loop (src/daemon/runtime.ts) on the simulated plant, with the real pile
 * core, a real SQLite store and the SDK's carrier client over an in-process BLE stand-in. Every
 * output write and every durable write lands in one journal, so the safety order of DESIGN.md is
 * checked where it is performed, not only where it is decided:
 * - the code id is in the ledger, with its session's start, before any output moves for it;
 * - the contactor closes only after the lock is confirmed, the meter is fresh and the meter's
 *   start register is written;
 * - any fault (emergency stop, a silent meter) opens the contactor before anything else;
 * - at a session's end: contactor open, the record written, the carrier told, then the lock;
 * - a session interrupted by a stop of the daemon is closed at boot from the meter's register.
 */
import assert from "node:assert/strict";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterEach, test } from "node:test";
import { type Config, validateConfig } from "../../src/daemon/config.js";
import { KeyDirectory } from "../../src/daemon/keys.js";
import { createLogger } from "../../src/daemon/log.js";
import { PileRuntime } from "../../src/daemon/runtime.js";
import { createNotifier } from "../../src/daemon/sd-notify.js";
import { simPileConfig } from "../../src/daemon/sim-config.js";
import type { DigitalInput, DigitalOutput } from "../../src/hw/ports.js";
import { encodeMessage, fragment, PARTIAL_TIMEOUT_MS } from "../../src/protocol/index.js";
import { nodeSuite } from "../../src/protocol/node-suite.js";
import type { CarrierLink } from "../../src/protocol/transport.js";
import { stop, unlock } from "../../src/sdk/carrier.js";
import { Issuer } from "../../src/sdk/issuer.js";
import { writeKeyFile } from "../../src/sdk/keyfile.js";
import { SimPlant } from "../../src/sim/plant.js";
import { openStore, type Store } from "../../src/store/index.js";
import { DrivenClock } from "../helpers/driven-clock.js";
import { FakeMeter } from "../helpers/fake-meter.js";
import { LoopPeripheral } from "../helpers/loop-peripheral.js";
import { memTmpDir } from "../helpers/mem-tmp.js";
import { waitFor as poll } from "../helpers/poll.js";

const PILE = "RT-1";
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Rig {
  runtime: PileRuntime;
  plant: SimPlant;
  meter: FakeMeter;
  ble: LoopPeripheral;
  journal: string[];
  issuer: Issuer;
  store: Store;
  clock: DrivenClock;
}

const journaled = (out: DigitalOutput, name: string, journal: string[]): DigitalOutput => ({
  name,
  write: async (v) => {
    journal.push(`${name}:${v}`);
    await out.write(v);
  },
  close: () => out.close(),
});

async function rig(
  over: (c: Config) => void = () => {},
  before: {
    dir?: string;
    meter?: FakeMeter;
    contactorFeedback?: (i: DigitalInput) => DigitalInput;
    logLines?: string[];
    links?: () => Record<string, number>;
  } = {},
): Promise<Rig> {
  // the runtime, the plant and the meter on one manual clock, moved by each turn of the loop
  const clock = new DrivenClock({ now: Date.now() }); // the issuer stamps codes with the real time
  const dir = before.dir ?? memTmpDir("piled-runtime-");
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, "keys"), { mode: 0o700, recursive: true });
  const key = nodeSuite.randomBytes(32);
  assert.ok(writeKeyFile(join(dir, "keys", "key-1.json"), 1, key).ok);
  const parsed = validateConfig(simPileConfig({ pileId: PILE, dir }));
  assert.ok(parsed.ok);
  const config = parsed.value;
  config.meter.pollIntervalMs = 100;
  over(config);
  const journal: string[] = [];
  const raw = openStore(join(dir, "piled.db"));
  const store: Store = {
    ...raw,
    close: () => raw.close(),
    ledger: {
      ...raw.ledger,
      record: (e) => {
        journal.push("ledger.record");
        raw.ledger.record(e);
      },
    },
    sessions: {
      ...raw.sessions,
      beginWithCode: (c, s) => {
        journal.push("ledger.record+sessions.begin");
        raw.sessions.beginWithCode(c, s);
      },
      progress: (id, p) => {
        journal.push(`sessions.progress:${p.meterStartWh ?? "-"}`);
        raw.sessions.progress(id, p);
      },
      begin: (s) => {
        journal.push("sessions.begin");
        raw.sessions.begin(s);
      },
      finish: (id, f) => {
        journal.push(`sessions.finish:${f.stopReason}`);
        raw.sessions.finish(id, f);
      },
    },
    faults: {
      ...raw.faults,
      raise: (code, detail, at) => {
        journal.push(`faults.raise:${code}`);
        return raw.faults.raise(code, detail, at);
      },
    },
  };
  const keys = new KeyDirectory(join(dir, "keys"));
  assert.ok(keys.load().ok);
  const plant = new SimPlant({ plugPresent: true, contactorMs: 10, lockMs: 20, timers: clock });
  const meter = before.meter ?? new FakeMeter();
  meter.clock = clock;
  plant.onContactor((closed) => {
    meter.power = closed ? 7000 : 0;
  });
  const ble = new LoopPeripheral();
  ble.onNotify = (id) => journal.push(`notify:${id}`);
  const pl = plant.pileLines();
  const runtime = new PileRuntime({
    config,
    log: before.logLines
      ? createLogger({ level: "info", destination: { write: (l: string) => before.logLines?.push(l) } })
      : createLogger({ level: "silent" }),
    clock,
    store,
    keys,
    lines: {
      contactor: journaled(pl.contactor, "contactor", journal),
      lock: journaled(pl.lock, "lock", journal),
      contactorFeedback: before.contactorFeedback?.(pl.contactorFeedback) ?? pl.contactorFeedback,
      lockFeedback: pl.lockFeedback,
      emergencyStop: pl.emergencyStop,
    },
    vehicle: pl.vehicle,
    meter,
    ble,
    notifier: createNotifier({}),
    links: before.links,
  });
  const stopDriving = clock.drive();
  cleanups.push(async () => {
    await runtime.stop();
    stopDriving();
    plant.dispose();
    raw.close();
  });
  await runtime.start();
  // A silent meter keeps the pile UNAVAILABLE (its reading is stale), the snapshot says so.
  if (meter.silent)
    await waitFor("UNAVAILABLE: meter stale", () =>
      runtime.snapshot().unavailableBecause.includes("meter stale"),
    );
  else await waitFor("AVAILABLE", () => runtime.snapshot().state === "AVAILABLE");
  return {
    runtime,
    plant,
    meter,
    ble,
    journal,
    issuer: new Issuer({ keys: [{ keyId: 1, key }] }),
    store: raw,
    clock,
  };
}

/** Asks again at each turn of the loop (each one moves the rig's clock). */
const waitFor = (what: string, ok: () => boolean): Promise<true> => poll(what, ok, { everyMs: 0 });

/** The journal without the notifications and progress writes (periodic, from earlier inputs). */
const outputsAndRecords = (j: string[]) =>
  j.filter((e) => !e.startsWith("notify:") && !e.startsWith("sessions.progress:"));

async function charge(r: Rig): Promise<{ codeId: Uint8Array; keyId: number; verifySecret: Uint8Array }> {
  const code = r.issuer.issue({ deviceId: "VIN-RT", pileId: PILE, validForS: 600 });
  assert.ok(code.ok);
  const outcome = await unlock(r.ble.connect(), {
    code: code.value.code,
    verifySecret: code.value.verifySecret,
    pileId: PILE,
    suite: nodeSuite,
  });
  assert.equal(outcome.kind, "accepted", JSON.stringify(outcome));
  await waitFor("CHARGING", () => r.runtime.snapshot().state === "CHARGING");
  return code.value;
}

test("an unlock: the code id is durable before any output moves; the contactor closes after the lock", async () => {
  const r = await rig();
  const from = r.journal.length;
  await charge(r);
  const j = r.journal.slice(from).filter((e) => !e.startsWith("notify:"));
  assert.equal(j[0], "ledger.record+sessions.begin", `nothing before the durable record: ${j.join(" ")}`);
  assert.ok(j.indexOf("lock:true") > 0, j.join(" "));
  assert.ok(j.indexOf("contactor:true") > j.indexOf("lock:true"), j.join(" "));
});

test("field report: the meter's start register is written before the contactor closes", async () => {
  const r = await rig();
  const from = r.journal.length;
  await charge(r);
  const j = r.journal.slice(from);
  // the start register is durable with the code, before any output moved
  const start = j.indexOf("ledger.record+sessions.begin");
  assert.ok(start >= 0 && start < j.indexOf("lock:true") && start < j.indexOf("contactor:true"), j.join(" "));
  assert.ok((r.store.sessions.active()?.meterStartWh ?? 0) >= 1000);
});

test("field report: at a session's end the record is written and the carrier told before the lock moves", async () => {
  const r = await rig();
  const code = await charge(r);
  const link = r.ble.connect();
  const from = r.journal.length;
  const outcome = await stop(link, { ...code, pileId: PILE, suite: nodeSuite });
  assert.equal(outcome.kind, "stopped", JSON.stringify(outcome));
  await waitFor("the lock released", () => r.journal.slice(from).includes("lock:false"));
  const j = r.journal.slice(from);
  const opened = j.indexOf("contactor:false");
  const recorded = j.indexOf("sessions.finish:CARRIER_STOP");
  const told = j.indexOf(`notify:${link.id}`, recorded);
  const released = j.indexOf("lock:false");
  assert.ok(opened >= 0 && opened < recorded, j.join(" "));
  assert.ok(recorded < told && told < released, j.join(" "));
  await waitFor("AVAILABLE", () => r.runtime.snapshot().state === "AVAILABLE");
});

test("field report: a session interrupted by a stop of the daemon is closed at boot from the meter", async () => {
  const seeded = (dir: string, meterStartWh: number, progressWh: number) => {
    const st = openStore(join(dir, "piled.db"));
    const cid = nodeSuite.randomBytes(16);
    const sid = nodeSuite.randomBytes(16);
    st.sessions.beginWithCode(
      { codeId: cid, keyId: 1, issuedAt: 1n, expiresAt: 2n, carrier: "vehicle", deviceId: "VIN-RT" },
      {
        sessionId: sid,
        codeId: cid,
        keyId: 1,
        deviceId: "VIN-RT",
        carrier: "vehicle",
        startedAt: 1,
        meterStartWh,
      },
    );
    st.sessions.progress(sid, { energyWh: progressWh, lastMeterWh: meterStartWh + progressWh, at: 2 });
    st.close();
    return sid;
  };
  // The last progress said 1.3 Wh; the meter's register says 3 Wh went through.
  const dir = memTmpDir("piled-runtime-");
  const first = seeded(dir, 1000, 1.3);
  const meter = new FakeMeter();
  meter.energy = 1003;
  const r = await rig(() => {}, { dir, meter });
  const s = r.store.sessions.get(first);
  assert.equal(s?.status, "interrupted");
  assert.equal(s?.energySource, "meter");
  assert.ok(s && Math.abs(s.energyWh - 3) < 1e-9, JSON.stringify(s));
  // The meter cannot be read at boot: the last progress is kept, marked unknown.
  const dir2 = memTmpDir("piled-runtime-");
  const second = seeded(dir2, 1000, 1.3);
  const silent = new FakeMeter();
  silent.silent = true;
  const r2 = await rig(() => {}, { dir: dir2, meter: silent });
  const u = r2.store.sessions.get(second);
  assert.equal(u?.status, "interrupted");
  assert.equal(u?.energySource, "unknown");
  assert.equal(u?.energyWh, 1.3);
});

test("emergency stop while charging: the contactor is written open before the fault is recorded", async () => {
  const r = await rig();
  await charge(r);
  const from = r.journal.length;
  r.plant.pressEmergencyStop();
  await waitFor("the fault record", () => r.journal.includes("faults.raise:EMERGENCY_STOP"));
  const j = outputsAndRecords(r.journal.slice(from));
  assert.equal(j[0], "contactor:false", j.join(" "));
  assert.ok(j.indexOf("faults.raise:EMERGENCY_STOP") > 0, j.join(" "));
  await waitFor("the session record", () => r.journal.includes("sessions.finish:EMERGENCY_STOP"));
  assert.deepEqual(
    r.store.faults.active().map((f) => f.code),
    ["EMERGENCY_STOP"],
  );
});

test("meter silent while charging: the session stops, the contactor opening first", async () => {
  const r = await rig((c) => {
    c.deadlines.meterStaleMs = 600;
  });
  await charge(r);
  const from = r.journal.length;
  r.meter.silent = true;
  await waitFor("the session to end", () =>
    r.journal.slice(from).some((e) => e.startsWith("sessions.finish")),
  );
  const j = outputsAndRecords(r.journal.slice(from));
  assert.equal(j[0], "contactor:false", j.join(" "));
  assert.ok(j.includes("sessions.finish:METER_LOST"), j.join(" "));
  assert.ok(j.indexOf("lock:false") > j.indexOf("contactor:false"), "the lock releases after the contactor");
});

test("field report: inputs that go quiet: a contactor feedback that cannot be read opens the contactor first and shows FEEDBACK_UNREADABLE", async () => {
  const health = new Set<(readable: boolean, detail: string) => void>();
  const r = await rig(undefined, {
    contactorFeedback: (i) => ({
      name: i.name,
      read: () => i.read(),
      watch: (l) => i.watch(l),
      close: () => i.close(),
      health: (l) => {
        health.add(l);
        return () => health.delete(l);
      },
    }),
  });
  assert.equal(health.size, 1, "the runtime listens to the line's health");
  await charge(r);
  const from = r.journal.length;
  for (const l of health) l(false, "cannot read input contactor-feedback: EIO");
  await waitFor("the fault record", () => r.journal.includes("faults.raise:FEEDBACK_UNREADABLE"));
  const j = r.journal.slice(from);
  assert.equal(j[0], "contactor:false", j.join(" "));
  assert.equal(r.runtime.snapshot().state, "FAULTED");
  assert.ok(r.runtime.snapshot().faults.includes("FEEDBACK_UNREADABLE"));
  assert.equal(r.runtime.counters["gpio.unreadable"], 1);
  for (const l of health) l(true, "reads again");
  await waitFor("the session to end", () => r.runtime.snapshot().session === undefined);
  const cleared = await r.runtime.technician({ command: "clearFault" });
  assert.deepEqual(cleared, { ok: true });
});

/** Writes one message over a loop link, fragmented at its MTU. */
async function writeMessage(link: CarrierLink, m: Parameters<typeof encodeMessage>[0]): Promise<void> {
  for (const f of fragment(encodeMessage(m), link.mtu)) await link.write(f);
}

test("field report: more than 20 failed proofs within 60 s raise a security event: error log, audit entry, status", async () => {
  const r = await rig();
  const code = r.issuer.issue({ deviceId: "VIN-RT", pileId: PILE, validForS: 600 });
  assert.ok(code.ok);
  for (let i = 0; i < 7; i++) {
    const link = r.ble.connect();
    for (let k = 0; k < 3; k++) {
      await writeMessage(link, {
        type: "HELLO",
        version: 1,
        keyId: code.value.keyId,
        codeId: code.value.codeId,
        clientNonce: new Uint8Array(16).fill(k),
      });
      await writeMessage(link, { type: "PRESENT", deviceProof: new Uint8Array(32), code: code.value.code });
    }
  }
  await waitFor("21 failed proofs", () => r.runtime.snapshot().counters.badProofs === 21);
  await r.runtime.feed({ type: "tick" });
  assert.equal(r.runtime.counters["security.events"], 1);
  assert.equal(r.runtime.lastSecurityEvent?.failures, 21);
  const audit = r.store.audit.list({ limit: 50 }).filter((a) => a.action === "security");
  assert.equal(audit.length, 1, JSON.stringify(audit));
  assert.equal(audit[0]?.outcome, "PROOF_FAILURES");
  assert.deepEqual(r.runtime.snapshot().proofs, { recentFailures: 21, alarm: true });
});

test("field report: an idle pile polls its meter at the idle interval and stays AVAILABLE; an accepted code brings pollIntervalMs back", async () => {
  const r = await rig(); // pollIntervalMs 100; idle: meter.idlePollIntervalMs 1500 (under 5000 / 3)
  const before = r.meter.reads;
  for (let t = 0; t < 15_000; t += 100) {
    await r.clock.sleep(100);
    const s = r.runtime.snapshot();
    assert.equal(s.state, "AVAILABLE", `at ${t} ms: ${s.unavailableBecause.join(", ")}`);
  }
  const idle = r.meter.reads - before;
  assert.ok(idle >= 9 && idle <= 11, `${idle} reads in 15 s idle (one per 1.5 s; 150 at pollIntervalMs)`);
  await charge(r);
  const charging = r.meter.reads;
  await r.clock.sleep(1000);
  assert.ok(r.meter.reads - charging >= 9, `${r.meter.reads - charging} reads in 1 s charging`);
});

test("field report: an idle BLE connection is dropped through the port after 30 s", async () => {
  const r = await rig();
  r.ble.connect();
  await waitFor("connected", () => r.runtime.snapshot().connections === 1);
  await r.clock.sleep(29_000);
  await r.runtime.feed({ type: "tick" });
  assert.equal(r.runtime.snapshot().connections, 1, "not before 30 s");
  assert.equal(r.runtime.counters["ble.drop.IDLE"], undefined);
  await r.clock.sleep(1_500);
  await r.runtime.feed({ type: "tick" });
  assert.equal(r.runtime.counters["ble.drop.IDLE"], 1);
  await waitFor("dropped", () => r.runtime.snapshot().connections === 0);
});

test("field report: a missing meter logs its outage once when it begins and once when it ends; a clean stop logs no closed bus", async () => {
  const lines: string[] = [];
  const meter = new FakeMeter();
  meter.silent = true;
  const r = await rig(() => {}, { meter, logLines: lines });
  const msgs = () => lines.map((l) => (JSON.parse(l) as { msg: string }).msg);
  const failures = () => r.runtime.counters["meter.TIMEOUT"] ?? 0;
  await waitFor("several failed polls", () => failures() >= 4);
  assert.equal(msgs().filter((m) => m === "meter outage began").length, 1, msgs().join("\n"));
  assert.equal(msgs().filter((m) => /meter read failed|meter\.error/.test(m)).length, 0);
  meter.silent = false;
  await waitFor("the outage's end", () => msgs().includes("meter outage ended"));
  const end = lines
    .map((l) => JSON.parse(l) as { msg: string; failures?: number })
    .find((j) => j.msg === "meter outage ended");
  assert.ok(end && (end.failures ?? 0) >= 4, JSON.stringify(end));
  // A read cut short by the stop (the bus closing under it) is no warning.
  meter.hold = true;
  await waitFor("a read in flight", () => meter.pending !== undefined);
  await r.runtime.stop();
  await meter.close();
  await r.clock.sleep(100);
  assert.equal(msgs().filter((m) => m === "meter outage began").length, 1, msgs().join("\n"));
  assert.ok(!lines.some((l) => l.includes("closed")), lines.join(""));
});

test("field report: link fault counters (the adapters' and the expired BLE fragments) are logged when they move", async () => {
  const lines: string[] = [];
  const adapters = { "modbus.crcErrors": 0 };
  const r = await rig(() => {}, { logLines: lines, links: () => ({ ...adapters }) });
  const link = r.ble.connect(23);
  const code = r.issuer.issue({ deviceId: "VIN-RT", pileId: PILE, validForS: 600 });
  assert.ok(code.ok);
  const hello = encodeMessage({
    type: "HELLO",
    version: 1,
    keyId: code.value.keyId,
    codeId: code.value.codeId,
    clientNonce: new Uint8Array(16),
  });
  const frags = fragment(hello, link.mtu);
  assert.ok(frags.length > 1, "HELLO takes several fragments at the least MTU");
  await link.write(frags[0]!);
  await r.clock.sleep(PARTIAL_TIMEOUT_MS + 100);
  await link.write(frags[0]!); // the stale partial expires; this one starts anew
  adapters["modbus.crcErrors"] = 2;
  await r.clock.sleep(1_100); // a heartbeat looks
  assert.equal(r.runtime.linkCounters()["ble.fragmentsExpired"], 1);
  assert.equal(r.runtime.linkCounters()["modbus.crcErrors"], 2);
  const moved = lines
    .map((l) => JSON.parse(l) as { msg: string; moved?: Record<string, number> })
    .filter((j) => j.msg === "link fault counters moved");
  assert.ok(
    moved.some((j) => j.moved?.["modbus.crcErrors"] === 2 && j.moved?.["ble.fragmentsExpired"] === 1),
    JSON.stringify(moved),
  );
  const before = moved.length;
  await r.clock.sleep(2_100);
  const after = lines.filter((l) => l.includes("link fault counters moved")).length;
  assert.equal(after, before, "no line while they stand still");
});
