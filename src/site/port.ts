/**
 * What the site front ends (dashboard, MQTT, metrics) need of the pile, and nothing more: a
 * status snapshot, an event stream, the technician's commands with typed results and the check
 * of the technician secret. The daemon implements it over its command table
 * (control-adapter.ts); the tests implement it with a fake.
 */
import type { FaultView, MeterView, SessionView, StatusView } from "../control/index.js";

/** Limits the pile applies to the running session; null where it applies none. */
export interface SessionLimits {
  maxCurrentA: number | null;
  maxEnergyWh: number | null;
  maxDurationMs: number | null;
}

export interface SiteSnapshot {
  status: StatusView;
  /** Last meter reading the pile holds (never a fresh bus read); null if none yet. */
  meter: MeterView | null;
  faults: FaultView[];
  /** Newest first; the active one (if any) included. */
  sessions: SessionView[];
  limits: SessionLimits | null;
  /** IEC 61851 pilot state (A..F) when an MCU is fitted; null otherwise. */
  pilot: string | null;
  /** Counters of the pile's links (BLE, meter bus, store), by name. */
  links: Record<string, number>;
}

/** Something changed; the front ends re-read the snapshot (or just forward the event). */
export type SiteEvent =
  | { kind: "state"; at: number; state: string }
  | { kind: "session"; at: number; phase: "started" | "progress" | "ended"; session: SessionView }
  | { kind: "meter"; at: number; meter: MeterView }
  | { kind: "fault"; at: number; faults: FaultView[] }
  /** One unlock attempt over BLE and how it ended ("ok" or the refusal reason). */
  | { kind: "unlock"; at: number; outcome: string };

/** Outcome of a technician command; `code` is stable, `message` is for people. */
export type TechResult = { ok: true; detail: string } | { ok: false; code: string; message: string };

export interface SitePilePort {
  snapshot(): Promise<SiteSnapshot>;
  /** Calls `listener` for each event until the returned function is called. */
  subscribe(listener: (e: SiteEvent) => void): () => void;
  stop(actor: string): Promise<TechResult>;
  clearFault(code: string, actor: string): Promise<TechResult>;
  relayTest(actor: string): Promise<TechResult>;
  setAvailability(available: boolean, actor: string): Promise<TechResult>;
  /** Whether `secret` is the technician secret (scrypt check; false on any error). */
  verifyTechnician(secret: string): Promise<boolean>;
  /** Keeps an entry in the pile's audit trail (login, lockout, refusals). */
  audit(entry: { actor: string; action: string; outcome: string; detail?: string }): void;
}
