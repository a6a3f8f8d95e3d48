/**
 * The daemon's control loop: it feeds the pure pile core (src/pile) with everything the plant,
 * the radio and the technicians say, one input at a time, and performs the core's effects in
 * the order given — outputs to their safe state first, then durable records, then a contactor
 * closing, then messages, then a lock releasing, then notifications. Timers live here
 * and only here; the core tells us when it next needs a tick.
 */
import type { Logger } from "pino";
import type {
  BleConnection,
  BlePeripheral,
  Clock,
  DigitalInput,
  DigitalOutput,
  Meter,
  MeterReading,
  Unsubscribe,
  VehicleSense,
} from "../hw/ports.js";
import { MeterError } from "../hw/ports.js";
import {
  FAULT_CODES,
  type FaultCode,
  type InputLine,
  infoBytes,
  PileCore,
  type PileEffect,
  type PileInput,
  type PileSnapshot,
  parsePileCoreConfig,
  type TechnicianCommand,
} from "../pile/index.js";
import { encodeMessage, type FragmentFault, fragment, Reassembler, toHex } from "../protocol/index.js";
import { nodeSuite } from "../protocol/node-suite.js";
import {
  type AuditEntry,
  applyStoreOp,
  type Store,
  StoreError,
  type StoreOp,
  type StoreWriter,
} from "../store/index.js";
import type { Config } from "./config.js";
import type { KeyDirectory } from "./keys.js";
import { traceFrame } from "./log.js";
import { bootPilot, performPilot, pilotCoreConfig, watchPilot } from "./pilot-glue.js";
import type { Notifier } from "./sd-notify.js";

export interface PileLinesPorts {
  contactor: DigitalOutput;
  lock: DigitalOutput;
  contactorFeedback: DigitalInput;
  lockFeedback: DigitalInput;
  emergencyStop?: DigitalInput | undefined;
}

export interface RuntimeParts {
  config: Config;
  log: Logger;
  clock: Clock;
  store: Store;
  keys: KeyDirectory;
  lines: PileLinesPorts;
  vehicle?: VehicleSense | undefined;
  meter: Meter;
  ble?: BlePeripheral | undefined;
  notifier: Notifier;
  random?: (n: number) => Uint8Array;
  /**
   * The write worker (src/store/writer.ts): the writes made while the contactor may be live go
   * there. Without one they wait, in order, until the contactor reads open.
   */
  writer?: StoreWriter | undefined;
  /** Least interval between two durable progress records of a session (the core's progressIntervalMs). */
  progressEveryMs?: number;
}

type InputBody = PileInput extends infer I ? (I extends PileInput ? Omit<I, "mono" | "wall"> : never) : never;

interface Job {
  input: InputBody;
  done: (effects: PileEffect[]) => void;
}

interface ConnEntry {
  conn: BleConnection;
  reassembler: Reassembler;
}

/** How often expired codes leave the replay ledger. */
const PRUNE_EVERY_MS = 3_600_000;

/** Worker failures that say nothing about the record itself: it is written on the loop later. */
const RETRY_ON_LOOP: ReadonlySet<string> = new Set(["IO", "LOCKED", "CLOSED"]);

/** Heartbeat of the control loop: the watchdog is fed only when a heartbeat got through. */
const HEARTBEAT_MS = 1000;

export class PileRuntime {
  readonly core: PileCore;
  readonly startedAt: number;
  readonly counters: Record<string, number> = {};
  bleState: "up" | "down" | "disabled";
  lastMeter: MeterReading | undefined;
  lastMeterError: MeterError | undefined;
  /** Monotonic ms of the last heartbeat the loop processed. */
  lastBeat: number;
  stateSince: number;
  /** The last security event (failed proofs past the threshold, PROTOCOL.md §3), Unix ms. */
  lastSecurityEvent: { at: number; failures: number } | undefined;
  readonly skewMs: number;

  readonly #p: RuntimeParts;
  readonly #log: Logger;
  readonly #queue: Job[] = [];
  #running = false;
  #deadlineTimer: NodeJS.Timeout | undefined;
  #deadlineAt: number | undefined;
  #meterTimer: NodeJS.Timeout | undefined;
  #beatTimer: NodeJS.Timeout | undefined;
  #pruneTimer: NodeJS.Timeout | undefined;
  #unsubs: Unsubscribe[] = [];
  #conns = new Map<string, ConnEntry>();
  #stopped = false;
  #meterOutage: { since: number; failures: number } | undefined;
  #relayTestWaiters: ((r: { ok: boolean; detail: string }) => void)[] = [];
  #radioUp: Promise<void>;
  #radioUpResolve: () => void = () => {};
  #booted = false;
  /** Writes waiting for the contactor to read open (no write worker). */
  #deferred: StoreOp[] = [];
  /** The contactor's level as last written (true from the write of a close on). */
  #contactorWritten = false;

  constructor(parts: RuntimeParts) {
    this.#p = parts;
    this.#log = parts.log.child({ component: "pile" });
    const c = parts.config;
    this.skewMs = c.clockSkewMs;
    const cfg = parsePileCoreConfig({
      pileId: c.pileId,
      skewMs: c.clockSkewMs,
      lockConfirmMs: c.deadlines.lockConfirmMs,
      contactorCloseMs: c.deadlines.contactorCloseMs,
      contactorOpenMs: c.deadlines.contactorOpenMs,
      lockReleaseMs: c.deadlines.lockReleaseMs,
      meterStaleMs: c.deadlines.meterStaleMs,
      statusIntervalMs: c.statusIntervalMs,
      ...(parts.progressEveryMs !== undefined ? { progressIntervalMs: parts.progressEveryMs } : {}),
      exchangeTimeoutMs: c.deadlines.exchangeTimeoutMs,
      lockSafeState: c.lockSafeState,
      ...pilotCoreConfig(c),
    });
    if (!cfg.ok) throw new Error(`pile core config: ${cfg.errors.join("; ")}`);
    const keys = parts.keys;
    this.core = new PileCore(cfg.value, {
      suite: nodeSuite,
      keys: { get: (id) => keys.ring.get(id) },
      ledger: { isUsed: (codeId) => parts.store.ledger.isUsed(codeId) },
      random: parts.random ?? ((n) => nodeSuite.randomBytes(n)),
    });
    this.startedAt = parts.clock.now();
    this.stateSince = this.startedAt;
    this.lastBeat = parts.clock.monotonic();
    this.bleState = parts.ble ? "down" : "disabled";
    this.#radioUp = new Promise((r) => {
      this.#radioUpResolve = r;
    });
  }

  #count(name: string, n = 1): void {
    this.counters[name] = (this.counters[name] ?? 0) + n;
  }

  /**
   * Boot: outputs to their safe state before anything else, then the feedbacks are read and the
   * core decides (a contactor that reads closed is a weld). Resolves once the core has booted;
   * `radioReady()` tells when the radio is up.
   */
  async start(): Promise<void> {
    const { lines, store, clock, vehicle } = this.#p;
    await this.#write(lines.contactor, false, "contactor");
    const readInputs = async () => ({
      contactorClosed: await lines.contactorFeedback.read(),
      lockEngaged: await lines.lockFeedback.read(),
      vehicle: vehicle ? await vehicle.present() : undefined,
      emergencyStop: lines.emergencyStop ? await lines.emergencyStop.read() : undefined,
      ...bootPilot(vehicle),
    });
    const atBoot = await readInputs();
    const meterNowWh = store.sessions.active() ? await this.#bootMeter() : undefined;
    for (const s of store.sessions.markInterrupted(clock.now(), meterNowWh)) {
      this.#log.warn(
        {
          sessionId: toHex(s.sessionId),
          codeId: toHex(s.codeId),
          energyWh: s.energyWh,
          energySource: s.energySource,
        },
        "session interrupted by a stop of the daemon: recorded as INTERRUPTED",
      );
    }
    const latched = store.faults
      .active()
      .map((f) => f.code)
      .filter((c): c is FaultCode => FAULT_CODES.includes(c as FaultCode)) as FaultCode[];
    await this.feed({
      type: "boot",
      feedback: atBoot,
      floor: store.floor.get(),
      ...(latched.length > 0 ? { latched } : {}),
    });
    this.#booted = true;

    this.#unsubs.push(
      lines.contactorFeedback.watch((closed) => void this.feed({ type: "contactorFeedback", closed })),
      lines.lockFeedback.watch((engaged) => void this.feed({ type: "lockFeedback", engaged })),
    );
    if (lines.emergencyStop) {
      this.#unsubs.push(
        lines.emergencyStop.watch((active) => void this.feed({ type: "emergencyStop", active })),
      );
    }
    if (vehicle) this.#unsubs.push(vehicle.watch((present) => void this.feed({ type: "vehicle", present })));
    if (vehicle?.pilot) this.#unsubs.push(watchPilot(vehicle.pilot, (i) => this.feed(i), this.#log));
    this.#watchHealth();
    // A change between the boot reading and the watches above would be lost: read once more and
    // feed whatever moved meanwhile.
    const now = await readInputs();
    if (now.contactorClosed !== atBoot.contactorClosed)
      await this.feed({ type: "contactorFeedback", closed: now.contactorClosed });
    if (now.lockEngaged !== atBoot.lockEngaged)
      await this.feed({ type: "lockFeedback", engaged: now.lockEngaged });
    if (now.vehicle !== atBoot.vehicle) await this.feed({ type: "vehicle", present: now.vehicle });
    if (now.pilot !== atBoot.pilot && now.pilot) await this.feed({ type: "pilot", state: now.pilot });
    if (now.emergencyStop !== undefined && now.emergencyStop !== atBoot.emergencyStop)
      await this.feed({ type: "emergencyStop", active: now.emergencyStop });
    this.#pruneLedger();
    this.#pruneTimer = setInterval(() => this.#pruneLedger(), PRUNE_EVERY_MS);
    this.#pollMeter();
    this.#heartbeat();
    if (this.#p.ble) await this.#startBle(this.#p.ble);
    else this.#radioUpResolve();
  }

  /** Input lines whose reads fail are faults of the core (FEEDBACK_UNREADABLE), not only a counter. */
  #watchHealth(): void {
    const { lines } = this.#p;
    const watched: [InputLine, DigitalInput | undefined][] = [
      ["contactorFeedback", lines.contactorFeedback],
      ["lockFeedback", lines.lockFeedback],
      ["emergencyStop", lines.emergencyStop],
    ];
    for (const [line, input] of watched) {
      const off = input?.health?.((readable, detail) => {
        if (!readable) {
          this.#count("gpio.unreadable");
          this.#log.error({ line, detail }, "input line cannot be read");
        }
        void this.feed({ type: "inputHealth", line, readable });
      });
      if (off) this.#unsubs.push(off);
    }
  }

  /**
   * The meter's import register at boot, the contactor commanded open (no energy flows): it
   * closes an interrupted session. undefined when the meter cannot be read (energy unknown).
   */
  async #bootMeter(): Promise<number | undefined> {
    try {
      return (await this.#p.meter.read()).energyImportWh;
    } catch (e) {
      this.#log.warn(
        { err: e instanceof Error ? e.message : String(e) },
        "meter unreadable at boot: an interrupted session's energy is unknown",
      );
      return undefined;
    }
  }

  /** Resolves when the radio is up (at once when BLE is disabled), or after `timeoutMs`. */
  async radioReady(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((r) => {
      timer = setTimeout(() => r(false), timeoutMs);
    });
    const up = await Promise.race([this.#radioUp.then(() => true), timeout]);
    clearTimeout(timer);
    return up;
  }

  /** Queues one input for the core; resolves with the effects it produced, once performed. */
  feed(input: InputBody): Promise<PileEffect[]> {
    return new Promise((done) => {
      this.#queue.push({ input, done });
      void this.#drain();
    });
  }

  /** Like feed(), but ahead of everything queued: acknowledgements of durable writes. */
  #feedFirst(input: InputBody): void {
    this.#queue.unshift({ input, done: () => {} });
  }

  async #drain(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      for (let job = this.#queue.shift(); job; job = this.#queue.shift()) {
        const due = this.core.nextDeadline();
        if (this.#booted && due !== undefined && due <= this.#p.clock.monotonic()) await this.#sampleInputs();
        const effects = await this.#step(job.input, this.#p.clock.monotonic());
        this.#flushDeferred();
        job.done(effects);
      }
    } finally {
      this.#running = false;
      this.#armDeadline();
    }
  }

  /** Hands one input to the core at `mono` and performs its effects in order. */
  async #step(body: InputBody, mono: number): Promise<PileEffect[]> {
    const input = { ...body, mono, wall: this.#p.clock.now() } as PileInput;
    const effects = this.core.handle(input);
    for (const e of effects) {
      try {
        await this.#perform(e);
      } catch (err) {
        // An effect that cannot be performed is logged and counted; the ones after it still
        // run (outputs are never skipped: each one is performed in its place in the batch).
        this.#count("effects.failed");
        this.#log.error(
          { effect: e.type, err: err instanceof Error ? err.message : String(err) },
          "effect failed",
        );
      }
    }
    return effects;
  }

  /**
   * A deadline is due: before the core may declare it missed, the inputs are read again and any
   * change is handed over first. After a stall of the loop, libuv runs due timers before it
   * polls I/O, so a feedback that arrived in time may still sit unread. A feedback that matches
   * its command answers its deadline (core.ts), so a healthy contactor is not taken for a slow or
   * a welded one; one that really did not move still reads as it was, and its deadline fires.
   */
  async #sampleInputs(): Promise<void> {
    const { lines, vehicle } = this.#p;
    const read = async <T>(f: () => Promise<T>): Promise<T | undefined> => {
      try {
        return await f();
      } catch {
        this.#count("inputs.sampleErrors");
        return undefined;
      }
    };
    const contactorClosed = await read(() => lines.contactorFeedback.read());
    const lockEngaged = await read(() => lines.lockFeedback.read());
    const estop = lines.emergencyStop ? await read(() => lines.emergencyStop!.read()) : undefined;
    const present = vehicle ? await read(() => vehicle.present()) : undefined;
    const seen = this.core.snapshot().feedback;
    const changes: InputBody[] = [];
    if (contactorClosed !== undefined && contactorClosed !== seen.contactor)
      changes.push({ type: "contactorFeedback", closed: contactorClosed });
    if (lockEngaged !== undefined && lockEngaged !== seen.lock)
      changes.push({ type: "lockFeedback", engaged: lockEngaged });
    if (estop !== undefined && estop !== seen.emergencyStop)
      changes.push({ type: "emergencyStop", active: estop });
    if (present !== undefined && present !== seen.vehicle) changes.push({ type: "vehicle", present });
    for (const c of changes) {
      this.#count("inputs.sampledChanges");
      await this.#step(c, this.#p.clock.monotonic());
    }
  }

  #armDeadline(): void {
    if (this.#stopped) return;
    const at = this.core.nextDeadline();
    if (at === this.#deadlineAt && this.#deadlineTimer) return;
    if (this.#deadlineTimer) clearTimeout(this.#deadlineTimer);
    this.#deadlineTimer = undefined;
    this.#deadlineAt = at;
    if (at === undefined) return;
    const delay = Math.max(0, Math.ceil(at - this.#p.clock.monotonic()));
    this.#deadlineTimer = setTimeout(() => {
      this.#deadlineTimer = undefined;
      this.#deadlineAt = undefined;
      void this.feed({ type: "tick" });
    }, delay);
  }

  async #write(line: DigitalOutput, active: boolean, what: string): Promise<void> {
    try {
      await line.write(active);
    } catch (e) {
      // The core's feedback deadline turns a write that did not happen into a fault.
      this.#count(`gpio.writeErrors`);
      this.#log.error(
        { line: what, active, err: e instanceof Error ? e.message : String(e) },
        "output write failed",
      );
    }
  }

  async #perform(e: PileEffect): Promise<void> {
    const { store, clock } = this.#p;
    switch (e.type) {
      case "contactor":
        if (e.closed) this.#contactorWritten = true;
        await this.#write(this.#p.lines.contactor, e.closed, "contactor");
        if (!e.closed) this.#contactorWritten = false;
        return;
      case "lock":
        return this.#write(this.#p.lines.lock, e.engaged, "lock");
      case "pilot":
        return performPilot(this.#p.vehicle?.pilot, e, this.#log);
      case "recordCode": {
        // The code id and its session's start in one transaction: a code is never spent (nor
        // its lock moved) without a session record. Nothing is live yet (no output has moved).
        const r = e.session;
        const ok = this.#guardStore("sessions.beginWithCode", () =>
          store.sessions.beginWithCode(
            {
              codeId: e.codeId,
              keyId: e.keyId,
              issuedAt: e.issuedAt,
              expiresAt: e.expiresAt,
              carrier: r.carrier,
              deviceId: r.deviceId,
            },
            {
              sessionId: r.sessionId,
              codeId: r.codeId,
              keyId: r.keyId,
              deviceId: r.deviceId,
              carrier: r.carrier,
              startedAt: Number(r.startedAt),
              meterStartWh: r.meterStartWh ?? null,
            },
          ),
        );
        if (!ok) this.#log.error({ codeId: toHex(e.codeId) }, "cannot record the code id: refusing it");
        this.#feedFirst({ type: "codeRecorded", codeId: e.codeId, ok });
        return;
      }
      case "sessionStarted": {
        const r = e.record;
        this.#log.info(
          {
            sessionId: toHex(r.sessionId),
            codeId: toHex(r.codeId),
            carrier: r.carrier,
            deviceId: r.deviceId,
          },
          "session accepted",
        );
        return;
      }
      case "sessionUpdate": {
        const r = e.record;
        return this.#storeWrite({
          op: "sessions.progress",
          sessionId: r.sessionId,
          progress: {
            energyWh: r.energyWh,
            lastMeterWh: r.energyStartWh !== undefined ? r.energyStartWh + r.energyWh : null,
            meterStartWh: r.energyStartWh ?? null,
            at: clock.now(),
          },
        });
      }
      case "sessionEnded": {
        const r = e.record;
        await this.#storeWrite({
          op: "sessions.finish",
          sessionId: r.sessionId,
          finish: {
            stoppedAt: Number(r.endedAt),
            meterStopWh: r.energyStopWh ?? null,
            meterStartWh: r.energyStartWh ?? null,
            energyWh: r.energyWh,
            stopReason: r.stopReason,
            faults: r.faults,
          },
        });
        this.#log.info(
          { sessionId: toHex(r.sessionId), stopReason: r.stopReason, energyWh: r.energyWh, faults: r.faults },
          "session ended",
        );
        return;
      }
      case "send":
        return this.#send(e.connId, e.message);
      case "disconnect": {
        const entry = this.#conns.get(e.connId);
        if (!entry) return;
        this.#count(`ble.drop.${e.reason}`);
        this.#log.info({ conn: e.connId, reason: e.reason }, "dropping connection");
        entry.conn.disconnect();
        return;
      }
      case "securityEvent":
        this.lastSecurityEvent = { at: clock.now(), failures: e.failures };
        this.#count("security.events");
        this.#log.error(
          { event: e.event, failures: e.failures, threshold: e.threshold, windowMs: e.windowMs },
          "security event: failed proofs past the threshold",
        );
        this.#audit("daemon", "security", e.event, `${e.failures} failed proofs within ${e.windowMs} ms`);
        return;
      case "fault":
        await this.#storeWrite({ op: "faults.raise", code: e.code, detail: e.detail, at: clock.now() });
        this.#log.error({ fault: e.code, detail: e.detail }, "fault latched");
        this.#audit("daemon", "fault", e.code, e.detail);
        return;
      case "faultCleared":
        for (const code of e.codes)
          await this.#storeWrite({ op: "faults.clear", code, by: "technician", at: clock.now() });
        this.#log.info({ faults: e.codes }, "faults cleared");
        return;
      case "state":
        this.stateSince = clock.now();
        this.#log.info({ state: e.state }, "pile state");
        this.#p.notifier.status(`${e.state}`);
        return;
      case "relayTestDone":
        for (const w of this.#relayTestWaiters.splice(0)) w({ ok: e.ok, detail: e.detail });
        return;
      case "rejected":
        this.#count(`core.rejected.${e.input}`);
        this.#log.warn({ input: e.input, code: e.code, detail: e.detail }, "input refused");
        return;
      case "log":
        this.#log[e.level](e.fields, e.event);
        return;
    }
  }

  /**
   * The contactor may be live: commanded closed, or not yet read open. While it is, nothing on
   * the control loop waits for a durable write (DESIGN.md, safety invariants). A latched weld is
   * the one exception: commanded open and reading closed, there is nothing left the loop could
   * do to open it, and its record (WELD first) must reach the disk to survive a power cut.
   */
  contactorMayBeLive(): boolean {
    // What was written to the coil so far, not what the core has just decided: a record made
    // before the contactor's closing in the same batch is still written on the loop.
    if (this.#contactorWritten) return true;
    const snap = this.core.snapshot();
    return snap.feedback.contactor !== false && !snap.faults.includes("WELD");
  }

  /**
   * A synchronous durable write on the loop's own connection. Refused (false, counted and
   * logged) while the contactor may be live: an fsync that stalls there would hold up the
   * emergency stop, the feedbacks and the watchdog.
   */
  #guardStore(what: string, fn: () => unknown): boolean {
    if (this.#booted && this.contactorMayBeLive()) {
      this.#count("store.refusedWhileLive");
      this.#log.error({ op: what }, "synchronous store write refused while the contactor may be live");
      return false;
    }
    try {
      fn();
      this.#count("store.durableWrites");
      return true;
    } catch (e) {
      this.#count("store.errors");
      this.#log.error({ op: what, err: e instanceof Error ? e.message : String(e) }, "store write failed");
      return false;
    }
  }

  /**
   * One durable record of the control loop. While the contactor may be live it goes, in order,
   * to the write worker (acknowledged back, never awaited) or, without one, waits until the
   * contactor reads open. Otherwise it is durable when this resolves: written here after what
   * is held back, or, with writes still at the worker, after them there (awaited: nothing is
   * live). So a record made once the contactor reads open (a session's end) is on the disk
   * before the effect after it (the lock's release) is performed.
   */
  async #storeWrite(o: StoreOp): Promise<void> {
    const { writer, store } = this.#p;
    const live = this.#booted && this.contactorMayBeLive();
    if (!live) {
      this.#flushDeferred();
      if ((writer?.pending() ?? 0) === 0) {
        this.#guardStore(o.op, () => applyStoreOp(store, o));
        return;
      }
    }
    if (!writer) {
      this.#count("store.deferred");
      this.#deferred.push(o);
      return;
    }
    this.#count("store.offLoop");
    const durable = writer.submit(o).then(
      () => this.#count("store.durableWrites"),
      (e: unknown) => {
        const code = e instanceof StoreError ? e.code : "IO";
        if (RETRY_ON_LOOP.has(code)) {
          // the worker could not reach the file: the write waits for the contactor to read open
          this.#count("store.workerFailed");
          this.#log.warn(
            { op: o.op, code },
            "write worker failed: the record waits for the contactor to open",
          );
          this.#deferred.push(o);
          if (!live) this.#flushDeferred();
          return;
        }
        this.#count("store.errors");
        this.#log.error({ op: o.op, err: e instanceof Error ? e.message : String(e) }, "store write failed");
      },
    );
    if (!live) await durable;
  }

  /** Writes held back while the contactor was live, now that it reads open. */
  #flushDeferred(): void {
    if (this.#deferred.length === 0 || this.contactorMayBeLive()) return;
    const { store } = this.#p;
    for (const o of this.#deferred.splice(0)) this.#guardStore(o.op, () => applyStoreOp(store, o));
  }

  /** An audit entry of the front ends (console, control socket), written as the loop's own are. */
  recordAudit(entry: AuditEntry): void {
    void this.#storeWrite({ op: "audit.append", entry });
  }

  #audit(
    actor: "daemon" | "ble" | "console" | "control",
    action: string,
    outcome: string,
    detail?: string,
  ): void {
    void this.#storeWrite({
      op: "audit.append",
      entry: {
        at: this.#p.clock.now(),
        actor,
        action,
        outcome,
        ...(detail ? { detail } : {}),
      },
    });
  }

  #send(connId: string, message: Parameters<typeof encodeMessage>[0]): void {
    const entry = this.#conns.get(connId);
    if (!entry) return;
    const bytes = encodeMessage(message);
    this.#count(`ble.tx.${message.type}`);
    for (const f of fragment(bytes, entry.conn.mtu)) entry.conn.notify(f);
    traceFrame(this.#log, "tx", bytes, { conn: connId, type: message.type });
  }

  // ---- meter ------------------------------------------------------------------------------

  #pollMeter(): void {
    if (this.#stopped) return;
    const started = this.#p.clock.monotonic();
    this.#p.meter
      .read()
      .then(
        (reading) => {
          this.lastMeter = reading;
          this.lastMeterError = undefined;
          const outage = this.#meterOutage;
          if (outage) {
            this.#meterOutage = undefined;
            const ms = this.#p.clock.monotonic() - outage.since;
            this.#log.info({ failures: outage.failures, ms }, "meter outage ended");
          }
          void this.feed({
            type: "meterReading",
            reading: {
              energyImportWh: reading.energyImportWh,
              powerW: reading.powerW,
              takenAt: reading.takenAt,
            },
          });
        },
        (e: unknown) => {
          // A read cut short by a clean stop (the bus closing under it) is no outage.
          if (this.#stopped) return;
          const code = e instanceof MeterError ? e.code : "PORT";
          this.lastMeterError = e instanceof MeterError ? e : new MeterError("PORT", String(e));
          this.#count(`meter.${code}`);
          // One line when an outage begins and one when it ends, not one per poll.
          if (this.#meterOutage) this.#meterOutage.failures++;
          else {
            this.#meterOutage = { since: this.#p.clock.monotonic(), failures: 1 };
            this.#log.warn({ code, err: e instanceof Error ? e.message : String(e) }, "meter outage began");
          }
          void this.feed({ type: "meterError", code });
        },
      )
      .finally(() => {
        if (this.#stopped) return;
        const wait = Math.max(0, this.#p.config.meter.pollIntervalMs - (this.#p.clock.monotonic() - started));
        this.#meterTimer = setTimeout(() => this.#pollMeter(), wait);
      });
  }

  /**
   * Drops ledger entries whose code can never pass the time check again. Pruned against the
   * durable time floor, not the board clock: `now` is never below the floor, so an entry that
   * expired before it is dead whatever the clock does later (a clock set wrongly ahead cannot
   * make the pile forget a code that could still be replayed).
   */
  #pruneLedger(): void {
    const { store } = this.#p;
    if (this.contactorMayBeLive()) return; // the next hour's prune catches up
    this.#guardStore("ledger.prune", () => {
      const n = store.ledger.prune(store.floor.get());
      if (n > 0) this.#log.info({ pruned: n, kept: store.ledger.count() }, "replay ledger pruned");
    });
  }

  #heartbeat(): void {
    this.#beatTimer = setInterval(() => {
      void this.feed({ type: "tick" }).then(() => {
        this.lastBeat = this.#p.clock.monotonic();
      });
    }, HEARTBEAT_MS);
  }

  /** The control loop got a heartbeat through recently: feed the systemd watchdog. */
  healthy(): boolean {
    return this.#p.clock.monotonic() - this.lastBeat < 3 * HEARTBEAT_MS + 500;
  }

  // ---- BLE --------------------------------------------------------------------------------

  async #startBle(ble: BlePeripheral): Promise<void> {
    const log = this.#p.log.child({ component: "ble" });
    await ble.start({
      info: () => infoBytes(this.core.snapshot(), this.#p.keys.ids()),
      connect: (conn) => {
        this.#conns.set(conn.id, { conn, reassembler: new Reassembler(conn.mtu) });
        this.#count("ble.connections");
        log.info({ conn: conn.id }, "central connected");
        void this.feed({ type: "connected", connId: conn.id });
      },
      write: (conn, data) => {
        const entry = this.#conns.get(conn.id);
        if (!entry) return;
        entry.reassembler.setMtu(conn.mtu);
        for (const out of entry.reassembler.push(data, this.#p.clock.monotonic())) {
          if (out.kind === "message") {
            traceFrame(log, "rx", out.message, { conn: conn.id });
            void this.feed({ type: "message", connId: conn.id, bytes: out.message });
          } else if (out.kind === "error") {
            this.#count(`ble.fragment.${out.why as FragmentFault}`);
            void this.feed({ type: "fragmentError", connId: conn.id });
          } else if (out.kind === "dropped") this.#count("ble.fragment.dropped");
        }
      },
      disconnect: (conn) => {
        this.#conns.delete(conn.id);
        log.info({ conn: conn.id }, "central disconnected");
        void this.feed({ type: "disconnected", connId: conn.id });
      },
      radio: (state, detail) => {
        this.bleState = state;
        void this.feed({ type: "radio", up: state === "up" });
        if (state === "up") {
          log.info({ detail }, "radio up, advertising");
          this.#radioUpResolve();
        } else log.warn({ detail }, "radio down");
      },
    });
  }

  // ---- technicians ------------------------------------------------------------------------

  snapshot(): PileSnapshot {
    return this.core.snapshot();
  }

  async technician(
    cmd: TechnicianCommand,
  ): Promise<{ ok: true } | { ok: false; code: string; message: string }> {
    const effects = await this.feed({ type: "technician", ...cmd } as InputBody);
    const refused = effects.find((e) => e.type === "rejected");
    return refused && refused.type === "rejected"
      ? { ok: false, code: refused.code, message: refused.detail }
      : { ok: true };
  }

  async relayTest(timeoutMs = 15_000): Promise<{ ok: boolean; detail: string }> {
    const result = new Promise<{ ok: boolean; detail: string }>((r) => this.#relayTestWaiters.push(r));
    const started = await this.technician({ command: "relayTest" });
    if (!started.ok) {
      this.#relayTestWaiters.pop();
      return { ok: false, detail: `${started.code}: ${started.message}` };
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<{ ok: boolean; detail: string }>((r) => {
      timer = setTimeout(() => r({ ok: false, detail: "no outcome in time" }), timeoutMs);
    });
    const r = await Promise.race([result, timeout]);
    clearTimeout(timer);
    return r;
  }

  /**
   * Orderly stop (SIGTERM): the contactor opens first, through the core (a session ends as a
   * technician stop would), then every timer and adapter is let go.
   */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    const snap = this.core.snapshot();
    if (snap.session) {
      await this.technician({ command: "stop" });
      // give the core its opening/unlocking deadlines to confirm the contactor open
      const until =
        this.#p.clock.monotonic() +
        this.#p.config.deadlines.contactorOpenMs +
        this.#p.config.deadlines.lockReleaseMs +
        500;
      while (this.core.snapshot().session && this.#p.clock.monotonic() < until)
        await new Promise((r) => setTimeout(r, 50));
    }
    this.#stopped = true;
    await this.#write(this.#p.lines.contactor, false, "contactor");
    for (const u of this.#unsubs.splice(0)) u();
    for (const t of [this.#deadlineTimer, this.#meterTimer]) if (t) clearTimeout(t);
    if (this.#beatTimer) clearInterval(this.#beatTimer);
    if (this.#pruneTimer) clearInterval(this.#pruneTimer);
    if (this.#p.ble) await this.#p.ble.stop().catch(() => {});
    // The loop is over: records still held back (a contactor that never read open) are written now.
    for (const o of this.#deferred.splice(0)) {
      try {
        applyStoreOp(this.#p.store, o);
        this.#count("store.durableWrites");
      } catch (e) {
        this.#count("store.errors");
        this.#log.error({ op: o.op, err: e instanceof Error ? e.message : String(e) }, "store write failed");
      }
    }
  }
}
