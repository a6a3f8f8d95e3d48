/**
 * The pile core: verification exchange, session state machine, interlocks and fault policy.
 * Pure: `handle(input)` returns the effects to perform, in order; see index.ts for the contract.
 */
import {
  type CryptoSuite,
  checkClaims,
  codeExpiry,
  decodeClientMessage,
  deriveVerifySecret,
  deviceProof,
  equalBytes,
  type Hello,
  type KeyLookup,
  type OpenedCode,
  openCode,
  type PileMessage,
  PileState,
  type PileStateName,
  type Present,
  pileProof,
  Reason,
  type ReasonName,
  reasonName,
  type Stop,
  stopProof,
  toHex,
} from "../protocol/index.js";
import type { PileCoreConfig } from "./config.js";
import { EffectBuffer } from "./effects.js";
import { contactorInterlocks, type InterlockFacts } from "./guard.js";
import { ProofFailureWatch, protocolProofPolicy } from "./rate-limit.js";
import { TimeFloor } from "./time-floor.js";
import {
  FAULT_CODES,
  type FaultCode,
  type InputLine,
  type LogLevel,
  type MeterSample,
  type Phase,
  type PileCoreErrorCode,
  type PileCounters,
  type PileEffect,
  type PileInput,
  type PileSnapshot,
  type SessionEndRecord,
  type SessionStartRecord,
  type StopReason,
  type TechnicianCommand,
} from "./types.js";

/** Synchronous read view of the replay ledger (the store's). */
export interface LedgerView {
  isUsed(codeId: Uint8Array): boolean;
}

export interface PileCoreDeps {
  suite: CryptoSuite;
  keys: KeyLookup;
  ledger: LedgerView;
  /** n fresh random bytes (nonces, session ids). */
  random(n: number): Uint8Array;
}

/** A relay output with its feedback and the deadline by which the feedback must match. */
interface Actuator {
  cmd: boolean | undefined;
  fb: boolean | undefined;
  deadline: number | undefined;
}

interface Exchange {
  keyId: number;
  codeId: Uint8Array;
  clientNonce: Uint8Array;
  pileNonce: Uint8Array;
  /** Verification secret of the HELLO's codeId: memory only, never in an effect. */
  v: Uint8Array;
  startedAt: number;
  /** A PRESENT or STOP arrived: the exchange clock stopped. */
  answered: boolean;
  presented: boolean;
}

interface Conn {
  exchange: Exchange | undefined;
  /** Failed proofs sent on this connection (§3: 3 and every further HELLO is RATE_LIMITED). */
  failures: number;
  /** Last moment it was seen busy (a message, an exchange in progress, a session of its own). */
  busyAt: number;
}

interface Session {
  sessionId: Uint8Array;
  code: OpenedCode;
  connId: string;
  subscribers: Set<string>;
  /** Connections whose STOP waits for the contactor to be confirmed open. */
  waiters: Set<string>;
  recorded: boolean;
  recordDeadline: number;
  acceptedAt: number;
  lockConfirmedAt: number | undefined;
  meterWaitDeadline: number | undefined;
  chargingSince: number | undefined;
  energyStartWh: number | undefined;
  nextStatusAt: number | undefined;
  stopReason: StopReason | undefined;
  faults: FaultCode[];
  ended: boolean;
  /** The start record, written with the code id (recordCode). */
  start: SessionStartRecord;
  /** Energy of the last record emitted (progress or end): no STATUS carries more. */
  recordedWh: number;
  /** mono of the last progress record (undefined before the first). */
  recordedAt: number | undefined;
}

interface RelayTest {
  ok: boolean;
  detail: string;
}

type Fields = Record<string, string | number | boolean>;

const STOPPABLE: ReadonlySet<Phase> = new Set(["locking", "closing", "charging"]);

const U32 = 0xffffffff;
const clampU32 = (n: number) => (Number.isFinite(n) ? Math.min(U32, Math.max(0, Math.floor(n))) : 0);

export class PileCore {
  readonly #cfg: PileCoreConfig;
  readonly #deps: PileCoreDeps;
  #out = new EffectBuffer();
  #now = 0;
  /** mono of the input being handled (deadlines fire at their own, earlier, times). */
  #inputMono = 0;
  #lastWall: { wall: number; mono: number } | undefined;
  #phase: Phase = "unbooted";
  #lastState: PileStateName | undefined;
  #floor = new TimeFloor(0n);
  readonly #proofs = new ProofFailureWatch(protocolProofPolicy);
  readonly #contactor: Actuator = { cmd: undefined, fb: undefined, deadline: undefined };
  readonly #lock: Actuator = { cmd: undefined, fb: undefined, deadline: undefined };
  #vehicle: boolean | undefined;
  #estop = false;
  #meter: MeterSample | undefined;
  readonly #faults = new Set<FaultCode>();
  /** Input lines whose last read failed. */
  readonly #unreadable = new Set<InputLine>();
  #unavailable = false;
  #radioDown = false;
  #storeProblems: string[] = [];
  #session: Session | undefined;
  /** A session given up before its record was acknowledged: a late acknowledgement closes it. */
  #abandoned: { sessionId: Uint8Array; codeId: Uint8Array } | undefined;
  #relay: RelayTest | undefined;
  readonly #conns = new Map<string, Conn>();
  /** Code ids accepted by this process, written or not yet: never accepted twice. */
  readonly #usedHere = new Set<string>();
  readonly #counters: PileCounters = {
    messages: 0,
    badMessages: 0,
    fragmentErrors: 0,
    badProofs: 0,
    rateLimited: 0,
    idleDrops: 0,
    securityEvents: 0,
    exchangeTimeouts: 0,
    accepted: 0,
    sessions: 0,
    faults: 0,
    meterErrors: 0,
    rejectedInputs: 0,
    reasons: {},
  };

  constructor(cfg: PileCoreConfig, deps: PileCoreDeps) {
    this.#cfg = cfg;
    this.#deps = deps;
  }

  /** Feeds one input; returns the effects to perform, in order. Never throws. */
  handle(input: PileInput): PileEffect[] {
    this.#out = new EffectBuffer();
    try {
      const bad = validateInput(input);
      if (bad !== undefined) {
        this.#reject(inputType(input), "BAD_INPUT", bad);
        return this.#out.drain();
      }
      if (this.#phase === "unbooted" && input.type !== "boot") {
        this.#reject(input.type, "NOT_BOOTED", "feed boot first");
        return this.#out.drain();
      }
      const mono = Math.max(input.mono, this.#now);
      if (input.wall !== undefined && Number.isFinite(input.wall))
        this.#lastWall = { wall: input.wall, mono };
      this.#inputMono = mono;
      if (this.#answersDeadline(input)) {
        // A relay's feedback that matches its command answers that relay's deadline however late
        // the loop hands it over: after a stall, due timers run before the I/O poll. The runtime
        // reads the feedbacks again before it lets any deadline be declared missed.
        this.#now = mono;
        this.#markBusy();
        this.#dispatch(input);
        this.#expire(mono);
      } else {
        this.#expire(mono);
        this.#now = mono;
        this.#markBusy();
        this.#dispatch(input);
      }
      this.#enforce();
      this.#syncState();
      this.#markBusy();
    } catch (e) {
      this.#failSafe(e);
    }
    return this.#out.drain();
  }

  #answersDeadline(input: PileInput): boolean {
    if (input.type === "contactorFeedback")
      return this.#contactor.deadline !== undefined && input.closed === this.#contactor.cmd;
    if (input.type === "lockFeedback")
      return this.#lock.deadline !== undefined && input.engaged === this.#lock.cmd;
    return false;
  }

  /** Monotonic ms of the next deadline; feed { type: "tick" } at (or after) it. */
  nextDeadline(): number | undefined {
    let min: number | undefined;
    for (const d of this.#deadlines()) if (min === undefined || d.at < min) min = d.at;
    return min;
  }

  snapshot(): PileSnapshot {
    const s = this.#session;
    return {
      pileId: this.#cfg.pileId,
      state: this.#state(),
      phase: this.#phase,
      faults: [...this.#faults],
      unavailable: this.#unavailable,
      unavailableBecause: this.#unavailableBecause(),
      outputs: { contactor: this.#contactor.cmd === true, lock: this.#lock.cmd },
      feedback: {
        contactor: this.#contactor.fb,
        lock: this.#lock.fb,
        vehicle: this.#vehicle,
        emergencyStop: this.#estop,
      },
      meter: this.#meter && {
        energyImportWh: this.#meter.energyImportWh,
        powerW: this.#meter.powerW,
        ageMs: this.#now - this.#meter.takenAt,
      },
      session: s && {
        sessionId: toHex(s.sessionId),
        codeId: toHex(s.code.codeId),
        keyId: s.code.keyId,
        carrier: s.code.claims.carrier,
        deviceId: s.code.claims.deviceId,
        energyWh: this.#sessionEnergy(s),
        powerW: this.#powerNow(),
        elapsedS: this.#elapsedS(s),
        stopReason: s.stopReason,
      },
      timeFloorMs: this.#floor.floor.toString(),
      proofs: this.#proofs.snapshot(this.#now),
      rateLimitedConnections: [...this.#conns.values()].filter(
        (c) => c.failures >= protocolProofPolicy.perConnection,
      ).length,
      connections: this.#conns.size,
      counters: { ...this.#counters, reasons: { ...this.#counters.reasons } },
    };
  }

  // ---- dispatch -------------------------------------------------------------------------

  #dispatch(input: PileInput): void {
    switch (input.type) {
      case "boot":
        this.#boot(input);
        return;
      case "tick":
        return;
      case "connected":
        this.#conns.set(input.connId, { exchange: undefined, failures: 0, busyAt: this.#now });
        return;
      case "disconnected":
        this.#disconnected(input.connId);
        return;
      case "message":
        this.#message(input.connId, input.bytes, input.wall);
        return;
      case "fragmentError":
        this.#conn(input.connId);
        this.#counters.fragmentErrors++;
        this.#send(input.connId, { type: "ERROR", reason: Reason.BAD_MESSAGE });
        return;
      case "contactorFeedback":
        this.#contactorFeedback(input.closed);
        return;
      case "lockFeedback":
        this.#lockFeedback(input.engaged);
        return;
      case "vehicle":
        this.#vehicleSense(input.present);
        return;
      case "emergencyStop":
        this.#emergencyStop(input.active);
        return;
      case "inputHealth":
        this.#inputHealth(input.line, input.readable);
        return;
      case "meterReading":
        this.#meterReading(input.reading);
        return;
      case "radio":
        if (this.#radioDown === !input.up) return;
        this.#radioDown = !input.up;
        this.#log("info", "pile.radio", { up: input.up });
        return;
      case "store":
        this.#storeProblems = [...input.problems];
        return;
      case "meterError":
        // Counted only: the runtime logs an outage once when it begins and once when it ends.
        this.#counters.meterErrors++;
        return;
      case "codeRecorded":
        this.#codeRecorded(input.codeId, input.ok);
        return;
      case "technician":
        this.#technician(input);
        return;
    }
  }

  // ---- time -----------------------------------------------------------------------------

  #deadlines(): { at: number; fire: () => void }[] {
    const out: { at: number; fire: () => void }[] = [];
    const c = this.#contactor;
    const l = this.#lock;
    if (c.deadline !== undefined) out.push({ at: c.deadline, fire: () => this.#contactorTimeout() });
    if (l.deadline !== undefined) out.push({ at: l.deadline, fire: () => this.#lockTimeout() });
    const s = this.#session;
    if (s) {
      if (this.#phase === "authorizing")
        out.push({ at: s.recordDeadline, fire: () => this.#recordFailed("record not acknowledged in time") });
      if (this.#phase === "locking" && s.meterWaitDeadline !== undefined)
        out.push({ at: s.meterWaitDeadline, fire: () => this.#beginStop("METER_LOST") });
      if ((this.#phase === "closing" || this.#phase === "charging") && c.cmd === true) {
        const at = this.#meter ? this.#meter.takenAt + this.#cfg.meterStaleMs : this.#now;
        out.push({ at, fire: () => this.#beginStop("METER_LOST") });
      }
      if (this.#phase === "charging" && s.chargingSince !== undefined && s.code.claims.maxDurationS > 0) {
        const at = s.chargingSince + s.code.claims.maxDurationS * 1000;
        out.push({ at, fire: () => this.#beginStop("DURATION_LIMIT") });
      }
      if (this.#phase === "charging" && s.nextStatusAt !== undefined)
        out.push({ at: s.nextStatusAt, fire: () => this.#periodicStatus(s) });
    }
    for (const [id, conn] of this.#conns) {
      const ex = conn.exchange;
      if (ex && !ex.answered)
        out.push({ at: ex.startedAt + this.#cfg.exchangeTimeoutMs, fire: () => this.#exchangeTimeout(id) });
      else if (!this.#busy(id, conn))
        out.push({ at: conn.busyAt + protocolProofPolicy.idleDropMs, fire: () => this.#idleDrop(id) });
    }
    return out;
  }

  /** Fires every deadline up to `mono`, each at its own time, earliest first. */
  #expire(mono: number): void {
    for (let guard = 0; guard < 10_000; guard++) {
      let next: { at: number; fire: () => void } | undefined;
      for (const d of this.#deadlines()) if (d.at <= mono && (next === undefined || d.at < next.at)) next = d;
      if (!next) return;
      this.#now = Math.max(this.#now, next.at);
      this.#markBusy();
      next.fire();
      this.#enforce();
      this.#syncState();
      this.#markBusy();
    }
    throw new Error("deadlines do not progress");
  }

  #wallNow(): bigint {
    const w = this.#lastWall;
    return this.#floor.now(w ? w.wall + (this.#now - w.mono) : undefined);
  }

  // ---- boot -----------------------------------------------------------------------------

  #boot(input: Extract<PileInput, { type: "boot" }>): void {
    if (this.#phase !== "unbooted") {
      this.#reject("boot", "ALREADY_BOOTED", "boot fed twice");
      return;
    }
    this.#phase = "booting";
    this.#floor = new TimeFloor(input.floor);
    const fb = input.feedback;
    this.#contactor.fb = fb.contactorClosed;
    this.#lock.fb = fb.lockEngaged;
    this.#vehicle = fb.vehicle;
    this.#estop = fb.emergencyStop === true;
    // Faults latched before a restart stay latched (a weld keeps the lock engaged below).
    for (const code of input.latched ?? []) this.#faults.add(code);
    // Every output to its safe state first. The lock is only released once the contactor
    // reads open: a contactor that stays closed is a weld, and a live plug stays locked.
    this.#commandContactor(false, this.#cfg.contactorOpenMs);
    // A latched weld re-engages the lock whatever its rest position and whatever the aux
    // contact reads now (the stop step, a power cut or a technician may have moved it).
    if (this.#cfg.lockSafeState === "engaged" || this.#faults.has("WELD"))
      this.#commandLock(true, this.#cfg.lockConfirmMs);
    this.#log("info", "pile.boot", {
      contactorClosed: fb.contactorClosed,
      lockEngaged: fb.lockEngaged,
      timeFloorMs: this.#floor.floor.toString(),
    });
    if (input.interrupted) {
      const i = input.interrupted;
      this.#out.push({
        type: "sessionEnded",
        record: {
          sessionId: i.sessionId,
          codeId: i.codeId,
          stopReason: "INTERRUPTED",
          endedAt: this.#wallNow(),
          energyStartWh: i.energyStartWh,
          energyStopWh: undefined,
          energyWh: 0,
          faults: [],
        },
      });
      this.#log("warn", "session.interrupted", { sessionId: toHex(i.sessionId), codeId: toHex(i.codeId) });
    }
    if (this.#estop) this.#fault("EMERGENCY_STOP", "emergency stop active at boot");
    if (this.#phase === "booting" && this.#contactor.deadline === undefined) this.#bootContactorOpen();
  }

  #bootContactorOpen(): void {
    if (this.#cfg.lockSafeState === "released" && !this.#faults.has("WELD"))
      this.#commandLock(false, this.#cfg.lockReleaseMs);
    this.#bootProgress();
  }

  #bootProgress(): void {
    if (this.#phase !== "booting") return;
    if (this.#contactor.deadline !== undefined || this.#lock.deadline !== undefined) return;
    this.#phase = "idle";
    this.#log("info", "pile.ready", { state: this.#state() });
  }

  // ---- actuators ------------------------------------------------------------------------

  /** Commands the contactor; a deadline is set unless the feedback already matches. */
  #commandContactor(closed: boolean, ms: number): void {
    const c = this.#contactor;
    this.#out.push({ type: "contactor", closed });
    c.cmd = closed;
    c.deadline = c.fb === closed ? undefined : this.#now + ms;
  }

  #commandLock(engaged: boolean, ms: number): void {
    const l = this.#lock;
    this.#out.push({ type: "lock", engaged });
    l.cmd = engaged;
    l.deadline = l.fb === engaged ? undefined : this.#now + ms;
  }

  #contactorFeedback(closed: boolean): void {
    const c = this.#contactor;
    const was = c.fb;
    c.fb = closed;
    if (c.deadline !== undefined) {
      if (closed === c.cmd) {
        c.deadline = undefined;
        this.#contactorConfirmed();
      }
      return;
    }
    if (c.cmd === false && closed) this.#fault("WELD", "contactor reads closed while commanded open");
    else if (c.cmd === true && !closed && was !== false)
      this.#fault("CONTACTOR_LOST", "contactor dropped out");
  }

  #contactorConfirmed(): void {
    const c = this.#contactor;
    switch (this.#phase) {
      case "booting":
        this.#bootContactorOpen();
        return;
      case "closing":
        if (c.cmd === true) this.#charging();
        return;
      case "opening":
        if (c.cmd === false) this.#sessionContactorOpen();
        return;
      case "relayTest":
        if (c.cmd === true) this.#commandContactor(false, this.#cfg.contactorOpenMs);
        if (this.#contactor.deadline === undefined) this.#relayTestDone();
        return;
      default:
        return;
    }
  }

  #contactorTimeout(): void {
    const c = this.#contactor;
    c.deadline = undefined;
    if (c.cmd === false)
      this.#fault("WELD", `contactor still closed ${this.#cfg.contactorOpenMs} ms after opening`);
    else
      this.#fault("CONTACTOR_CLOSE_TIMEOUT", `contactor not closed within ${this.#cfg.contactorCloseMs} ms`);
  }

  #lockFeedback(engaged: boolean): void {
    const l = this.#lock;
    const was = l.fb;
    l.fb = engaged;
    if (l.deadline !== undefined) {
      if (engaged === l.cmd) {
        l.deadline = undefined;
        this.#lockConfirmed();
      }
      return;
    }
    if (l.cmd === true && !engaged && was !== false) {
      if (this.#session && !this.#session.ended) this.#fault("LOCK_LOST", "lock released during a session");
      else this.#log("warn", "lock.released_unexpectedly", {});
    } else if (l.cmd === false && engaged && was !== true) {
      this.#log("warn", "lock.engaged_unexpectedly", {});
    }
  }

  #lockConfirmed(): void {
    switch (this.#phase) {
      case "booting":
        this.#bootProgress();
        return;
      case "locking": {
        const s = this.#session;
        if (s && this.#lock.cmd === true) {
          s.lockConfirmedAt = this.#now;
          this.#tryClose();
        }
        return;
      }
      case "unlocking":
        if (this.#lock.cmd === false) this.#unlocked();
        return;
      default:
        return;
    }
  }

  #lockTimeout(): void {
    const l = this.#lock;
    l.deadline = undefined;
    if (l.cmd === true)
      this.#fault("LOCK_ENGAGE_TIMEOUT", `lock not engaged within ${this.#cfg.lockConfirmMs} ms`);
    else {
      this.#fault("LOCK_RELEASE_TIMEOUT", `lock not released within ${this.#cfg.lockReleaseMs} ms`);
      if (this.#phase === "unlocking") this.#unlocked();
    }
    this.#bootProgress();
  }

  // ---- plant inputs ---------------------------------------------------------------------

  #vehicleSense(present: boolean | undefined): void {
    this.#vehicle = present;
    if (present === false && STOPPABLE.has(this.#phase)) this.#beginStop("PLUG_REMOVED");
    if (present !== false && this.#phase === "relayTest")
      this.#abortRelayTest("vehicle sensed during relay test");
  }

  #emergencyStop(active: boolean): void {
    const was = this.#estop;
    this.#estop = active;
    if (active) this.#fault("EMERGENCY_STOP", "emergency stop active");
    else if (was) this.#log("info", "estop.released", {});
  }

  /** A line that cannot be read is a fault: its level, kept from before, may be wrong. */
  #inputHealth(line: InputLine, readable: boolean): void {
    if (readable) {
      if (this.#unreadable.delete(line)) this.#log("info", "input.readable", { line });
      return;
    }
    this.#unreadable.add(line);
    this.#fault("FEEDBACK_UNREADABLE", `${line} cannot be read`);
  }

  #meterReading(r: MeterSample): void {
    const takenAt = Math.min(r.takenAt, this.#now);
    if (this.#meter && takenAt < this.#meter.takenAt) return;
    this.#meter = { energyImportWh: r.energyImportWh, powerW: r.powerW, takenAt };
    const s = this.#session;
    if (!s) return;
    if (this.#phase === "locking" && s.lockConfirmedAt !== undefined) this.#tryClose();
    if (this.#phase === "charging" && s.code.claims.maxEnergyWh > 0) {
      if (this.#sessionEnergy(s) >= s.code.claims.maxEnergyWh) this.#beginStop("ENERGY_LIMIT");
    }
  }

  #meterFresh(): boolean {
    return this.#meter !== undefined && this.#now - this.#meter.takenAt < this.#cfg.meterStaleMs;
  }

  // ---- interlock ------------------------------------------------------------------------

  #facts(purpose: InterlockFacts["purpose"]): InterlockFacts {
    const s = this.#session;
    return {
      purpose,
      codeAccepted: s?.recorded === true && s.stopReason === undefined && !s.ended,
      lockConfirmed: this.#lock.cmd === true && this.#lock.fb === true,
      vehicle: this.#vehicle,
      faultLatched: this.#faults.size > 0,
      emergencyStop: this.#estop,
      meterFresh: this.#meterFresh(),
    };
  }

  /** The only place that closes the contactor for a session. */
  #tryClose(): void {
    const s = this.#session;
    if (!s || this.#phase !== "locking") return;
    const blockers = contactorInterlocks(this.#facts("session"));
    if (blockers.length === 0) {
      s.meterWaitDeadline = undefined;
      s.energyStartWh = this.#meter?.energyImportWh;
      s.chargingSince = this.#now;
      this.#phase = "closing";
      // No record here: the start register is durable with the code (recordCode), and a write
      // between this decision and the coil would eat into the contactor's closing deadline.
      this.#commandContactor(true, this.#cfg.contactorCloseMs);
      this.#log("info", "contactor.closing", { sessionId: toHex(s.sessionId) });
      if (this.#contactor.deadline === undefined) this.#charging();
      return;
    }
    if (blockers.length === 1 && blockers[0] === "METER") {
      s.meterWaitDeadline ??= this.#now + this.#cfg.meterStaleMs;
      return;
    }
    this.#log("warn", "contactor.close_refused", { interlocks: blockers.join(",") });
  }

  /** Re-checks the interlock while the contactor is commanded closed; opens it on any failure. */
  #enforce(): void {
    if (this.#contactor.cmd !== true) return;
    if (this.#phase === "relayTest") {
      if (contactorInterlocks(this.#facts("relayTest")).length > 0) this.#abortRelayTest("interlock");
      return;
    }
    const first = contactorInterlocks(this.#facts("session"))[0];
    if (first === undefined) return;
    switch (first) {
      case "EMERGENCY_STOP":
        this.#fault("EMERGENCY_STOP", "emergency stop active");
        return;
      case "LOCK":
        this.#fault("LOCK_LOST", "lock not engaged while the contactor is closed");
        return;
      case "VEHICLE":
        this.#beginStop("PLUG_REMOVED");
        return;
      case "METER":
        this.#beginStop("METER_LOST");
        return;
      default:
        if (this.#session && STOPPABLE.has(this.#phase)) {
          this.#beginStop("FAULT");
          return;
        }
        this.#fault("INTERNAL", `contactor closed without a session (${first})`);
        return;
    }
  }

  // ---- faults ---------------------------------------------------------------------------

  /** Any fault: contactor open first, latch, then the phase decides what follows. */
  #fault(code: FaultCode, detail: string): void {
    const c = this.#contactor;
    const wasClosed = c.cmd === true;
    this.#out.push({ type: "contactor", closed: false });
    c.cmd = false;
    if (code === "WELD" || c.fb === false) c.deadline = undefined;
    else if (wasClosed || c.deadline === undefined) c.deadline = this.#now + this.#cfg.contactorOpenMs;
    const fresh = !this.#faults.has(code);
    this.#faults.add(code);
    if (fresh) {
      this.#counters.faults++;
      this.#out.push({ type: "fault", code, detail });
    }
    const s = this.#session;
    if (s && !s.ended && !s.faults.includes(code)) s.faults.push(code);
    if (code === "WELD") {
      // Never release a live plug.
      if (this.#lock.cmd !== true || this.#lock.deadline !== undefined) {
        this.#out.push({ type: "lock", engaged: true });
        this.#lock.cmd = true;
        this.#lock.deadline = undefined;
      }
    }
    switch (this.#phase) {
      case "locking":
      case "closing":
      case "charging":
        this.#beginStop(code === "EMERGENCY_STOP" ? "EMERGENCY_STOP" : "FAULT");
        return;
      case "opening":
        if (code === "WELD") this.#sessionWelded();
        return;
      case "unlocking":
        if (code === "WELD") this.#unlocked();
        return;
      case "relayTest":
        if (this.#relay) this.#relay = { ok: false, detail: code };
        if (c.deadline === undefined) this.#relayTestDone();
        return;
      case "booting":
        this.#bootProgress();
        return;
      default:
        return;
    }
  }

  #failSafe(e: unknown): void {
    try {
      this.#out.push({ type: "contactor", closed: false });
      this.#contactor.cmd = false;
      if (!this.#faults.has("INTERNAL")) {
        this.#faults.add("INTERNAL");
        this.#out.push({ type: "fault", code: "INTERNAL", detail: "core failure" });
      }
      this.#log("error", "core.internal_error", { error: e instanceof Error ? e.name : typeof e });
      this.#syncState();
    } catch {
      // nothing more can be done safely here: the contactor(false) effect is already queued
    }
  }

  // ---- session --------------------------------------------------------------------------

  #charging(): void {
    const s = this.#session;
    if (!s) return;
    this.#phase = "charging";
    s.nextStatusAt = this.#now + this.#cfg.statusIntervalMs;
    this.#sessionUpdate(s);
    this.#log("info", "session.charging", { sessionId: toHex(s.sessionId) });
  }

  #periodicStatus(s: Session): void {
    // A late tick yields one STATUS, not one per missed period.
    const next = (s.nextStatusAt ?? this.#now) + this.#cfg.statusIntervalMs;
    s.nextStatusAt = next > this.#inputMono ? next : this.#inputMono + this.#cfg.statusIntervalMs;
    if (s.recordedAt === undefined || this.#now - s.recordedAt >= this.#cfg.progressIntervalMs)
      this.#sessionUpdate(s);
    this.#statusTo(s.subscribers, this.#state(), s);
  }

  #sessionUpdate(s: Session): void {
    const energyWh = this.#sessionEnergy(s);
    s.recordedWh = energyWh;
    s.recordedAt = this.#now;
    this.#out.push({
      type: "sessionUpdate",
      record: {
        sessionId: s.sessionId,
        state: this.#state(),
        energyStartWh: s.energyStartWh,
        energyWh,
        powerW: this.#powerNow(),
      },
    });
  }

  /** Ends a running session: the contactor opens first, the rest once it reads open. */
  #beginStop(reason: StopReason): void {
    const s = this.#session;
    if (!s || !STOPPABLE.has(this.#phase)) return;
    s.stopReason ??= reason;
    s.meterWaitDeadline = undefined;
    this.#phase = "opening";
    const c = this.#contactor;
    // Already commanded open (a fault came first): re-asserting it costs nothing.
    if (c.cmd !== false) this.#commandContactor(false, this.#cfg.contactorOpenMs);
    else this.#out.push({ type: "contactor", closed: false });
    if (this.#lock.cmd === true) this.#lock.deadline = undefined;
    this.#log("info", "session.stopping", { sessionId: toHex(s.sessionId), reason: s.stopReason });
    if (c.deadline === undefined) {
      if (c.fb === false) this.#sessionContactorOpen();
      else this.#sessionWelded();
    }
  }

  #endRecord(s: Session): SessionEndRecord {
    const stop = this.#meter?.energyImportWh;
    s.recordedWh = this.#sessionEnergy(s);
    return {
      sessionId: s.sessionId,
      codeId: s.code.codeId,
      stopReason: s.stopReason ?? "FAULT",
      endedAt: this.#wallNow(),
      energyStartWh: s.energyStartWh,
      energyStopWh: s.energyStartWh === undefined ? undefined : stop,
      energyWh: this.#sessionEnergy(s),
      faults: [...s.faults],
    };
  }

  #sessionContactorOpen(): void {
    const s = this.#session;
    if (!s) return;
    s.ended = true;
    this.#out.push({ type: "sessionEnded", record: this.#endRecord(s) });
    for (const id of s.waiters) this.#send(id, { type: "RESULT", reason: Reason.STOPPED });
    s.waiters.clear();
    this.#releaseLockToRest();
  }

  /** The lock goes back to its rest position (`lockSafeState`), then the pile is idle. */
  #releaseLockToRest(): void {
    if (this.#cfg.lockSafeState === "engaged") {
      this.#unlocked();
      return;
    }
    this.#phase = "unlocking";
    this.#commandLock(false, this.#cfg.lockReleaseMs);
    if (this.#lock.deadline === undefined) this.#unlocked();
  }

  /** The contactor cannot be confirmed open: FAULTED (latched by the caller), lock kept engaged. */
  #sessionWelded(): void {
    const s = this.#session;
    if (!s) return;
    if (!s.faults.includes("WELD")) s.faults.push("WELD");
    s.ended = true;
    this.#out.push({ type: "sessionEnded", record: this.#endRecord(s) });
    for (const id of s.waiters) this.#send(id, { type: "RESULT", reason: Reason.FAULTED });
    s.waiters.clear();
    this.#completeSession();
  }

  #unlocked(): void {
    if (this.#session) this.#completeSession();
    else {
      this.#phase = "idle";
      this.#syncState();
    }
  }

  /** The session is over: back to idle, and a last STATUS of the state it left the pile in. */
  #completeSession(): void {
    const s = this.#session;
    this.#session = undefined;
    this.#phase = "idle";
    this.#syncState();
    if (s) this.#statusTo(s.subscribers, this.#state(), s, true);
  }

  #sessionEnergy(s: Session): number {
    if (s.energyStartWh === undefined || !this.#meter) return 0;
    return Math.max(0, this.#meter.energyImportWh - s.energyStartWh);
  }

  #powerNow(): number {
    return this.#meter && this.#meterFresh() ? this.#meter.powerW : 0;
  }

  #elapsedS(s: Session): number {
    return Math.floor((this.#now - s.acceptedAt) / 1000);
  }

  // ---- state ----------------------------------------------------------------------------

  #state(): PileStateName {
    if (this.#faults.size > 0) return "FAULTED";
    switch (this.#phase) {
      case "unbooted":
      case "booting":
      case "relayTest":
        return "UNAVAILABLE";
      case "authorizing":
        return "AUTHORIZING";
      case "locking":
        return "PREPARING";
      case "closing":
      case "charging":
        return "CHARGING";
      case "opening":
      case "unlocking":
        return "FINISHING";
      case "idle":
        return this.#unavailableBecause().length > 0 ? "UNAVAILABLE" : "AVAILABLE";
    }
  }

  /** An idle pile that cannot take a session says so: set unavailable, meter stale, radio down. */
  #unavailableBecause(): string[] {
    const why: string[] = [];
    if (this.#unavailable) why.push("technician");
    if (!this.#meterFresh()) why.push("meter stale");
    if (this.#radioDown) why.push("radio down");
    why.push(...this.#storeProblems);
    return why;
  }

  #syncState(): void {
    const st = this.#state();
    if (st === this.#lastState) return;
    this.#lastState = st;
    this.#out.push({ type: "state", state: st });
    const s = this.#session;
    if (!s?.recorded) return;
    // The energy the STATUS tells is written first (records precede sends in the batch).
    if (!s.ended && s.recordedWh !== this.#sessionEnergy(s)) this.#sessionUpdate(s);
    this.#statusTo(s.subscribers, st, s);
  }

  /** `final`: the session has ended; its totals stay, the power is 0 (§3). */
  #statusTo(conns: Iterable<string>, state: PileStateName, s: Session | undefined, final = false): void {
    for (const id of conns) {
      this.#send(id, {
        type: "STATUS",
        state: PileState[state],
        energyWh: clampU32(s ? Math.min(this.#sessionEnergy(s), s.recordedWh) : 0),
        powerW: clampU32(s && !final ? this.#powerNow() : 0),
        elapsedS: clampU32(s ? this.#elapsedS(s) : 0),
      });
    }
  }

  // ---- BLE exchange ---------------------------------------------------------------------

  #conn(id: string): Conn {
    let c = this.#conns.get(id);
    if (!c) {
      c = { exchange: undefined, failures: 0, busyAt: this.#now };
      this.#conns.set(id, c);
    }
    return c;
  }

  #disconnected(id: string): void {
    this.#conns.delete(id);
    const s = this.#session;
    if (s) {
      s.subscribers.delete(id);
      s.waiters.delete(id);
    }
  }

  #message(connId: string, bytes: Uint8Array, wall: number | undefined): void {
    const conn = this.#conn(connId);
    conn.busyAt = this.#now;
    this.#counters.messages++;
    const m = decodeClientMessage(bytes);
    if (!m.ok) {
      this.#counters.badMessages++;
      this.#send(connId, { type: "ERROR", reason: Reason.BAD_MESSAGE });
      return;
    }
    switch (m.value.type) {
      case "HELLO":
        this.#hello(connId, conn, m.value);
        return;
      case "PRESENT":
        this.#present(connId, conn, m.value, wall);
        return;
      case "STOP":
        this.#stop(connId, conn, m.value);
        return;
    }
  }

  #hello(connId: string, conn: Conn, h: Hello): void {
    conn.exchange = undefined;
    if (conn.failures >= protocolProofPolicy.perConnection) {
      this.#counters.rateLimited++;
      this.#error(connId, "RATE_LIMITED");
      return;
    }
    if (h.version !== 1) {
      this.#error(connId, "UNSUPPORTED_VERSION");
      return;
    }
    const key = this.#deps.keys.get(h.keyId);
    if (!key) {
      this.#error(connId, "UNKNOWN_KEY");
      return;
    }
    const pileNonce = this.#deps.random(16);
    if (!(pileNonce instanceof Uint8Array) || pileNonce.length !== 16) throw new Error("random source");
    const v = deriveVerifySecret(this.#deps.suite, key.key, h.codeId);
    const proof = pileProof(this.#deps.suite, v, h.codeId, h.clientNonce, pileNonce, this.#cfg.pileId);
    conn.exchange = {
      keyId: h.keyId,
      codeId: h.codeId,
      clientNonce: h.clientNonce,
      pileNonce,
      v,
      startedAt: this.#now,
      answered: false,
      presented: false,
    };
    this.#send(connId, { type: "CHALLENGE", pileNonce, pileProof: proof });
  }

  #present(connId: string, conn: Conn, p: Present, wall: number | undefined): void {
    const ex = conn.exchange;
    if (!ex || ex.presented) {
      this.#error(connId, "OUT_OF_ORDER");
      return;
    }
    ex.presented = true;
    ex.answered = true;
    const suite = this.#deps.suite;
    const expected = deviceProof(suite, ex.v, ex.codeId, ex.pileNonce, ex.clientNonce);
    if (!suite.timingSafeEqual(expected, p.deviceProof)) {
      this.#proofFailed(connId, "PRESENT");
      return;
    }
    const opened = openCode(suite, this.#deps.keys, p.code);
    if (!opened.ok) {
      this.#result(connId, opened.error);
      return;
    }
    const code = opened.value;
    const bad = checkClaims(code, {
      pileId: this.#cfg.pileId,
      now: this.#floor.now(wall),
      skewMs: this.#cfg.skewMs,
      expect: { keyId: ex.keyId, codeId: ex.codeId },
    });
    if (bad) {
      this.#result(connId, bad);
      return;
    }
    const hex = toHex(code.codeId);
    let used: boolean;
    try {
      used = this.#usedHere.has(hex) || this.#deps.ledger.isUsed(code.codeId);
    } catch {
      this.#log("error", "ledger.read_failed", { codeId: hex });
      this.#result(connId, "FAULTED");
      return;
    }
    if (used) {
      this.#result(connId, "REPLAYED");
      return;
    }
    const refusal = this.#refusal(false);
    if (refusal) {
      this.#result(connId, refusal);
      return;
    }
    const sessionId = this.#deps.random(16);
    if (!(sessionId instanceof Uint8Array) || sessionId.length !== 16) throw new Error("random source");
    this.#usedHere.add(hex);
    const c = code.claims;
    const start: SessionStartRecord = {
      sessionId,
      codeId: code.codeId,
      keyId: code.keyId,
      issuedAt: c.issuedAt,
      carrier: c.carrier,
      deviceId: c.deviceId,
      maxEnergyWh: c.maxEnergyWh,
      maxDurationS: c.maxDurationS,
      startedAt: this.#wallNow(),
      meterStartWh: this.#meter?.energyImportWh,
    };
    this.#session = {
      sessionId,
      code,
      connId,
      subscribers: new Set([connId]),
      waiters: new Set(),
      recorded: false,
      recordDeadline: this.#now + this.#cfg.recordTimeoutMs,
      acceptedAt: this.#now,
      lockConfirmedAt: undefined,
      meterWaitDeadline: undefined,
      chargingSince: undefined,
      energyStartWh: undefined,
      nextStatusAt: undefined,
      stopReason: undefined,
      faults: [],
      ended: false,
      start,
      recordedWh: 0,
      recordedAt: undefined,
    };
    this.#phase = "authorizing";
    this.#out.push({
      type: "recordCode",
      codeId: code.codeId,
      keyId: code.keyId,
      issuedAt: c.issuedAt,
      expiresAt: codeExpiry(c, this.#cfg.skewMs),
      session: start,
    });
    this.#log("info", "code.accepted", { codeId: hex, keyId: code.keyId, connId });
  }

  /**
   * Preconditions of §3, in order: BUSY (a session running or being set up, or the pile booting,
   * finishing or testing its relay), FAULTED (a fault latched, the pile UNAVAILABLE for
   * maintenance, the emergency stop active, or the meter silent: it cannot meter a session),
   * NO_VEHICLE (the vehicle sense reads absent; undefined passes).
   */
  #refusal(ownSession: boolean): ReasonName | undefined {
    if (ownSession ? this.#phase !== "authorizing" : this.#phase !== "idle" || this.#session) return "BUSY";
    if (this.#faults.size > 0 || this.#unavailable || this.#estop || !this.#meterFresh()) return "FAULTED";
    if (this.#storeProblems.length > 0) return "FAULTED";
    if (this.#vehicle === false) return "NO_VEHICLE";
    return undefined;
  }

  #codeRecorded(codeId: Uint8Array, ok: boolean): void {
    const s = this.#session;
    const gone = this.#abandoned;
    if (gone && equalBytes(gone.codeId, codeId) && !(s && equalBytes(s.code.codeId, codeId))) {
      // Recorded after the pile gave up on it: nothing moved, the open record is closed.
      this.#abandoned = undefined;
      if (ok) this.#closeUnused(gone.sessionId, gone.codeId, "FAULT");
      return;
    }
    if (!s || this.#phase !== "authorizing" || !equalBytes(s.code.codeId, codeId)) {
      this.#reject("codeRecorded", "BAD_INPUT", "no recordCode pending for this code id");
      return;
    }
    if (!ok) {
      this.#recordFailed("store refused the code record");
      this.#abandoned = undefined;
      return;
    }
    s.recorded = true;
    this.#floor.raise(s.code.claims.issuedAt);
    const refusal = this.#refusal(true);
    if (refusal) {
      // The code is spent (recorded), but nothing moved: its session record is closed and the
      // carrier hears why.
      this.#session = undefined;
      this.#phase = "idle";
      this.#closeUnused(s.sessionId, s.code.codeId, refusal === "NO_VEHICLE" ? "PLUG_REMOVED" : "FAULT");
      this.#result(s.connId, refusal);
      return;
    }
    this.#counters.accepted++;
    this.#counters.sessions++;
    this.#phase = "locking";
    this.#commandLock(true, this.#cfg.lockConfirmMs);
    this.#out.push({ type: "sessionStarted", record: s.start });
    if (this.#conns.has(s.connId))
      this.#send(s.connId, { type: "RESULT", reason: Reason.ACCEPTED, sessionId: s.sessionId });
    if (this.#lock.deadline === undefined) this.#lockConfirmed();
  }

  #recordFailed(detail: string): void {
    const s = this.#session;
    if (!s || this.#phase !== "authorizing") return;
    this.#usedHere.delete(toHex(s.code.codeId));
    this.#session = undefined;
    this.#abandoned = { sessionId: s.sessionId, codeId: s.code.codeId };
    this.#phase = "idle";
    this.#log("error", "store.record_failed", { codeId: toHex(s.code.codeId), detail });
    this.#result(s.connId, "FAULTED");
  }

  /** Closes the record of a session that never moved anything (its code is spent). */
  #closeUnused(sessionId: Uint8Array, codeId: Uint8Array, stopReason: StopReason): void {
    this.#out.push({
      type: "sessionEnded",
      record: { sessionId, codeId, stopReason, endedAt: this.#wallNow(), energyWh: 0, faults: [] },
    });
    this.#log("warn", "session.unused", { sessionId: toHex(sessionId), reason: stopReason });
  }

  #stop(connId: string, conn: Conn, m: Stop): void {
    const ex = conn.exchange;
    if (!ex) {
      this.#error(connId, "OUT_OF_ORDER");
      return;
    }
    ex.answered = true;
    const suite = this.#deps.suite;
    const expected = stopProof(suite, ex.v, ex.codeId, ex.pileNonce);
    if (!suite.timingSafeEqual(expected, m.stopProof)) {
      this.#proofFailed(connId, "STOP");
      return;
    }
    const s = this.#session;
    if (!s?.recorded || s.ended || !equalBytes(s.code.codeId, ex.codeId)) {
      this.#result(connId, "OUT_OF_ORDER");
      return;
    }
    s.subscribers.add(connId);
    s.waiters.add(connId);
    this.#log("info", "session.stop_requested", { sessionId: toHex(s.sessionId), connId });
    if (STOPPABLE.has(this.#phase)) this.#beginStop("CARRIER_STOP");
  }

  #proofFailed(connId: string, what: "PRESENT" | "STOP"): void {
    this.#counters.badProofs++;
    const conn = this.#conn(connId);
    conn.failures++;
    this.#log("warn", "proof.failed", { message: what, connId, connFailures: conn.failures });
    this.#result(connId, "BAD_PROOF");
    if (conn.failures === protocolProofPolicy.perConnection)
      this.#log("warn", "proof.connection_limited", { connId, failures: conn.failures });
    if (this.#proofs.failure(this.#now)) {
      const p = protocolProofPolicy;
      const failures = this.#proofs.recent(this.#now);
      this.#counters.securityEvents++;
      this.#out.push({
        type: "securityEvent",
        event: "PROOF_FAILURES",
        failures,
        threshold: p.securityEventFailures,
        windowMs: p.securityEventWindowMs,
      });
      this.#log("error", "security.proof_failures", {
        failures,
        threshold: p.securityEventFailures,
        windowMs: p.securityEventWindowMs,
      });
    }
  }

  /** Busy: an exchange in progress, or a session of its own (started, stopping or watched). */
  #busy(id: string, conn: Conn): boolean {
    if (conn.exchange && !conn.exchange.answered) return true;
    const s = this.#session;
    return s !== undefined && (s.connId === id || s.subscribers.has(id) || s.waiters.has(id));
  }

  /** Idle time counts from the last moment a connection was busy. */
  #markBusy(): void {
    for (const [id, conn] of this.#conns) if (this.#busy(id, conn)) conn.busyAt = this.#now;
  }

  /** §3: an idle link cannot hold the radio. Asked again after another idle period if it stays. */
  #idleDrop(connId: string): void {
    const conn = this.#conns.get(connId);
    if (!conn) return;
    conn.busyAt = this.#now;
    this.#counters.idleDrops++;
    this.#log("info", "connection.idle_drop", { connId, idleMs: protocolProofPolicy.idleDropMs });
    this.#out.push({ type: "disconnect", connId, reason: "IDLE" });
  }

  #exchangeTimeout(connId: string): void {
    const conn = this.#conns.get(connId);
    if (!conn) return;
    conn.exchange = undefined;
    this.#counters.exchangeTimeouts++;
    this.#error(connId, "TIMEOUT");
  }

  #result(connId: string, reason: ReasonName): void {
    this.#send(connId, { type: "RESULT", reason: Reason[reason] });
  }

  #error(connId: string, reason: ReasonName): void {
    this.#send(connId, { type: "ERROR", reason: Reason[reason] });
  }

  #send(connId: string, message: PileMessage): void {
    if (message.type === "RESULT" || message.type === "ERROR") {
      const name = reasonName(message.reason);
      if (name) this.#counters.reasons[name] = (this.#counters.reasons[name] ?? 0) + 1;
      // Every refusal leaves one line with its reason (bad proofs have their own, proof.failed).
      if (name && !NOT_REFUSALS.has(name))
        this.#log("info", "refused", { connId, message: message.type, reason: name });
    }
    this.#out.push({ type: "send", connId, message });
  }

  // ---- technician -----------------------------------------------------------------------

  #technician(cmd: TechnicianCommand): void {
    switch (cmd.command) {
      case "stop":
        if (this.#phase === "relayTest") {
          this.#abortRelayTest("stopped by technician");
          return;
        }
        if (this.#phase === "authorizing") {
          this.#reject("technician", "BUSY", "session being set up");
          return;
        }
        if (this.#phase === "opening") return;
        if (!STOPPABLE.has(this.#phase)) {
          this.#reject("technician", "NO_SESSION", "no session running");
          return;
        }
        this.#beginStop("TECHNICIAN");
        return;
      case "clearFault":
        this.#clearFault();
        return;
      case "setAvailable":
        if (this.#unavailable === !cmd.available) return;
        this.#unavailable = !cmd.available;
        this.#log("info", "pile.availability", { available: cmd.available });
        return;
      case "relayTest":
        this.#relayTest();
        return;
    }
  }

  #clearFault(): void {
    if (this.#faults.size === 0) {
      this.#reject("technician", "NOT_FAULTED", "no fault latched");
      return;
    }
    if (this.#phase !== "idle") {
      this.#reject("technician", "BUSY", `pile is ${this.#phase}`);
      return;
    }
    if (
      this.#contactor.fb !== false ||
      this.#contactor.cmd !== false ||
      this.#contactor.deadline !== undefined
    ) {
      this.#reject("technician", "UNSAFE", "contactor does not read open");
      return;
    }
    if (this.#estop) {
      this.#reject("technician", "UNSAFE", "emergency stop active");
      return;
    }
    if (this.#unreadable.size > 0) {
      this.#reject("technician", "UNSAFE", `cannot read ${[...this.#unreadable].join(",")}`);
      return;
    }
    const codes = [...this.#faults];
    this.#faults.clear();
    this.#out.push({ type: "faultCleared", codes });
    if (this.#cfg.lockSafeState === "engaged") {
      if (this.#lock.cmd !== true) this.#commandLock(true, this.#cfg.lockConfirmMs);
    } else if (this.#lock.cmd !== false || this.#lock.fb !== false) this.#releaseLockToRest();
  }

  #relayTest(): void {
    if (this.#phase !== "idle") {
      this.#reject("technician", "BUSY", `pile is ${this.#phase}`);
      return;
    }
    const blockers = contactorInterlocks(this.#facts("relayTest"));
    if (blockers.length > 0 || this.#contactor.fb !== false) {
      this.#reject("technician", "UNSAFE", `relay test refused: ${blockers.join(",") || "CONTACTOR"}`);
      return;
    }
    this.#phase = "relayTest";
    this.#relay = { ok: true, detail: "closed and reopened" };
    this.#commandContactor(true, this.#cfg.contactorCloseMs);
    this.#log("info", "relaytest.start", {});
  }

  #abortRelayTest(detail: string): void {
    if (this.#phase !== "relayTest") return;
    this.#relay = { ok: false, detail };
    if (this.#contactor.cmd !== false) this.#commandContactor(false, this.#cfg.contactorOpenMs);
    if (this.#contactor.deadline === undefined) this.#relayTestDone();
  }

  #relayTestDone(): void {
    const r = this.#relay ?? { ok: false, detail: "unknown" };
    this.#relay = undefined;
    this.#phase = "idle";
    this.#out.push({ type: "relayTestDone", ok: r.ok, detail: r.detail });
    this.#log(r.ok ? "info" : "warn", "relaytest.done", { ok: r.ok, detail: r.detail });
  }

  // ---- misc -----------------------------------------------------------------------------

  #reject(input: string, code: PileCoreErrorCode, detail: string): void {
    this.#counters.rejectedInputs++;
    this.#out.push({ type: "rejected", input: input as PileInput["type"], code, detail });
  }

  /**
   * A log line for what no other effect tells: session starts and ends, faults and their
   * clearing are logged by the runtime from their own effects, once.
   */
  #log(level: LogLevel, event: string, fields: Fields): void {
    this.#out.push({ type: "log", level, event, fields });
  }
}

// ---- input validation (inputs may come from anywhere: never trust their shape) -------------

/** RESULT/ERROR reasons that are no refusal, or that are logged where they arise. */
const NOT_REFUSALS = new Set<string>(["ACCEPTED", "STOPPED", "BAD_PROOF"]);

const INPUT_TYPES = new Set<string>([
  "boot",
  "tick",
  "connected",
  "message",
  "fragmentError",
  "disconnected",
  "contactorFeedback",
  "lockFeedback",
  "vehicle",
  "emergencyStop",
  "inputHealth",
  "meterReading",
  "meterError",
  "radio",
  "store",
  "codeRecorded",
  "technician",
]);

function inputType(input: unknown): string {
  const t = typeof input === "object" && input !== null ? (input as { type?: unknown }).type : undefined;
  return typeof t === "string" && INPUT_TYPES.has(t) ? t : "unknown";
}

const isBool = (v: unknown): v is boolean => typeof v === "boolean";
const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const isId = (v: unknown): v is string => typeof v === "string" && v.length > 0 && v.length <= 256;

/** Why an input is malformed, or undefined when it is well-formed. */
const LATCHABLE: ReadonlySet<unknown> = new Set<FaultCode>(FAULT_CODES);
const INPUT_LINES: ReadonlySet<unknown> = new Set<InputLine>([
  "contactorFeedback",
  "lockFeedback",
  "emergencyStop",
]);

export function validateInput(input: unknown): string | undefined {
  if (typeof input !== "object" || input === null) return "input is not an object";
  const i = input as Record<string, unknown>;
  if (typeof i.type !== "string" || !INPUT_TYPES.has(i.type)) return "unknown input type";
  if (!isNum(i.mono) || i.mono < 0 || i.mono > Number.MAX_SAFE_INTEGER) return "mono must be 0..2^53-1";
  if (i.wall !== undefined && !isNum(i.wall)) return "wall must be a finite number";
  switch (i.type) {
    case "boot": {
      const f = i.feedback as Record<string, unknown> | undefined;
      if (typeof f !== "object" || f === null) return "boot.feedback missing";
      if (!isBool(f.contactorClosed) || !isBool(f.lockEngaged))
        return "boot.feedback needs contactorClosed, lockEngaged";
      if (f.vehicle !== undefined && !isBool(f.vehicle)) return "boot.feedback.vehicle";
      if (f.emergencyStop !== undefined && !isBool(f.emergencyStop)) return "boot.feedback.emergencyStop";
      if (typeof i.floor !== "bigint" || i.floor < 0n) return "boot.floor must be a bigint >= 0";
      const s = i.interrupted as Record<string, unknown> | undefined;
      if (s !== undefined) {
        if (typeof s !== "object" || s === null) return "boot.interrupted";
        if (!(s.sessionId instanceof Uint8Array) || !(s.codeId instanceof Uint8Array))
          return "boot.interrupted ids";
        if (s.energyStartWh !== undefined && !isNum(s.energyStartWh)) return "boot.interrupted.energyStartWh";
      }
      if (i.latched !== undefined && (!Array.isArray(i.latched) || !i.latched.every((c) => LATCHABLE.has(c))))
        return "boot.latched must list fault codes";
      return undefined;
    }
    case "connected":
    case "disconnected":
    case "fragmentError":
      return isId(i.connId) ? undefined : "connId";
    case "message":
      if (!isId(i.connId)) return "connId";
      return i.bytes instanceof Uint8Array ? undefined : "bytes must be a Uint8Array";
    case "contactorFeedback":
      return isBool(i.closed) ? undefined : "closed must be a boolean";
    case "lockFeedback":
      return isBool(i.engaged) ? undefined : "engaged must be a boolean";
    case "vehicle":
      return i.present === undefined || isBool(i.present)
        ? undefined
        : "present must be boolean or undefined";
    case "emergencyStop":
      return isBool(i.active) ? undefined : "active must be a boolean";
    case "radio":
      return isBool(i.up) ? undefined : "up must be a boolean";
    case "store":
      return Array.isArray(i.problems) &&
        i.problems.length <= 8 &&
        i.problems.every((p) => typeof p === "string" && p.length > 0 && p.length <= 200)
        ? undefined
        : "problems must list up to 8 reasons";
    case "inputHealth":
      if (!INPUT_LINES.has(i.line)) return "line must name an input line";
      return isBool(i.readable) ? undefined : "readable must be a boolean";
    case "meterReading": {
      const r = i.reading as Record<string, unknown> | undefined;
      if (typeof r !== "object" || r === null) return "reading missing";
      if (!isNum(r.energyImportWh) || r.energyImportWh < 0) return "reading.energyImportWh";
      if (!isNum(r.powerW)) return "reading.powerW";
      if (!isNum(r.takenAt) || r.takenAt < 0) return "reading.takenAt";
      return undefined;
    }
    case "meterError":
      return typeof i.code === "string" ? undefined : "code must be a string";
    case "codeRecorded":
      if (!(i.codeId instanceof Uint8Array)) return "codeId must be a Uint8Array";
      return isBool(i.ok) ? undefined : "ok must be a boolean";
    case "technician":
      switch (i.command) {
        case "stop":
        case "clearFault":
        case "relayTest":
          return undefined;
        case "setAvailable":
          return isBool(i.available) ? undefined : "available must be a boolean";
        default:
          return "unknown technician command";
      }
    default:
      return undefined;
  }
}
