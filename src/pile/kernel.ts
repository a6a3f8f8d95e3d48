/**
 * The pile core's state, shared by its rooms (boot, exchange, session, actuators, interlock,
 * faults, technician, deadlines): one object, no logic beyond the small reads every room needs
 * and the effect helpers. `PileCore` owns the only instance.
 */
import {
  type CryptoSuite,
  type KeyLookup,
  type OpenedCode,
  type PileMessage,
  type PileStateName,
  Reason,
  type ReasonName,
  reasonName,
} from "../protocol/index.js";
import { Actuator } from "./actuator.js";
import { meterFresh, type PileCoreConfig } from "./config.js";
import { EffectBuffer } from "./effects.js";
import { ProofFailureWatch, protocolProofPolicy } from "./rate-limit.js";
import { TimeFloor } from "./time-floor.js";
import type {
  FaultCode,
  InputLine,
  LogLevel,
  MeterSample,
  Phase,
  PileCoreErrorCode,
  PileCounters,
  PileInput,
  PilotInputState,
  SessionStartRecord,
  StopReason,
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

export interface Exchange {
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

export interface Conn {
  exchange: Exchange | undefined;
  /** Failed proofs sent on this connection (§3: 3 and every further HELLO is RATE_LIMITED). */
  failures: number;
  /** Last moment it was seen busy (a message, an exchange in progress, a session of its own). */
  busyAt: number;
}

export interface Session {
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

export interface RelayTest {
  ok: boolean;
  detail: string;
}

export type Fields = Record<string, string | number | boolean>;

/** The phases a session may be stopped from (the contactor may be, or be about to be, closed). */
export const STOPPABLE: ReadonlySet<Phase> = new Set(["locking", "closing", "charging"]);

/** RESULT/ERROR reasons that are no refusal, or that are logged where they arise. */
const NOT_REFUSALS = new Set<string>(["ACCEPTED", "STOPPED", "BAD_PROOF"]);

export function newCounters(): PileCounters {
  return {
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
}

export class Kernel {
  out = new EffectBuffer();
  now = 0;
  /** mono of the input being handled (deadlines fire at their own, earlier, times). */
  inputMono = 0;
  lastWall: { wall: number; mono: number } | undefined;
  phase: Phase = "unbooted";
  lastState: PileStateName | undefined;
  floor = new TimeFloor(0n);
  readonly proofs = new ProofFailureWatch(protocolProofPolicy);
  readonly contactor = new Actuator();
  readonly lock = new Actuator();
  vehicle: boolean | undefined;
  /** Where a pilot MCU senses the vehicle: its last report (undefined = no MCU, a plug GPIO). */
  pilot: { state: PilotInputState; diodeFailed: boolean } | undefined;
  /** The PWM current asked of the MCU (null = off); the relay-test permit asked. */
  pwmA: number | null = null;
  /** The technician's cap on the PWM's current (technician setCurrentLimit); null = none. */
  currentLimitA: number | null = null;
  testPermit = false;
  estop = false;
  meter: MeterSample | undefined;
  readonly faults = new Set<FaultCode>();
  /** Input lines whose last read failed. */
  readonly unreadable = new Set<InputLine>();
  unavailable = false;
  radioDown = false;
  /** What keeps the store from taking a new session's records (the runtime's "store" input). */
  storeProblems: readonly string[] = [];
  session: Session | undefined;
  /** A session given up before its record was acknowledged: a late acknowledgement closes it. */
  abandoned: { sessionId: Uint8Array; codeId: Uint8Array } | undefined;
  relay: RelayTest | undefined;
  readonly conns = new Map<string, Conn>();
  /** Code ids accepted by this process, written or not yet: never accepted twice. */
  readonly usedHere = new Set<string>();
  readonly counters: PileCounters = newCounters();

  constructor(
    readonly cfg: PileCoreConfig,
    readonly deps: PileCoreDeps,
  ) {}

  // ---- outputs --------------------------------------------------------------------------

  /** Commands the contactor (effect first); a deadline is set unless the feedback matches. */
  commandContactor(closed: boolean, ms: number): void {
    this.out.push({ type: "contactor", closed });
    this.contactor.command(closed, this.now, ms);
  }

  commandLock(engaged: boolean, ms: number): void {
    this.out.push({ type: "lock", engaged });
    this.lock.command(engaged, this.now, ms);
  }

  // ---- reads ----------------------------------------------------------------------------

  /** One freshness rule for the whole pile: a reading younger than meterStaleMs. */
  meterFresh(): boolean {
    return this.meter !== undefined && meterFresh(this.now - this.meter.takenAt, this.cfg);
  }

  sessionEnergy(s: Session): number {
    if (s.energyStartWh === undefined || !this.meter) return 0;
    return Math.max(0, this.meter.energyImportWh - s.energyStartWh);
  }

  powerNow(): number {
    return this.meter && this.meterFresh() ? this.meter.powerW : 0;
  }

  elapsedS(s: Session): number {
    return Math.floor((this.now - s.acceptedAt) / 1000);
  }

  wallNow(): bigint {
    const w = this.lastWall;
    return this.floor.now(w ? w.wall + (this.now - w.mono) : undefined);
  }

  conn(id: string): Conn {
    let c = this.conns.get(id);
    if (!c) {
      c = { exchange: undefined, failures: 0, busyAt: this.now };
      this.conns.set(id, c);
    }
    return c;
  }

  // ---- effects --------------------------------------------------------------------------

  result(connId: string, reason: ReasonName): void {
    this.send(connId, { type: "RESULT", reason: Reason[reason] });
  }

  error(connId: string, reason: ReasonName): void {
    this.send(connId, { type: "ERROR", reason: Reason[reason] });
  }

  send(connId: string, message: PileMessage): void {
    if (message.type === "RESULT" || message.type === "ERROR") {
      const name = reasonName(message.reason);
      if (name) this.counters.reasons[name] = (this.counters.reasons[name] ?? 0) + 1;
      // Every refusal leaves one line with its reason (bad proofs have their own, proof.failed).
      if (name && !NOT_REFUSALS.has(name))
        this.log("info", "refused", { connId, message: message.type, reason: name });
    }
    this.out.push({ type: "send", connId, message });
  }

  reject(input: string, code: PileCoreErrorCode, detail: string): void {
    this.counters.rejectedInputs++;
    this.out.push({ type: "rejected", input: input as PileInput["type"], code, detail });
  }

  /**
   * A log line for what no other effect tells: session starts and ends, faults and their
   * clearing are logged by the runtime from their own effects, once.
   */
  log(level: LogLevel, event: string, fields: Fields): void {
    this.out.push({ type: "log", level, event, fields });
  }
}
