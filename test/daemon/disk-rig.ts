/**
 * A rig for the durable-write and stall tiers of the control loop: the real runtime and pile
 * core on the simulated plant, a real store on a real file (and optionally the real write
 * worker on the same file), the SDK's carrier over an in-process BLE stand-in. Every output
 * write and every synchronous store write lands in one journal; each store write notes whether
 * the plant's contactor could be live at that moment (commanded closed or not reading open).
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Config, validateConfig } from "../../src/daemon/config.js";
import { KeyDirectory } from "../../src/daemon/keys.js";
import { createLogger } from "../../src/daemon/log.js";
import { PileRuntime } from "../../src/daemon/runtime.js";
import { createNotifier } from "../../src/daemon/sd-notify.js";
import { simPileConfig } from "../../src/daemon/sim-config.js";
import { type DigitalInput, type DigitalOutput, systemClock, type TimedClock } from "../../src/hw/ports.js";
import { nodeSuite } from "../../src/protocol/node-suite.js";
import { unlock } from "../../src/sdk/carrier.js";
import { Issuer } from "../../src/sdk/issuer.js";
import { writeKeyFile } from "../../src/sdk/keyfile.js";
import { SimPlant } from "../../src/sim/plant.js";
import { openStore, openStoreWriter, type Store, type StoreWriter } from "../../src/store/index.js";
import { DrivenClock } from "../helpers/driven-clock.js";
import { FakeMeter } from "../helpers/fake-meter.js";
import { LoopPeripheral } from "../helpers/loop-peripheral.js";
import { memTmpDir } from "../helpers/mem-tmp.js";
import { waitFor as poll } from "../helpers/poll.js";

export const PILE = "RT-D";

export interface DiskRig {
  runtime: PileRuntime;
  plant: SimPlant;
  meter: FakeMeter;
  ble: LoopPeripheral;
  journal: string[];
  /** Synchronous store writes, with whether the contactor could be live then. */
  writes: { op: string; live: boolean }[];
  /** The rig's clock.monotonic() at every contactor write, with its level. */
  contactorWrites: { at: number; closed: boolean }[];
  issuer: Issuer;
  store: Store;
  config: Config;
  /** The runtime's clock: a driven manual clock, or the system's with `realTime`. */
  clock: TimedClock;
  /** Waits `ms` on the rig's clock. */
  sleep(ms: number): Promise<void>;
  /** Stalls the loop for `ms` of the rig's time (blocks the thread on the real clock). */
  stall(ms: number): void;
  close(): Promise<void>;
}

export interface DiskRigOptions {
  /** Run the write worker on the same file (true), or on this path (a worker that cannot open it). */
  writer?: boolean | string;
  /**
   * Deliver input changes as the kernel's GPIO events are: through the I/O poll, after the
   * timers that are due (here: in the check phase, after the timers phase).
   */
  ioDelivery?: boolean;
  /** Called after each output write (e.g. to stall the loop while a relay moves). */
  afterWrite?: (line: "contactor" | "lock", active: boolean) => void;
  config?: (c: Config) => void;
  progressEveryMs?: number;
  /**
   * Run on the system clock (a tier that measures real latency under a slow disk); otherwise the
   * runtime, the plant and the meter run on a manual clock that each turn of the loop moves.
   */
  realTime?: boolean;
}

/**
 * An input as the kernel gives it: change events through the I/O poll, and a read that shows
 * where the contacts are now. The simulated relays move on timers of the loop itself, which a
 * stall holds up too; a real relay moves during the stall, so `physical` says where it is.
 */
const viaPoll = (input: DigitalInput, physical?: () => boolean | undefined): DigitalInput => ({
  name: input.name,
  read: async () => physical?.() ?? input.read(),
  watch: (l) => input.watch((v) => setImmediate(() => l(v))),
  close: () => input.close(),
});

const CONTACTOR_MS = 10;
const LOCK_MS = 20;

export async function diskRig(o: DiskRigOptions = {}): Promise<DiskRig> {
  // a real-time rig keeps the usual temp folder (the slow-disk tier measures its fsyncs)
  const dir = o.realTime ? mkdtempSync(join(tmpdir(), "piled-disk-")) : memTmpDir("piled-disk-");
  mkdirSync(join(dir, "keys"), { mode: 0o700 });
  const key = nodeSuite.randomBytes(32);
  assert.ok(writeKeyFile(join(dir, "keys", "key-1.json"), 1, key).ok);
  const parsed = validateConfig(simPileConfig({ pileId: PILE, dir }));
  assert.ok(parsed.ok);
  const config = parsed.value;
  // the store below lives here: its free space is what the runtime measures
  config.stateDir = dir;
  config.meter.pollIntervalMs = 100;
  o.config?.(config);
  const journal: string[] = [];
  const writes: { op: string; live: boolean }[] = [];
  const contactorWrites: { at: number; closed: boolean }[] = [];
  // the wall clock starts at the real time: the issuer stamps codes with it
  const driven = o.realTime ? undefined : new DrivenClock({ now: Date.now() });
  const clock: TimedClock = driven ?? systemClock;
  const plant = new SimPlant({
    plugPresent: true,
    contactorMs: CONTACTOR_MS,
    lockMs: LOCK_MS,
    timers: clock,
  });
  const live = () => {
    const s = plant.state();
    return s.outputs.contactor || s.feedback.contactor;
  };
  const path = join(dir, "piled.db");
  const raw = openStore(path);
  const writer: StoreWriter | undefined = o.writer
    ? openStoreWriter(o.writer === true ? path : o.writer)
    : undefined;
  const note = <A extends unknown[], R>(op: string, f: (...a: A) => R) => {
    return (...a: A): R => {
      writes.push({ op, live: live() });
      journal.push(op);
      return f(...a);
    };
  };
  const store: Store = {
    ...raw,
    close: () => raw.close(),
    ledger: {
      ...raw.ledger,
      record: note("ledger.record", raw.ledger.record),
      prune: note("ledger.prune", raw.ledger.prune),
    },
    sessions: {
      ...raw.sessions,
      begin: note("sessions.begin", raw.sessions.begin),
      progress: note("sessions.progress", raw.sessions.progress),
      finish: note("sessions.finish", raw.sessions.finish),
    },
    faults: {
      ...raw.faults,
      raise: note("faults.raise", raw.faults.raise),
      clear: note("faults.clear", raw.faults.clear),
    },
    audit: { ...raw.audit, append: note("audit.append", raw.audit.append) },
  };
  const keys = new KeyDirectory(join(dir, "keys"));
  assert.ok(keys.load().ok);
  const meter = new FakeMeter(clock);
  plant.onContactor((closed) => {
    meter.power = closed ? 7000 : 0;
  });
  const ble = new LoopPeripheral();
  const pl = plant.pileLines();
  const commanded: Record<"contactor" | "lock", { v: boolean; at: number } | undefined> = {
    contactor: undefined,
    lock: undefined,
  };
  const settled = (name: "contactor" | "lock", ms: number) => () => {
    const c = commanded[name];
    if (!c || clock.monotonic() - c.at < ms) return undefined;
    if (name === "contactor" && plant.state().faults.welded) return undefined;
    return c.v;
  };
  const out = (line: DigitalOutput, name: "contactor" | "lock"): DigitalOutput => ({
    name,
    write: async (v) => {
      journal.push(`${name}:${v}`);
      commanded[name] = { v, at: clock.monotonic() };
      await line.write(v);
      if (name === "contactor") contactorWrites.push({ at: clock.monotonic(), closed: v });
      o.afterWrite?.(name, v);
    },
    close: () => line.close(),
  });
  const feedback = (i: DigitalInput, physical?: () => boolean | undefined) =>
    o.ioDelivery ? viaPoll(i, physical) : i;
  const runtime = new PileRuntime({
    config,
    log: createLogger({ level: "silent" }),
    clock,
    store,
    keys,
    lines: {
      contactor: out(pl.contactor, "contactor"),
      lock: out(pl.lock, "lock"),
      contactorFeedback: feedback(pl.contactorFeedback, settled("contactor", CONTACTOR_MS)),
      lockFeedback: feedback(pl.lockFeedback, settled("lock", LOCK_MS)),
      emergencyStop: feedback(pl.emergencyStop),
    },
    vehicle: pl.vehicle,
    meter,
    ble,
    notifier: createNotifier({}),
    writer,
    ...(o.progressEveryMs !== undefined ? { progressEveryMs: o.progressEveryMs } : {}),
  });
  const stopDriving = driven?.drive();
  await runtime.start();
  await waitFor("AVAILABLE", () => runtime.snapshot().state === "AVAILABLE");
  return {
    runtime,
    plant,
    meter,
    ble,
    journal,
    writes,
    contactorWrites,
    issuer: new Issuer({ keys: [{ keyId: 1, key }] }),
    store: raw,
    config,
    clock,
    sleep: (ms) => (driven ? driven.sleep(ms) : new Promise((r) => setTimeout(r, ms))),
    stall: (ms) => (driven ? driven.stall(ms) : stallLoop(ms)),
    close: async () => {
      await runtime.stop();
      stopDriving?.();
      plant.dispose();
      await writer?.close();
      raw.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Asks again at each turn of the loop (each one moves a driven clock). */
export const waitFor = (what: string, ok: () => boolean): Promise<true> =>
  poll(what, ok, { everyMs: 0, timeoutMs: 15_000 });

/** An accepted code, then the pile charging. */
export async function charge(r: DiskRig): Promise<void> {
  const code = r.issuer.issue({ deviceId: "VIN-D", pileId: PILE, validForS: 600 });
  assert.ok(code.ok);
  const outcome = await unlock(r.ble.connect(), {
    code: code.value.code,
    verifySecret: code.value.verifySecret,
    pileId: PILE,
    suite: nodeSuite,
  });
  assert.equal(outcome.kind, "accepted", JSON.stringify(outcome));
  await waitFor("CHARGING, the contactor reading closed", () => r.runtime.snapshot().phase === "charging");
}

/** Blocks the thread for `ms` (a stalled fsync, a GC pause, a starved CPU). */
export function stallLoop(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
