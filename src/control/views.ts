/**
 * What a technician may ask of the running pile, whether at the serial console or through the
 * control socket (pilectl): the `PileControl` interface the daemon implements and its plain JSON
 * views.
 */

import type { PilotDetails } from "../hw/ports.js";
import type { OcppControl } from "./ocpp.js";

/** Outcome of an action the pile may refuse. `code` is stable; `message` is for people. */
export type ControlResult = { ok: true; detail?: string } | { ok: false; code: string; message: string };

export interface StatusView {
  pileId: string;
  /** Protocol state: AVAILABLE, AUTHORIZING, PREPARING, CHARGING, FINISHING, FAULTED, UNAVAILABLE. */
  state: string;
  /** Unix ms when `state` was entered. */
  since: number;
  contactor: "open" | "closed" | "unknown";
  lock: "engaged" | "released" | "unknown";
  /** null = the pile cannot sense a vehicle. */
  vehiclePresent: boolean | null;
  ble: "up" | "down" | "disabled";
  meterFresh: boolean;
  /** Link-level fault counters (Modbus bus, BLE peripheral, GPIO reads, expired fragments). */
  links?: Record<string, number>;
  /** Latched fault codes. */
  faults: string[];
  /** Why an idle pile cannot take a session (technician, meter stale, radio down, store fault, disk low). */
  unavailableBecause: string[];
  /**
   * The store: free bytes on the state directory (null: not measured) and the "disk low" threshold,
   * a fault (a record that could not be written; no new codes until it is) and the records held.
   */
  store: {
    freeBytes: number | null;
    minFreeBytes: number;
    fault: string | null;
    faultSince: number | null;
    pending: number;
  };
  /**
   * Failed proofs over BLE (PROTOCOL.md §3): within the last 60 s, all connections; alarm = more
   * than 20 (a security event is under way); events raised since start and the last one, Unix ms.
   */
  security: { recentFailedProofs: number; alarm: boolean; events: number; lastEventAt: number | null };
  session: {
    codeId: string;
    startedAt: number;
    energyWh: number | null;
    /** The code's limits (null: none) and the current the pilot PWM offers (null: no MCU). */
    limits?: { maxEnergyWh: number | null; maxDurationMs: number | null; maxCurrentA: number | null };
  } | null;
  uptimeMs: number;
  version: string;
  /** Counts of bad input seen, by kind ("ble.badFragment", "console.overlong", …). */
  counters: Record<string, number>;
  /** Where a pilot MCU senses the vehicle: its state, permit, duty and counters. */
  pilot?: PilotDetails;
}

export type MeterView =
  | { ok: true; energyImportWh: number; powerW: number; voltageV: number; currentA: number; ageMs: number }
  | { ok: false; code: string; message: string };

export interface SessionView {
  /** Hex of the session id (the carrier's receipt). */
  id: string;
  /** Hex of the code id (identifies a code; grants nothing). */
  codeId: string;
  carrier: "vehicle" | "mobile";
  deviceId: string;
  /** "active", "finished" or "interrupted" (the daemon stopped during the session). */
  status: string;
  startedAt: number;
  endedAt: number | null;
  meterStartWh: number | null;
  meterStopWh: number | null;
  /** Energy delivered, Wh. */
  energyWh: number;
  /**
   * Where energyWh comes from: "meter" (the meter's register; an interrupted session closed from
   * the register read at the next boot), "unknown" (the meter could not be read: the last
   * progress, a lower bound), null while active or for older records.
   */
  energySource: "meter" | "unknown" | null;
  reason: string | null;
  /** The faults that ended the session (e.g. WELD behind a TECHNICIAN stop); empty for most. */
  faults: string[];
}

export interface FaultView {
  code: string;
  since: number;
  latched: boolean;
  detail?: string;
}

/** A key as shown to people: never its bytes. */
export interface KeyView {
  keyId: number;
  file: string;
  /** Unix ms the key file was added. */
  added: number;
}

export interface TimeView {
  /** The board's clock, Unix ms. */
  board: number;
  /** Durable time floor (newest issuedAt accepted), Unix ms; 0 if none yet. */
  floor: number;
  /** The pile's estimate of now: max(board, floor). */
  now: number;
  skewMs: number;
}

export interface AuditEntry {
  /** "console", "pilectl", … */
  actor: string;
  action: string;
  /** Arguments safe to keep (key bytes already removed). */
  args?: string[];
  /** "ok" or the refusal / error code. */
  outcome: string;
  detail?: string;
  /** The control-socket client's uid and pid (SO_PEERCRED), when known. */
  peer?: { uid: number; pid: number };
}

export interface AuditView extends AuditEntry {
  at: number;
}

export interface PileControl {
  status(): StatusView;
  meter(): Promise<MeterView>;
  sessions(limit: number): SessionView[];
  faults(): FaultView[];
  clearFault(code: string | "all", actor: string): ControlResult | Promise<ControlResult>;
  stop(actor: string): Promise<ControlResult>;
  relayTest(actor: string): Promise<ControlResult>;
  /** Takes the pile out of service (false) or back in (true); a running session goes on. */
  setAvailable(available: boolean, actor: string): Promise<ControlResult>;
  /** Caps the current the pilot PWM offers (A, 6–80; null lifts the cap); a running session follows. */
  setCurrentLimit(currentA: number | null, actor: string): Promise<ControlResult>;
  keys: {
    list(): KeyView[];
    add(keyId: number, hex: string, actor: string): ControlResult;
    retire(keyId: number, actor: string): ControlResult;
  };
  time(): TimeView;
  log(limit: number): AuditView[];
  audit(entry: AuditEntry): void;
  /** Fault switches of a simulated plant; absent on real hardware. */
  sim?(action: string): CommandOutcome;
  // --- OCPP (ocpp.ts): absent or undefined when the station is off ---
  ocpp?(): OcppControl | undefined;
}

export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };

/** What a command gives: its result (of type R), or a refusal with a stable code. */
export type CommandOutcome<R = unknown> =
  | { ok: true; result: R }
  | { ok: false; error: { code: string; message: string } };
