/** Row codecs: a SQLite row read back as a record. Never throws; a value of the wrong type reads as its neutral value. */
import { bytes, readU64be, stringList } from "./codec.js";
import type {
  AuditActor,
  AuditRecord,
  FaultRecord,
  LedgerEntry,
  SessionRecord,
  SessionStatus,
  StoreCarrier,
} from "./types.js";

export type Row = Record<string, unknown>;

export const num = (v: unknown): number =>
  typeof v === "number" ? v : typeof v === "bigint" ? Number(v) : 0;
export const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : num(v));
export const str = (v: unknown): string => (typeof v === "string" ? v : "");
export const strOrNull = (v: unknown): string | null => (typeof v === "string" ? v : null);
const carrierOf = (v: unknown): StoreCarrier => (v === "mobile" ? "mobile" : "vehicle");
const STATUSES: readonly SessionStatus[] = ["active", "finished", "interrupted"];
const statusOf = (v: unknown): SessionStatus =>
  STATUSES.includes(v as SessionStatus) ? (v as SessionStatus) : "interrupted";

export function ledgerEntry(r: Row): LedgerEntry {
  return {
    codeId: bytes(r["code_id"]),
    keyId: num(r["key_id"]),
    issuedAt: readU64be(r["issued_at"]),
    expiresAt: readU64be(r["expires_at"]),
    carrier: r["carrier"] === null ? null : carrierOf(r["carrier"]),
    deviceId: strOrNull(r["device_id"]),
    recordedAt: num(r["recorded_at"]),
  };
}

export function sessionRecord(r: Row): SessionRecord {
  return {
    sessionId: bytes(r["session_id"]),
    codeId: bytes(r["code_id"]),
    keyId: num(r["key_id"]),
    deviceId: str(r["device_id"]),
    carrier: carrierOf(r["carrier"]),
    connectionId: strOrNull(r["connection_id"]),
    status: statusOf(r["status"]),
    startedAt: num(r["started_at"]),
    meterStartWh: numOrNull(r["meter_start_wh"]),
    energyWh: num(r["energy_wh"]),
    lastMeterWh: numOrNull(r["last_meter_wh"]),
    progressAt: numOrNull(r["progress_at"]),
    stoppedAt: numOrNull(r["stopped_at"]),
    meterStopWh: numOrNull(r["meter_stop_wh"]),
    stopReason: strOrNull(r["stop_reason"]),
    energySource:
      r["energy_source"] === "meter" ? "meter" : r["energy_source"] === "unknown" ? "unknown" : null,
    faults: stringList(r["faults"]),
    closedAt: numOrNull(r["closed_at"]),
  };
}

export function faultRecord(r: Row): FaultRecord {
  return {
    code: str(r["code"]),
    detail: str(r["detail"]),
    raisedAt: num(r["raised_at"]),
    lastAt: num(r["last_at"]),
    count: num(r["count"]),
    clearedAt: numOrNull(r["cleared_at"]),
    clearedBy: strOrNull(r["cleared_by"]),
  };
}

export function auditRecord(r: Row): AuditRecord {
  return {
    id: num(r["id"]),
    at: num(r["at"]),
    actor:
      (["console", "control", "ble", "daemon"] as const).find((a) => a === r["actor"]) ??
      ("daemon" as AuditActor),
    action: str(r["action"]),
    outcome: str(r["outcome"]),
    detail: strOrNull(r["detail"]),
    uid: typeof r["uid"] === "number" ? r["uid"] : null,
    pid: typeof r["pid"] === "number" ? r["pid"] : null,
  };
}
