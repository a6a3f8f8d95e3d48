/**
 * Record before accept: a verified PRESENT opens a session that moves nothing until the store
 * acknowledges its code record (`recordCode` → `codeRecorded`). Only then the RESULT ACCEPTED and
 * the lock; a refusal, a failed write or a silent store answer the carrier without moving anything.
 */
import {
  codeExpiry,
  equalBytes,
  type OpenedCode,
  Reason,
  type ReasonName,
  toHex,
} from "../protocol/index.js";
import type { Kernel } from "./kernel.js";
import { lockConfirmed } from "./relays.js";
import type { SessionStartRecord, StopReason } from "./types.js";

/**
 * Preconditions of §3, in order: BUSY (a session running or being set up, or the pile booting,
 * finishing or testing its relay), FAULTED (a fault latched, the pile UNAVAILABLE for
 * maintenance, the emergency stop active, or the meter silent: it cannot meter a session),
 * NO_VEHICLE (the vehicle sense reads absent; undefined passes).
 */
function refusal(k: Kernel, ownSession: boolean): ReasonName | undefined {
  if (ownSession ? k.phase !== "authorizing" : k.phase !== "idle" || k.session) return "BUSY";
  if (k.faults.size > 0 || k.unavailable || k.estop || !k.meterFresh()) return "FAULTED";
  if (k.storeProblems.length > 0) return "FAULTED";
  if (k.vehicle === false) return "NO_VEHICLE";
  return undefined;
}

/** A verified, unused code: the session opens and its record is asked for. */
export function authorize(k: Kernel, connId: string, code: OpenedCode): void {
  const no = refusal(k, false);
  if (no) {
    k.result(connId, no);
    return;
  }
  const hex = toHex(code.codeId);
  const sessionId = k.deps.random(16);
  if (!(sessionId instanceof Uint8Array) || sessionId.length !== 16) throw new Error("random source");
  k.usedHere.add(hex);
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
    startedAt: k.wallNow(),
    meterStartWh: k.meter?.energyImportWh,
  };
  k.session = {
    sessionId,
    code,
    connId,
    subscribers: new Set([connId]),
    waiters: new Set(),
    recorded: false,
    recordDeadline: k.now + k.cfg.recordTimeoutMs,
    acceptedAt: k.now,
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
  k.phase = "authorizing";
  k.out.push({
    type: "recordCode",
    codeId: code.codeId,
    keyId: code.keyId,
    issuedAt: c.issuedAt,
    expiresAt: codeExpiry(c, k.cfg.skewMs),
    session: start,
  });
  k.log("info", "code.accepted", { codeId: hex, keyId: code.keyId, connId });
}

export function codeRecorded(k: Kernel, codeId: Uint8Array, ok: boolean): void {
  const s = k.session;
  const gone = k.abandoned;
  if (gone && equalBytes(gone.codeId, codeId) && !(s && equalBytes(s.code.codeId, codeId))) {
    // Recorded after the pile gave up on it: nothing moved, the open record is closed.
    k.abandoned = undefined;
    if (ok) closeUnused(k, gone.sessionId, gone.codeId, "FAULT");
    return;
  }
  if (!s || k.phase !== "authorizing" || !equalBytes(s.code.codeId, codeId)) {
    k.reject("codeRecorded", "BAD_INPUT", "no recordCode pending for this code id");
    return;
  }
  if (!ok) {
    recordFailed(k, "store refused the code record");
    k.abandoned = undefined;
    return;
  }
  s.recorded = true;
  k.floor.raise(s.code.claims.issuedAt);
  const no = refusal(k, true);
  if (no) {
    // The code is spent (recorded), but nothing moved: its session record is closed and the
    // carrier hears why.
    k.session = undefined;
    k.phase = "idle";
    closeUnused(k, s.sessionId, s.code.codeId, no === "NO_VEHICLE" ? "PLUG_REMOVED" : "FAULT");
    k.result(s.connId, no);
    return;
  }
  k.counters.accepted++;
  k.counters.sessions++;
  k.phase = "locking";
  k.commandLock(true, k.cfg.lockConfirmMs);
  k.out.push({ type: "sessionStarted", record: s.start });
  if (k.conns.has(s.connId))
    k.send(s.connId, { type: "RESULT", reason: Reason.ACCEPTED, sessionId: s.sessionId });
  if (k.lock.deadline === undefined) lockConfirmed(k);
}

export function recordFailed(k: Kernel, detail: string): void {
  const s = k.session;
  if (!s || k.phase !== "authorizing") return;
  k.usedHere.delete(toHex(s.code.codeId));
  k.session = undefined;
  k.abandoned = { sessionId: s.sessionId, codeId: s.code.codeId };
  k.phase = "idle";
  k.log("error", "store.record_failed", { codeId: toHex(s.code.codeId), detail });
  k.result(s.connId, "FAULTED");
}

/** Closes the record of a session that never moved anything (its code is spent). */
function closeUnused(k: Kernel, sessionId: Uint8Array, codeId: Uint8Array, stopReason: StopReason): void {
  k.out.push({
    type: "sessionEnded",
    record: { sessionId, codeId, stopReason, endedAt: k.wallNow(), energyWh: 0, faults: [] },
  });
  k.log("warn", "session.unused", { sessionId: toHex(sessionId), reason: stopReason });
}
