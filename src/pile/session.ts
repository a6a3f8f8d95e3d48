/**
 * The session once its code is recorded: charging, progress records and STATUS, the stop (the
 * contactor opens first, the rest once it reads open), the end record and the lock's return to
 * rest.
 */
import { Reason, toHex } from "../protocol/index.js";
import { type Kernel, type Session, STOPPABLE } from "./kernel.js";
import { pwmOff } from "./pilot.js";
import { stateOf, statusTo, syncState } from "./status.js";
import type { SessionEndRecord, StopReason } from "./types.js";

/** The contactor is confirmed closed: the session charges. */
export function charging(k: Kernel): void {
  const s = k.session;
  if (!s) return;
  k.phase = "charging";
  s.nextStatusAt = k.now + k.cfg.statusIntervalMs;
  sessionUpdate(k, s);
  k.log("info", "session.charging", { sessionId: toHex(s.sessionId) });
}

export function periodicStatus(k: Kernel, s: Session): void {
  // A late tick yields one STATUS, not one per missed period.
  const next = (s.nextStatusAt ?? k.now) + k.cfg.statusIntervalMs;
  s.nextStatusAt = next > k.inputMono ? next : k.inputMono + k.cfg.statusIntervalMs;
  if (s.recordedAt === undefined || k.now - s.recordedAt >= k.cfg.progressIntervalMs) sessionUpdate(k, s);
  statusTo(k, s.subscribers, stateOf(k), s);
}

export function sessionUpdate(k: Kernel, s: Session): void {
  const energyWh = k.sessionEnergy(s);
  s.recordedWh = energyWh;
  s.recordedAt = k.now;
  k.out.push({
    type: "sessionUpdate",
    record: {
      sessionId: s.sessionId,
      state: stateOf(k),
      energyStartWh: s.energyStartWh,
      energyWh,
      powerW: k.powerNow(),
    },
  });
}

/** Ends a running session: the contactor opens first, the rest once it reads open. */
export function beginStop(k: Kernel, reason: StopReason): void {
  const s = k.session;
  if (!s || !STOPPABLE.has(k.phase)) return;
  s.stopReason ??= reason;
  s.meterWaitDeadline = undefined;
  k.phase = "opening";
  const c = k.contactor;
  pwmOff(k);
  // Already commanded open (a fault came first): re-asserting it costs nothing.
  if (c.cmd !== false) k.commandContactor(false, k.cfg.contactorOpenMs);
  else k.out.push({ type: "contactor", closed: false });
  if (k.lock.cmd === true) k.lock.deadline = undefined;
  k.log("info", "session.stopping", { sessionId: toHex(s.sessionId), reason: s.stopReason });
  if (c.deadline === undefined) {
    if (c.fb === false) sessionContactorOpen(k);
    else sessionWelded(k);
  }
}

function endRecord(k: Kernel, s: Session): SessionEndRecord {
  const stop = k.meter?.energyImportWh;
  s.recordedWh = k.sessionEnergy(s);
  return {
    sessionId: s.sessionId,
    codeId: s.code.codeId,
    stopReason: s.stopReason ?? "FAULT",
    endedAt: k.wallNow(),
    energyStartWh: s.energyStartWh,
    energyStopWh: s.energyStartWh === undefined ? undefined : stop,
    energyWh: k.sessionEnergy(s),
    faults: [...s.faults],
  };
}

/** The contactor reads open: the end is written, the waiting carriers told, the lock released. */
export function sessionContactorOpen(k: Kernel): void {
  const s = k.session;
  if (!s) return;
  s.ended = true;
  k.out.push({ type: "sessionEnded", record: endRecord(k, s) });
  for (const id of s.waiters) k.send(id, { type: "RESULT", reason: Reason.STOPPED });
  s.waiters.clear();
  releaseLockToRest(k);
}

/** The lock goes back to its rest position (`lockSafeState`), then the pile is idle. */
export function releaseLockToRest(k: Kernel): void {
  if (k.cfg.lockSafeState === "engaged") {
    unlocked(k);
    return;
  }
  k.phase = "unlocking";
  k.commandLock(false, k.cfg.lockReleaseMs);
  if (k.lock.deadline === undefined) unlocked(k);
}

/** The contactor cannot be confirmed open: FAULTED (latched by the caller), lock kept engaged. */
export function sessionWelded(k: Kernel): void {
  const s = k.session;
  if (!s) return;
  if (!s.faults.includes("WELD")) s.faults.push("WELD");
  s.ended = true;
  k.out.push({ type: "sessionEnded", record: endRecord(k, s) });
  for (const id of s.waiters) k.send(id, { type: "RESULT", reason: Reason.FAULTED });
  s.waiters.clear();
  completeSession(k);
}

export function unlocked(k: Kernel): void {
  if (k.session) completeSession(k);
  else {
    k.phase = "idle";
    syncState(k);
  }
}

/** The session is over: back to idle, and a last STATUS of the state it left the pile in. */
function completeSession(k: Kernel): void {
  const s = k.session;
  k.session = undefined;
  k.phase = "idle";
  syncState(k);
  if (s) statusTo(k, s.subscribers, stateOf(k), s, true);
}
