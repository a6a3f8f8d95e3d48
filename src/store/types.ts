/**
 * The store's public types. The store layer uses nothing else of ours: these mirror the
 * protocol's notions (16-byte code and session ids, 32-bit key ids, 64-bit issuedAt) on their own.
 *
 * Times: `issuedAt`/`expiresAt` and the time floor are bigint (a code's issuedAt may be anything
 * up to 2^64−1 ms); every other time is a number of Unix ms (a safe integer).
 * Energies are Wh, finite and ≥ 0.
 */

/** Who carried the code: the vehicle device or the owner's mobile terminal. */
export type StoreCarrier = "vehicle" | "mobile";

export interface LedgerRecord {
  /** 16 bytes. */
  codeId: Uint8Array;
  /** 0..2^32−1. */
  keyId: number;
  /** Unix ms, 0..2^64−1. The time floor is raised to it in the same transaction. */
  issuedAt: bigint;
  /**
   * The last instant (Unix ms) at which the code could still be accepted, skew included:
   * issuedAt + validFor·1000 + skew. ≥ issuedAt; values past 2^64−1 are kept as 2^64−1 (see
   * `ledger.prune`).
   */
  expiresAt: bigint;
  carrier?: StoreCarrier;
  deviceId?: string;
}

export interface LedgerEntry {
  codeId: Uint8Array;
  keyId: number;
  issuedAt: bigint;
  /** Saturated at 2^64−1. */
  expiresAt: bigint;
  carrier: StoreCarrier | null;
  deviceId: string | null;
  /** The store clock's Unix ms when it was recorded. */
  recordedAt: number;
}

export interface Ledger {
  /** Whether the codeId was ever recorded (and not yet pruned). */
  isUsed(codeId: Uint8Array): boolean;
  /**
   * Records the codeId as used and raises the time floor to issuedAt, in one durable transaction.
   * A codeId already recorded → StoreError "DUPLICATE", and nothing changes.
   */
  record(entry: LedgerRecord): void;
  get(codeId: Uint8Array): LedgerEntry | undefined;
  /**
   * Removes the entries whose expiresAt < nowMs and returns how many. Only entries that no pile
   * could accept again at nowMs go. Passing the time floor instead of the wall clock prunes
   * independently of a clock that may run ahead.
   */
  prune(nowMs: bigint): number;
  count(): number;
}

export interface TimeFloor {
  /** The newest issuedAt ever accepted (Unix ms); 0n when none. */
  get(): bigint;
  /** Raises the floor to ms if above it; never lowers it. 0 ≤ ms ≤ 2^64−1. */
  raise(ms: bigint): void;
}

export type SessionStatus = "active" | "finished" | "interrupted";

/**
 * Where a closed session's energy comes from: "meter" = the meter's import register (at the end,
 * or for an interrupted session read at the next boot: register then − register at start);
 * "unknown" = the meter could not be read, the energy is the last progress (a lower bound).
 */
export type EnergySource = "meter" | "unknown";

export interface SessionBegin {
  /** 16 bytes. */
  sessionId: Uint8Array;
  /** 16 bytes; must already be in the ledger ("UNKNOWN_CODE" otherwise). */
  codeId: Uint8Array;
  keyId: number;
  deviceId: string;
  carrier: StoreCarrier;
  startedAt: number;
  meterStartWh: number | null;
  connectionId?: string;
}

export interface SessionProgress {
  /** Energy delivered in this session so far. */
  energyWh: number;
  /** The meter's total register at the last reading, if any. */
  lastMeterWh: number | null;
  /** The meter's energy when the contactor closed, known after begin(); kept once set. */
  meterStartWh?: number | null;
  at: number;
}

export interface SessionFinish {
  stoppedAt: number;
  meterStopWh: number | null;
  /** The meter's energy when the contactor closed, if progress() never carried it. */
  meterStartWh?: number | null;
  energyWh: number;
  stopReason: string;
  faults?: string[];
}

export interface SessionRecord {
  sessionId: Uint8Array;
  codeId: Uint8Array;
  keyId: number;
  deviceId: string;
  carrier: StoreCarrier;
  connectionId: string | null;
  status: SessionStatus;
  startedAt: number;
  meterStartWh: number | null;
  energyWh: number;
  lastMeterWh: number | null;
  /** When the last progress was recorded, null before the first. */
  progressAt: number | null;
  /** finished: as given; interrupted: the last known instant (last progress, else startedAt). */
  stoppedAt: number | null;
  /** finished: as given; interrupted: the last meter reading recorded. */
  meterStopWh: number | null;
  /** "INTERRUPTED" for sessions closed by markInterrupted. */
  stopReason: string | null;
  /** null while active, and for sessions closed before the store kept it. */
  energySource: EnergySource | null;
  faults: string[];
  /** When the record was closed: the finish's stoppedAt, or markInterrupted's nowMs. */
  closedAt: number | null;
}

export interface Sessions {
  /** Opens a session. Another active one → "ACTIVE_SESSION"; a known sessionId → "DUPLICATE". */
  begin(s: SessionBegin): void;
  /**
   * Records the code (ledger.record) and opens its session (begin) in ONE durable transaction:
   * either both are written or neither. The errors of both; the session's codeId must be the
   * code's ("INVALID" otherwise).
   */
  beginWithCode(code: LedgerRecord, s: SessionBegin): void;
  /** One prepared UPDATE. Unknown or no longer active session → "NOT_ACTIVE". */
  progress(sessionId: Uint8Array, p: SessionProgress): void;
  /** Closes an active session. Unknown → "NOT_FOUND"; already closed → "NOT_ACTIVE". */
  finish(sessionId: Uint8Array, f: SessionFinish): void;
  /**
   * At boot: every session neither finished nor interrupted becomes "interrupted" with stop
   * reason "INTERRUPTED". With `meterNowWh` (the meter's import register read at boot, the
   * contactor open) a session whose start register is known gets energy = meterNowWh − start
   * and energySource "meter" (one that never closed its contactor: 0 Wh, "meter"); without it,
   * or with a register below the start (a meter changed), the energy of its last progress and
   * energySource "unknown". Returns them (as now stored).
   */
  markInterrupted(nowMs: number, meterNowWh?: number | null): SessionRecord[];
  active(): SessionRecord | undefined;
  /** Newest first (by startedAt); `before` keeps only sessions started strictly before it. */
  list(q: { limit: number; before?: number }): SessionRecord[];
  get(sessionId: Uint8Array): SessionRecord | undefined;
}

export interface FaultRecord {
  code: string;
  detail: string;
  /** First raise of this latch. */
  raisedAt: number;
  /** Latest raise of this latch. */
  lastAt: number;
  /** How many times it was raised while latched. */
  count: number;
  clearedAt: number | null;
  clearedBy: string | null;
}

export interface Faults {
  /**
   * Latches a fault. Returns true when newly latched, false when the code was already latched
   * (its count and lastAt are updated; the first detail is kept).
   */
  raise(code: string, detail: string, at: number): boolean;
  /** Clears one latched code, or every latched fault with "all". Returns how many were cleared. */
  clear(code: string, by: string, at: number): number;
  /** Latched faults, oldest first. */
  active(): FaultRecord[];
  /** Latched and cleared faults, newest first. */
  history(limit: number): FaultRecord[];
}

export type AuditActor = "console" | "control" | "ble" | "daemon";

export interface AuditEntry {
  at: number;
  actor: AuditActor;
  action: string;
  outcome: string;
  detail?: string;
  /** Peer uid and pid of the control-socket client that ran the command (SO_PEERCRED). */
  uid?: number;
  pid?: number;
}

export interface AuditRecord {
  id: number;
  at: number;
  actor: AuditActor;
  action: string;
  outcome: string;
  detail: string | null;
  /** Peer uid/pid (schema v5); null when not known (console, daemon, older rows). */
  uid: number | null;
  pid: number | null;
}

export interface AuditLog {
  append(e: AuditEntry): void;
  /** Newest first. */
  list(q: { limit: number; actor?: AuditActor }): AuditRecord[];
  /** Keeps the newest `keep` entries, removes the rest; returns how many were removed. */
  trim(keep: number): number;
}

export interface StoreOptions {
  /** Unix ms for the store's own stamps (ledger recordedAt). Default Date.now. */
  clock?: () => number;
  /**
   * Open without writing (e.g. pilectl beside the running daemon): the file must exist at the
   * current schema version ("OLD_SCHEMA" otherwise); every write fails with "READONLY".
   */
  readonly?: boolean;
  /** How long to wait for another connection's lock before "LOCKED". Default 5000 ms. */
  busyTimeoutMs?: number;
  /** The audit table keeps at most this many rows (newest); each append trims. Default 10000. */
  auditMaxRows?: number;
  /**
   * Called inside the transaction of every session change (begin, progress, finish, interrupted)
   * with the session's record as it now stands: what it writes commits or rolls back with the
   * change (the OCPP outbox, src/daemon/ocpp-hook.ts). A throw aborts the change.
   */
  onSessionRecord?: SessionRecordHook;
}

export type SessionChange = "begin" | "progress" | "finish" | "interrupted";
export type SessionRecordHook = (
  db: import("better-sqlite3").Database,
  change: SessionChange,
  record: SessionRecord,
) => void;

export interface Store {
  readonly path: string;
  readonly readonly: boolean;
  /** The schema version of the open file: always the current one (read-only opens refuse older ones). */
  readonly schemaVersion: number;
  readonly ledger: Ledger;
  readonly floor: TimeFloor;
  readonly sessions: Sessions;
  readonly faults: Faults;
  readonly audit: AuditLog;
  /** Idempotent. Every later call fails with "CLOSED". */
  close(): void;
}
