/**
 * The store's session hook for OCPP (StoreOptions.onSessionRecord): inside the transaction of
 * each session change it queues the TransactionEvent that reports it in the outbox of the same
 * file, so a crash can never leave a session without its events or events without their session.
 * Started at the begin, Updated at the meter value interval, Ended (with the session's OCMF
 * record, sealed here with the station key and the durable pagination counter) at the finish or
 * when a session left open by a stop of the daemon is closed as interrupted at the next start.
 *
 * It runs on the control loop's connection and in the write worker (which imports this module
 * and calls `createSessionHook`), so its options are plain data.
 */
import type { Database } from "better-sqlite3";
import {
  loadOrCreateStationKey,
  type OcmfSession,
  type StationKey,
  sealSession,
  signedMeterValue,
} from "../ocpp/ocmf.js";
import { enqueueInTx } from "../ocpp/outbox.js";
import type { PileEvent } from "../ocpp/port.js";
import { transactionEventFor } from "../ocpp/txevents.js";
import type { StopReason } from "../pile/types.js";
import { toHex } from "../protocol/bytes.js";
import type { SessionChange, SessionRecord, SessionRecordHook } from "../store/index.js";

export interface SessionHookOptions {
  stateDir: string;
  meterValueIntervalS: number;
  outboxMax: number;
  /** OCMF gateway (the pile) and meter identity; chargePointId is the OCPP identity. */
  gateway: { id: string; serial: string; version: string };
  meter: { vendor: string; model: string; serial: string };
  chargePointId: string;
}

const STOP_REASONS: readonly StopReason[] = [
  "CARRIER_STOP",
  "PLUG_REMOVED",
  "ENERGY_LIMIT",
  "DURATION_LIMIT",
  "TECHNICIAN",
  "FAULT",
  "EMERGENCY_STOP",
  "METER_LOST",
  "INTERRUPTED",
];
const stopReasonOf = (s: string | null): StopReason =>
  STOP_REASONS.includes(s as StopReason) ? (s as StopReason) : "FAULT";

/** OCMF reason letter of the end reading. */
function endLetter(r: StopReason, remote: boolean): OcmfSession["endReason"] {
  if (remote) return "R";
  if (r === "INTERRUPTED") return "P";
  if (r === "CARRIER_STOP" || r === "TECHNICIAN") return "L";
  if (r === "FAULT" || r === "EMERGENCY_STOP" || r === "METER_LOST") return "A";
  return "E";
}

export function createSessionHook(o: SessionHookOptions): SessionRecordHook {
  const key = loadOrCreateStationKey(o.stateDir);
  if (!key.ok) throw new Error(key.error.message);
  return (db, change, r) => onChange(db, o, key.value, change, r);
}

function onChange(
  db: Database,
  o: SessionHookOptions,
  key: StationKey,
  change: SessionChange,
  r: SessionRecord,
): void {
  const tx = toHex(r.sessionId);
  const mark = db.prepare("SELECT last_update_at, remote_stop FROM ocpp_tx WHERE tx_id = ?").get(tx) as
    | { last_update_at: number; remote_stop: number }
    | undefined;
  let e: PileEvent | undefined;
  let signed: Record<string, string> | undefined;
  if (change === "begin") {
    db.prepare("INSERT INTO ocpp_tx (tx_id, last_update_at) VALUES (?, ?)").run(tx, r.startedAt);
    e = {
      type: "sessionStarted",
      sessionId: tx,
      tokenId: toHex(r.codeId),
      at: new Date(r.startedAt),
      meterStartWh: r.meterStartWh ?? undefined,
    };
  } else if (mark === undefined) {
    // A session begun while OCPP was off: the station never reported it.
    return;
  } else if (change === "progress") {
    const at = r.progressAt ?? r.startedAt;
    const every = o.meterValueIntervalS * 1000;
    if (every === 0 || at - mark.last_update_at < every) return;
    db.prepare("UPDATE ocpp_tx SET last_update_at = ? WHERE tx_id = ?").run(at, tx);
    const meterWh = r.lastMeterWh ?? (r.meterStartWh ?? 0) + r.energyWh;
    e = { type: "sessionUpdated", sessionId: tx, at: new Date(at), meterWh, energyWh: r.energyWh, powerW: 1 };
  } else {
    const reason = stopReasonOf(r.stopReason);
    const remote = mark.remote_stop === 1;
    const stoppedAt = r.stoppedAt ?? r.closedAt ?? r.startedAt;
    const startWh = r.meterStartWh ?? undefined;
    const stopWh = r.meterStopWh ?? (startWh !== undefined ? startWh + r.energyWh : undefined);
    e = {
      type: "sessionEnded",
      sessionId: tx,
      tokenId: toHex(r.codeId),
      at: new Date(stoppedAt),
      startedAt: new Date(r.startedAt),
      stopReason: reason,
      meterStartWh: startWh,
      meterStopWh: stopWh,
      energyWh: r.energyWh,
    };
    signed = seal(db, o, key, r, { tx, stoppedAt, reason, remote, startWh, stopWh });
    db.prepare("DELETE FROM ocpp_tx WHERE tx_id = ?").run(tx);
    const ev = transactionEventFor(e, { remoteStop: remote, ...(signed !== undefined ? { signed } : {}) });
    if (ev !== undefined) enqueueInTx(db, [ev], o.outboxMax);
    return;
  }
  const ev = transactionEventFor(e);
  if (ev !== undefined) enqueueInTx(db, [ev], o.outboxMax);
}

interface SealArgs {
  tx: string;
  stoppedAt: number;
  reason: StopReason;
  remote: boolean;
  startWh: number | undefined;
  stopWh: number | undefined;
}

/** Seals the finished session (next pagination number), keeps the record; the OCPP form back. */
function seal(
  db: Database,
  o: SessionHookOptions,
  key: StationKey,
  r: SessionRecord,
  a: SealArgs,
): Record<string, string> | undefined {
  const page = (db.prepare("SELECT next FROM ocpp_ocmf_page WHERE k = 1").get() as { next: number }).next;
  const startWh = a.startWh ?? 0;
  const rec = sealSession(key, {
    pagination: page,
    gateway: o.gateway,
    meter: o.meter,
    tokenId: toHex(r.codeId),
    chargePointId: o.chargePointId,
    start: { at: new Date(r.startedAt), wh: startWh },
    stop: { at: new Date(a.stoppedAt), wh: a.stopWh ?? startWh + r.energyWh },
    endReason: endLetter(a.reason, a.remote),
  });
  if (!rec.ok) return undefined;
  db.prepare("UPDATE ocpp_ocmf_page SET next = next + 1 WHERE k = 1").run();
  db.prepare("INSERT INTO ocpp_ocmf (session_id, page, sealed_at, record) VALUES (?, ?, ?, ?)").run(
    a.tx,
    page,
    a.stoppedAt,
    rec.value,
  );
  const smv = signedMeterValue(rec.value, key);
  return smv.ok ? smv.value : undefined;
}
