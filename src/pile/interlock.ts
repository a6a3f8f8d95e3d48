/**
 * The contactor interlock in the core: the facts `contactorInterlocks` (guard.ts) judges, the one
 * place that closes the contactor for a session, and the re-check after every input while the
 * contactor is commanded closed.
 */
import { toHex } from "../protocol/index.js";
import { fault } from "./faults.js";
import { contactorInterlocks, type InterlockFacts } from "./guard.js";
import { type Kernel, STOPPABLE } from "./kernel.js";
import { asksEnergy, pwmForSession } from "./pilot.js";
import { beginStop, charging } from "./session.js";
import { abortRelayTest } from "./technician.js";

export function facts(k: Kernel, purpose: InterlockFacts["purpose"]): InterlockFacts {
  const s = k.session;
  return {
    purpose,
    codeAccepted: s?.recorded === true && s.stopReason === undefined && !s.ended,
    lockConfirmed: k.lock.cmd === true && k.lock.fb === true,
    vehicle: k.vehicle,
    faultLatched: k.faults.size > 0,
    emergencyStop: k.estop,
    meterFresh: k.meterFresh(),
    vehicleAsks: asksEnergy(k),
  };
}

/** The only place that closes the contactor for a session. */
export function tryClose(k: Kernel): void {
  const s = k.session;
  if (!s || k.phase !== "locking") return;
  const f = facts(k, "session");
  if (f.codeAccepted && f.lockConfirmed && !f.faultLatched && !f.emergencyStop) pwmForSession(k);
  const blockers = contactorInterlocks(f);
  if (blockers.length === 0) {
    s.meterWaitDeadline = undefined;
    s.energyStartWh = k.meter?.energyImportWh;
    s.chargingSince = k.now;
    k.phase = "closing";
    // No record here: the start register is durable with the code (recordCode), and a write
    // between this decision and the coil would eat into the contactor's closing deadline.
    k.commandContactor(true, k.cfg.contactorCloseMs);
    k.log("info", "contactor.closing", { sessionId: toHex(s.sessionId) });
    if (k.contactor.deadline === undefined) charging(k);
    return;
  }
  // The PWM is on: the vehicle answers within 3 s (IEC 61851-1 Table A.6); its C comes as an input.
  if (blockers[0] === "PILOT" && blockers.every((b) => b === "PILOT" || b === "METER")) return;
  if (blockers.length === 1 && blockers[0] === "METER") {
    s.meterWaitDeadline ??= k.now + k.cfg.meterStaleMs;
    return;
  }
  k.log("warn", "contactor.close_refused", { interlocks: blockers.join(",") });
}

/** Re-checks the interlock while the contactor is commanded closed; opens it on any failure. */
export function enforce(k: Kernel): void {
  if (k.contactor.cmd !== true) return;
  if (k.phase === "relayTest") {
    if (contactorInterlocks(facts(k, "relayTest")).length > 0) abortRelayTest(k, "interlock");
    return;
  }
  const first = contactorInterlocks(facts(k, "session"))[0];
  if (first === undefined) return;
  switch (first) {
    case "EMERGENCY_STOP":
      fault(k, "EMERGENCY_STOP", "emergency stop active");
      return;
    case "LOCK":
      fault(k, "LOCK_LOST", "lock not engaged while the contactor is closed");
      return;
    case "VEHICLE":
      beginStop(k, "PLUG_REMOVED");
      return;
    case "PILOT":
      beginStop(k, "VEHICLE_DONE");
      return;
    case "METER":
      beginStop(k, "METER_LOST");
      return;
    default:
      if (k.session && STOPPABLE.has(k.phase)) {
        beginStop(k, "FAULT");
        return;
      }
      fault(k, "INTERNAL", `contactor closed without a session (${first})`);
      return;
  }
}
