/** The store's charging sessions. */
import { carrier, count, id16, ident, ms, text, u32, wh, whOrNull } from "./codec.js";
import type { Ctx } from "./context.js";
import { StoreError } from "./errors.js";
import type { LedgerParts } from "./ledger.js";
import { type Row, sessionRecord } from "./rows.js";
import type {
  LedgerRecord,
  SessionBegin,
  SessionChange,
  SessionFinish,
  SessionProgress,
  SessionRecordHook,
  Sessions,
} from "./types.js";

/** Called inside each session change's transaction (the OCPP outbox): what changed, and the row. */
type Told = (change: SessionChange, sessionId: Uint8Array) => void;

function sessionStatements({ prep }: Ctx) {
  return {
    sSesGet: prep("sessions", "SELECT * FROM sessions WHERE session_id = ?"),
    sSesActive: prep("sessions", "SELECT * FROM sessions WHERE status = 'active' ORDER BY seq"),
    sSesIns: prep(
      "sessions",
      `INSERT INTO sessions (session_id, code_id, key_id, device_id, carrier, connection_id, status,
         started_at, meter_start_wh)
       VALUES (@sessionId, @codeId, @keyId, @deviceId, @carrier, @connectionId, 'active', @startedAt, @meterStartWh)`,
    ),
    sSesProgress: prep(
      "sessions",
      `UPDATE sessions SET energy_wh = @energyWh, last_meter_wh = @lastMeterWh, progress_at = @at,
         meter_start_wh = coalesce(meter_start_wh, @meterStartWh)
       WHERE session_id = @sessionId AND status = 'active'`,
    ),
    sSesFinish: prep(
      "sessions",
      `UPDATE sessions SET status = 'finished', energy_source = 'meter', stopped_at = @stoppedAt, meter_stop_wh = @meterStopWh,
         meter_start_wh = coalesce(meter_start_wh, @meterStartWh), energy_wh = @energyWh, stop_reason = @stopReason, faults = @faults, closed_at = @stoppedAt
       WHERE session_id = @sessionId AND status = 'active'`,
    ),
    sSesInterrupt: prep(
      "sessions",
      `UPDATE sessions SET status = 'interrupted', stop_reason = 'INTERRUPTED',
         stopped_at = coalesce(progress_at, started_at), meter_stop_wh = last_meter_wh, closed_at = @now,
         energy_source = 'unknown'
       WHERE status = 'active'`,
    ),
    // Closed from the meter: no energy flows once the contactor is open, so the register read at
    // boot less the one at the start is the session's energy.
    sSesInterruptMeter: prep(
      "sessions",
      `UPDATE sessions SET status = 'interrupted', stop_reason = 'INTERRUPTED',
         stopped_at = coalesce(progress_at, started_at), closed_at = @now, energy_source = 'meter',
         meter_stop_wh = @meterNow,
         energy_wh = CASE WHEN meter_start_wh IS NULL THEN 0 ELSE @meterNow - meter_start_wh END
       WHERE status = 'active' AND (meter_start_wh IS NULL OR meter_start_wh <= @meterNow)`,
    ),
    sSesList: prep(
      "sessions",
      `SELECT * FROM sessions WHERE @before IS NULL OR started_at < @before
       ORDER BY started_at DESC, seq DESC LIMIT @limit`,
    ),
  };
}

function sessionRow(s: SessionBegin) {
  if (typeof s !== "object" || s === null) throw new StoreError("INVALID", "session is not an object");
  return {
    sessionId: id16(s.sessionId, "sessionId"),
    codeId: id16(s.codeId, "codeId"),
    keyId: u32(s.keyId, "keyId"),
    deviceId: ident(s.deviceId, "deviceId"),
    carrier: carrier(s.carrier, "carrier"),
    connectionId: s.connectionId === undefined ? null : ident(s.connectionId, "connectionId"),
    startedAt: ms(s.startedAt, "startedAt"),
    meterStartWh: whOrNull(s.meterStartWh, "meterStartWh"),
  };
}

type SessionStatements = ReturnType<typeof sessionStatements>;

/** Inside a transaction: the checks of begin(), then the insert. */
function insertSession(
  { need }: Ctx,
  st: SessionStatements & LedgerParts["s"],
  row: ReturnType<typeof sessionRow>,
) {
  if (need(st.sIsUsed, "ledger").get(row.codeId) === undefined) {
    throw new StoreError("UNKNOWN_CODE", "the session's codeId is not in the ledger");
  }
  if (need(st.sSesActive, "sessions").get() !== undefined) {
    throw new StoreError("ACTIVE_SESSION", "another session is active");
  }
  if (need(st.sSesGet, "sessions").get(row.sessionId) !== undefined) {
    throw new StoreError("DUPLICATE", "sessionId is already recorded");
  }
  need(st.sSesIns, "sessions").run(row);
}

function sessionWrites(
  c: Ctx,
  st: SessionStatements & LedgerParts["s"],
  led: LedgerParts,
  told: Told,
): Pick<Sessions, "beginWithCode" | "begin" | "progress" | "finish"> {
  const { op, need, guard, db } = c;
  return {
    beginWithCode: (code: LedgerRecord, s: SessionBegin) => {
      const entry = led.ledgerRow(code);
      const row = sessionRow(s);
      if (!Buffer.from(entry.codeId).equals(Buffer.from(row.codeId)))
        throw new StoreError("INVALID", "the session's codeId is not the code's");
      op("sessions.beginWithCode", () => {
        db.transaction(() => {
          led.insertLedger(entry);
          insertSession(c, st, row);
          told("begin", row.sessionId);
        }).immediate();
        guard?.refresh();
      });
    },
    begin: (s: SessionBegin) => {
      const row = sessionRow(s);
      op("sessions.begin", () => {
        db.transaction(() => {
          insertSession(c, st, row);
          told("begin", row.sessionId);
        }).immediate();
      });
    },
    progress: (sessionId, p: SessionProgress) => {
      if (typeof p !== "object" || p === null) throw new StoreError("INVALID", "progress is not an object");
      const row = {
        sessionId: id16(sessionId, "sessionId"),
        energyWh: wh(p.energyWh, "energyWh"),
        lastMeterWh: whOrNull(p.lastMeterWh, "lastMeterWh"),
        meterStartWh: p.meterStartWh === undefined ? null : whOrNull(p.meterStartWh, "meterStartWh"),
        at: ms(p.at, "at"),
      };
      op("sessions.progress", () => {
        db.transaction(() => {
          if (need(st.sSesProgress, "sessions").run(row).changes === 0) {
            throw new StoreError("NOT_ACTIVE", "no active session with this sessionId");
          }
          told("progress", row.sessionId);
        }).immediate();
      });
    },
    finish: (sessionId, f: SessionFinish) => {
      if (typeof f !== "object" || f === null) throw new StoreError("INVALID", "finish is not an object");
      const faults = f.faults ?? [];
      if (!Array.isArray(faults) || faults.length > 64)
        throw new StoreError("INVALID", "faults is not a list");
      const row = {
        sessionId: id16(sessionId, "sessionId"),
        stoppedAt: ms(f.stoppedAt, "stoppedAt"),
        meterStopWh: whOrNull(f.meterStopWh, "meterStopWh"),
        meterStartWh: f.meterStartWh === undefined ? null : whOrNull(f.meterStartWh, "meterStartWh"),
        energyWh: wh(f.energyWh, "energyWh"),
        stopReason: text(f.stopReason, "stopReason", 1),
        faults: JSON.stringify(faults.map((x) => text(x, "fault", 1))),
      };
      op("sessions.finish", () => {
        const upd = need(st.sSesFinish, "sessions");
        db.transaction(() => {
          if (upd.run(row).changes === 1) return told("finish", row.sessionId);
          if (need(st.sSesGet, "sessions").get(row.sessionId) === undefined) {
            throw new StoreError("NOT_FOUND", "no session with this sessionId");
          }
          throw new StoreError("NOT_ACTIVE", "the session is already closed");
        }).immediate();
      });
    },
  };
}

function sessionReads(
  { op, need, db }: Ctx,
  st: SessionStatements,
  told: Told,
): Pick<Sessions, "markInterrupted" | "active" | "list" | "get"> {
  return {
    markInterrupted: (nowMs, meterNowWh) => {
      const at = ms(nowMs, "nowMs");
      const meterNow = meterNowWh === undefined ? null : whOrNull(meterNowWh, "meterNowWh");
      return op("sessions.markInterrupted", () =>
        db
          .transaction(() => {
            const ids = (need(st.sSesActive, "sessions").all() as Row[]).map((r) => r["session_id"]);
            if (meterNow !== null) need(st.sSesInterruptMeter, "sessions").run({ now: at, meterNow });
            need(st.sSesInterrupt, "sessions").run({ now: at });
            for (const id of ids) told("interrupted", id as Uint8Array);
            return ids.map((id) => sessionRecord(need(st.sSesGet, "sessions").get(id) as Row));
          })
          .immediate(),
      );
    },
    active: () =>
      op("sessions.active", () => {
        const r = need(st.sSesActive, "sessions").get() as Row | undefined;
        return r === undefined ? undefined : sessionRecord(r);
      }),
    list: (q) => {
      if (typeof q !== "object" || q === null) throw new StoreError("INVALID", "query is not an object");
      const args = {
        limit: count(q.limit, "limit"),
        before: q.before === undefined ? null : ms(q.before, "before"),
      };
      return op("sessions.list", () => (need(st.sSesList, "sessions").all(args) as Row[]).map(sessionRecord));
    },
    get: (sessionId) => {
      const id = id16(sessionId, "sessionId");
      return op("sessions.get", () => {
        const r = need(st.sSesGet, "sessions").get(id) as Row | undefined;
        return r === undefined ? undefined : sessionRecord(r);
      });
    },
  };
}

export function makeSessions(c: Ctx, led: LedgerParts, onSessionRecord?: SessionRecordHook): Sessions {
  const st = { ...led.s, ...sessionStatements(c) };
  // --- session hook (OCPP outbox): called inside each session change's transaction ---
  const told: Told = (change, sessionId) => {
    if (onSessionRecord === undefined) return;
    onSessionRecord(c.db, change, sessionRecord(c.need(st.sSesGet, "sessions").get(sessionId) as Row));
  };
  return { ...sessionWrites(c, st, led, told), ...sessionReads(c, st, told) };
}
