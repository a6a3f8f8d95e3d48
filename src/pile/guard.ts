/**
 * The contactor interlock: the one function every path that would close the contactor goes
 * through (DESIGN.md, safety invariants). It is also re-checked after every input while the
 * contactor is commanded closed; the first failing condition decides how the core opens it.
 */

export interface InterlockFacts {
  /** "session": a charging session; "relayTest": a technician's test with nothing plugged in. */
  purpose: "session" | "relayTest";
  /** A code was accepted and durably recorded for the session now running. */
  codeAccepted: boolean;
  /** Lock commanded engaged and its feedback reads engaged. */
  lockConfirmed: boolean;
  /** undefined = the pile cannot tell. */
  vehicle: boolean | undefined;
  faultLatched: boolean;
  emergencyStop: boolean;
  /** Newest meter reading younger than meterStaleMs. */
  meterFresh: boolean;
  /** Where a pilot MCU senses the vehicle: it asks for energy (C/D). undefined = no pilot. */
  vehicleAsks?: boolean | undefined;
}

export type Interlock = "FAULT" | "EMERGENCY_STOP" | "NO_CODE" | "LOCK" | "VEHICLE" | "PILOT" | "METER";

/** The conditions that forbid closing, most serious first; empty = the contactor may close. */
export function contactorInterlocks(f: InterlockFacts): Interlock[] {
  const out: Interlock[] = [];
  if (f.faultLatched) out.push("FAULT");
  if (f.emergencyStop) out.push("EMERGENCY_STOP");
  if (f.purpose === "relayTest") {
    // Nothing may be plugged in, and the pile must be able to tell.
    if (f.vehicle !== false) out.push("VEHICLE");
    return out;
  }
  if (!f.codeAccepted) out.push("NO_CODE");
  if (!f.lockConfirmed) out.push("LOCK");
  if (f.vehicle === false) out.push("VEHICLE");
  if (f.vehicleAsks === false) out.push("PILOT");
  if (!f.meterFresh) out.push("METER");
  return out;
}

export function mayCloseContactor(f: InterlockFacts): boolean {
  return contactorInterlocks(f).length === 0;
}
