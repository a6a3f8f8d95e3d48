/**
 * The control pilot (IEC 61851-1), where a pilot MCU senses the vehicle: A no vehicle, B
 * connected, C/D asks for energy, E/F pilot fault, and the MCU silent or reset. The session's
 * pilot sequence: code accepted and lock confirmed → PWM at the allowed current → the vehicle
 * goes to C → the contactor closes (tryClose) → back to B or stopped → contactor open, PWM off.
 * The MCU holds its own permit in series with the contactor line; this room only asks.
 */
import { fault } from "./faults.js";
import { tryClose } from "./interlock.js";
import type { Kernel } from "./kernel.js";
import { vehicleSense } from "./plant.js";
import { beginStop } from "./session.js";
import { PILOT_FAULTS, type PilotInputState } from "./types.js";

const PRESENT: Record<PilotInputState, boolean | undefined> = {
  A: false,
  B: true,
  C: true,
  D: true,
  E: undefined,
  F: undefined,
  X: undefined,
  lost: undefined,
  reset: undefined,
};

/** The vehicle asks for energy (C, or D: with ventilation). */
export const asksEnergy = (k: Kernel): boolean | undefined =>
  k.pilot ? k.pilot.state === "C" || k.pilot.state === "D" : undefined;

export function pilotReport(k: Kernel, state: PilotInputState, diodeFailed: boolean): void {
  k.pilot = { state, diodeFailed };
  k.vehicle = PRESENT[state];
  if (state === "lost" || state === "reset") {
    // A reset MCU comes up with its PWM and permit off; a silent one is told again when it is back.
    k.pwmA = null;
    k.testPermit = false;
    fault(k, "PILOT_MCU", state === "lost" ? "pilot MCU silent" : "pilot MCU reset");
    return;
  }
  if (state === "E" || state === "F" || state === "X") {
    fault(k, "PILOT_FAULT", `pilot state ${state}`);
    return;
  }
  if (diodeFailed) {
    fault(k, "PILOT_FAULT", "vehicle diode missing");
    return;
  }
  vehicleSense(k, k.vehicle);
  if (state === "A" || state === "B") recover(k);
  if (k.phase === "locking" && asksEnergy(k)) tryClose(k);
  else if (state === "B" && (k.phase === "closing" || k.phase === "charging")) beginStop(k, "VEHICLE_DONE");
}

/**
 * Idle, the pilot back at A or B: its faults clear on their own (the plant is safe again). Also
 * checked after every input: the pilot may have come back while the session was still ending.
 */
export function recover(k: Kernel): void {
  const p = k.pilot;
  if (!p || (p.state !== "A" && p.state !== "B") || p.diodeFailed) return;
  if (k.phase !== "idle" || k.contactor.cmd !== false || k.contactor.fb !== false) return;
  const codes = PILOT_FAULTS.filter((c) => k.faults.has(c));
  if (codes.length === 0) return;
  for (const c of codes) k.faults.delete(c);
  k.out.push({ type: "faultCleared", codes });
  k.log("info", "pilot.recovered", { state: k.pilot?.state ?? "?" });
}

/** Code accepted and lock confirmed: PWM on at the allowed current (once per session). */
export function pwmForSession(k: Kernel): void {
  if (!k.pilot || k.pwmA !== null || k.faults.size > 0) return;
  k.pwmA = allowedCurrent(k);
  k.out.push({ type: "pilot", command: "pwm", currentA: k.pwmA });
  k.log("info", "pilot.pwm", { currentA: k.pwmA });
}

/** The current the PWM offers: the pile's maximum, capped by the technician's limit. */
export function allowedCurrent(k: Kernel): number {
  const cap = k.currentLimitA;
  return cap === null ? k.cfg.pilotMaxCurrentA : Math.min(k.cfg.pilotMaxCurrentA, cap);
}

/** A new limit while the PWM is on: the vehicle is told at once (IEC 61851: it follows the duty). */
export function currentLimitChanged(k: Kernel): void {
  if (k.pwmA === null) return;
  const a = allowedCurrent(k);
  if (a === k.pwmA) return;
  k.pwmA = a;
  k.out.push({ type: "pilot", command: "pwm", currentA: a });
  k.log("info", "pilot.pwm", { currentA: a });
}

/** PWM back to steady +12 V (the session stopped, or a fault). */
export function pwmOff(k: Kernel): void {
  if (k.pwmA === null) return;
  k.pwmA = null;
  k.out.push({ type: "pilot", command: "pwm", currentA: null });
}

/** The technician's relay-test permit, asked of the MCU with the contactor line. */
export function testPermit(k: Kernel, on: boolean): void {
  if (!k.pilot || k.testPermit === on) return;
  k.testPermit = on;
  k.out.push({ type: "pilot", command: "test", on });
}
