/**
 * Inputs, effects, snapshot and errors of the pile core (see index.ts for the contract).
 */
import type { Carrier, PileMessage, PileStateName, ReasonName } from "../protocol/index.js";

/** Why a session ended. */
export type StopReason =
  | "CARRIER_STOP"
  | "PLUG_REMOVED"
  | "ENERGY_LIMIT"
  | "DURATION_LIMIT"
  | "TECHNICIAN"
  | "FAULT"
  | "EMERGENCY_STOP"
  | "METER_LOST"
  | "INTERRUPTED"
  /** The vehicle went back from C/D to B on its own (IEC 61851: it is full). */
  | "VEHICLE_DONE";

/** Latched faults: each opens the contactor first and holds the pile FAULTED until cleared. */
export type FaultCode =
  /** Contactor reads closed while commanded open (at boot, after an opening, or at any time). */
  | "WELD"
  /** Contactor did not read closed within contactorCloseMs. */
  | "CONTACTOR_CLOSE_TIMEOUT"
  /** Contactor read open while commanded closed (dropped out under load). */
  | "CONTACTOR_LOST"
  /** Lock did not read engaged within lockConfirmMs. */
  | "LOCK_ENGAGE_TIMEOUT"
  /** Lock read released while a session needed it engaged. */
  | "LOCK_LOST"
  /** Lock did not read released within lockReleaseMs. */
  | "LOCK_RELEASE_TIMEOUT"
  | "EMERGENCY_STOP"
  /** A feedback or emergency-stop line cannot be read: its level is unknown. */
  | "FEEDBACK_UNREADABLE"
  /** The pilot MCU reports a pilot fault: state E or F, or the vehicle's diode missing. */
  | "PILOT_FAULT"
  /** The pilot MCU went silent or reset (its permit is off then). */
  | "PILOT_MCU"
  /** The core itself failed (a bug); it failed safe. */
  | "INTERNAL";

/** Every fault code, e.g. to check the ones a store hands back at boot. */
export const FAULT_CODES: readonly FaultCode[] = [
  "WELD",
  "CONTACTOR_CLOSE_TIMEOUT",
  "CONTACTOR_LOST",
  "LOCK_ENGAGE_TIMEOUT",
  "LOCK_LOST",
  "LOCK_RELEASE_TIMEOUT",
  "EMERGENCY_STOP",
  "FEEDBACK_UNREADABLE",
  "PILOT_FAULT",
  "PILOT_MCU",
  "INTERNAL",
];

/** Faults of the pilot: they clear on their own once the pilot reads A or B again, idle. */
export const PILOT_FAULTS: readonly FaultCode[] = ["PILOT_FAULT", "PILOT_MCU"];

export type {
  BootFeedback,
  InputLine,
  MeterSample,
  PileInput,
  PileInputType,
  PilotInputState,
  TechnicianCommand,
} from "./input.js";

import type { PileInputType, PilotInputState } from "./input.js";

export interface SessionStartRecord {
  sessionId: Uint8Array;
  codeId: Uint8Array;
  keyId: number;
  issuedAt: bigint;
  carrier: Carrier;
  deviceId: string;
  maxEnergyWh: number;
  maxDurationS: number;
  /** Best estimate of true time, Unix ms. */
  startedAt: bigint;
  /**
   * The meter's import register when the code was accepted (the meter is fresh then, or the code
   * is refused). The contactor is open until the session closes it, so no energy flows between
   * this reading and the close: it is the session's start register, durable with the code.
   */
  meterStartWh: number | undefined;
}

export interface SessionUpdateRecord {
  sessionId: Uint8Array;
  state: PileStateName;
  energyStartWh?: number | undefined;
  energyWh: number;
  powerW: number;
}

export interface SessionEndRecord {
  sessionId: Uint8Array;
  codeId: Uint8Array;
  stopReason: StopReason;
  /** Best estimate of true time, Unix ms. */
  endedAt: bigint;
  /** Meter energy when the contactor was commanded closed; undefined if it never was. */
  energyStartWh?: number | undefined;
  /** Latest meter energy at the end; undefined if none. */
  energyStopWh?: number | undefined;
  /** energyStopWh − energyStartWh, never negative; 0 when it never charged. */
  energyWh: number;
  faults: FaultCode[];
}

export type LogLevel = "debug" | "info" | "warn" | "error";

/** Typed refusals of inputs (the core never throws). */
export type PileCoreErrorCode =
  | "BAD_INPUT"
  | "NOT_BOOTED"
  | "ALREADY_BOOTED"
  | "NO_SESSION"
  | "NOT_FAULTED"
  | "UNSAFE"
  | "BUSY";

export type PileEffect =
  | { type: "contactor"; closed: boolean }
  | { type: "lock"; engaged: boolean }
  /**
   * To the pilot MCU: `pwm` = PWM at `currentA` (null = off, steady +12 V); `test` = the
   * technician's relay-test permit (the MCU grants it only in state A with the PWM off).
   */
  | { type: "pilot"; command: "pwm"; currentA: number | null }
  | { type: "pilot"; command: "test"; on: boolean }
  /**
   * Durable: the code id (with the session's carrier and device) and the session's start, in one
   * transaction; feed back { type: "codeRecorded" }. The time floor rises to issuedAt with it.
   */
  | {
      type: "recordCode";
      codeId: Uint8Array;
      keyId: number;
      issuedAt: bigint;
      expiresAt: bigint;
      session: SessionStartRecord;
    }
  /** A notice: the session recorded with its code began (its record came with recordCode). */
  | { type: "sessionStarted"; record: SessionStartRecord }
  | { type: "sessionUpdate"; record: SessionUpdateRecord }
  /** Durable before the sends that follow it. */
  | { type: "sessionEnded"; record: SessionEndRecord }
  | { type: "send"; connId: string; message: PileMessage }
  /** Ends a BLE connection (after the sends before it): idle with no session or exchange (§3). */
  | { type: "disconnect"; connId: string; reason: "IDLE" }
  | { type: "fault"; code: FaultCode; detail: string }
  | { type: "faultCleared"; codes: FaultCode[] }
  /** More than `threshold` failed proofs, all connections, within `windowMs` (§3). */
  | { type: "securityEvent"; event: "PROOF_FAILURES"; failures: number; threshold: number; windowMs: number }
  | { type: "state"; state: PileStateName }
  /** The outcome of a technician relay test (after the contactor is confirmed open again). */
  | { type: "relayTestDone"; ok: boolean; detail: string }
  /** An input refused; nothing changed. */
  | { type: "rejected"; input: PileInputType; code: PileCoreErrorCode; detail: string }
  | { type: "log"; level: LogLevel; event: string; fields: Record<string, string | number | boolean> };

export type PileEffectType = PileEffect["type"];

/** What the core is doing, below the protocol state. */
export type Phase =
  | "unbooted"
  | "booting"
  | "idle"
  | "authorizing"
  | "locking"
  | "closing"
  | "charging"
  | "opening"
  | "unlocking"
  | "relayTest";

export interface PileCounters {
  messages: number;
  badMessages: number;
  fragmentErrors: number;
  badProofs: number;
  rateLimited: number;
  /** Connections dropped for idling (no session of their own, no exchange in progress). */
  idleDrops: number;
  /** Security events raised (failed proofs past the global threshold). */
  securityEvents: number;
  exchangeTimeouts: number;
  accepted: number;
  sessions: number;
  faults: number;
  meterErrors: number;
  rejectedInputs: number;
  /** RESULT/ERROR reasons sent, by name. */
  reasons: Partial<Record<ReasonName, number>>;
}

/** JSON-safe view for INFO, STATUS and the console. Ids are hex; times are strings of Unix ms. */
export interface PileSnapshot {
  pileId: string;
  state: PileStateName;
  phase: Phase;
  faults: FaultCode[];
  unavailable: boolean;
  /** Why an idle pile reads UNAVAILABLE: "technician", "meter stale", "radio down" (empty when it does not). */
  unavailableBecause: string[];
  outputs: { contactor: boolean; lock: boolean | undefined };
  feedback: {
    contactor: boolean | undefined;
    lock: boolean | undefined;
    vehicle: boolean | undefined;
    emergencyStop: boolean;
    /** Where the pile has a pilot MCU: what it says, and the PWM the core asked for. */
    pilot?: { state: PilotInputState; diodeFailed: boolean; pwmA: number | null; testPermit: boolean };
  };
  meter: { energyImportWh: number; powerW: number; ageMs: number } | undefined;
  session:
    | {
        sessionId: string;
        codeId: string;
        keyId: number;
        carrier: Carrier;
        deviceId: string;
        energyWh: number;
        powerW: number;
        elapsedS: number;
        stopReason: StopReason | undefined;
        /** The code's limits (0 = none) and the current the PWM offers (null: no pilot MCU). */
        limits: { maxEnergyWh: number; maxDurationS: number; pwmA: number | null };
      }
    | undefined;
  timeFloorMs: string;
  /** Failed proofs, all connections, within the security-event window; alarm = past the threshold. */
  proofs: { recentFailures: number; alarm: boolean };
  /** Connections that have sent enough failed proofs to be answered RATE_LIMITED. */
  rateLimitedConnections: number;
  connections: number;
  counters: PileCounters;
}
