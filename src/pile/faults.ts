/**
 * The fault policy: any fault opens the contactor first and latches; a weld keeps the lock
 * engaged (never release a live plug); then the phase decides what follows. A failure of the core
 * itself fails safe.
 */
import { bootProgress } from "./boot.js";
import type { Kernel } from "./kernel.js";
import { pwmOff } from "./pilot.js";
import { beginStop, sessionWelded, unlocked } from "./session.js";
import { syncState } from "./status.js";
import { relayTestDone } from "./technician.js";
import type { FaultCode } from "./types.js";

/** Any fault: contactor open first, latch, then the phase decides what follows. */
export function fault(k: Kernel, code: FaultCode, detail: string): void {
  const c = k.contactor;
  const wasClosed = c.cmd === true;
  // A closing not yet confirmed: the relay may still pass through closed (actuator.ts).
  const reversing = wasClosed && c.deadline !== undefined;
  k.out.push({ type: "contactor", closed: false });
  c.cmd = false;
  if (code === "WELD" || (c.fb === false && !reversing)) c.deadline = undefined;
  else if (wasClosed || c.deadline === undefined) c.deadline = k.now + k.cfg.contactorOpenMs;
  pwmOff(k);
  const fresh = !k.faults.has(code);
  k.faults.add(code);
  if (fresh) {
    k.counters.faults++;
    k.out.push({ type: "fault", code, detail });
  }
  const s = k.session;
  if (s && !s.ended && !s.faults.includes(code)) s.faults.push(code);
  if (code === "WELD") {
    // Never release a live plug.
    if (k.lock.cmd !== true || k.lock.deadline !== undefined) {
      k.out.push({ type: "lock", engaged: true });
      k.lock.cmd = true;
      k.lock.deadline = undefined;
    }
  }
  afterFault(k, code);
}

function afterFault(k: Kernel, code: FaultCode): void {
  switch (k.phase) {
    case "locking":
    case "closing":
    case "charging":
      beginStop(k, code === "EMERGENCY_STOP" ? "EMERGENCY_STOP" : "FAULT");
      return;
    case "opening":
      if (code === "WELD") sessionWelded(k);
      return;
    case "unlocking":
      if (code === "WELD") unlocked(k);
      return;
    case "relayTest":
      if (k.relay) k.relay = { ok: false, detail: code };
      if (k.contactor.deadline === undefined || k.contactor.fb === false) relayTestDone(k);
      return;
    case "booting":
      bootProgress(k);
      return;
    default:
      return;
  }
}

/** The core itself failed (a bug): contactor open, INTERNAL latched, nothing else trusted. */
export function failSafe(k: Kernel, e: unknown): void {
  try {
    k.out.push({ type: "contactor", closed: false });
    k.contactor.cmd = false;
    if (!k.faults.has("INTERNAL")) {
      k.faults.add("INTERNAL");
      k.out.push({ type: "fault", code: "INTERNAL", detail: "core failure" });
    }
    k.log("error", "core.internal_error", { error: e instanceof Error ? e.name : typeof e });
    syncState(k);
  } catch {
    // nothing more can be done safely here: the contactor(false) effect is already queued
  }
}
