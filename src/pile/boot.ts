/**
 * Boot: every output to its safe state first, latched faults kept, then idle once the relays
 * confirm. The lock is only released once the contactor reads open: a contactor that stays
 * closed is a weld, and a live plug stays locked.
 */
import { fault } from "./faults.js";
import type { Kernel } from "./kernel.js";
import { stateOf } from "./status.js";
import { TimeFloor } from "./time-floor.js";
import type { PileInput } from "./types.js";

export function boot(k: Kernel, input: Extract<PileInput, { type: "boot" }>): void {
  k.phase = "booting";
  k.floor = new TimeFloor(input.floor);
  const fb = input.feedback;
  k.contactor.fb = fb.contactorClosed;
  k.lock.fb = fb.lockEngaged;
  k.vehicle = fb.vehicle;
  if (fb.pilot !== undefined) {
    k.pilot = { state: fb.pilot, diodeFailed: false };
    // The board restarted: whatever the MCU was told before, the PWM is asked off.
    k.out.push({ type: "pilot", command: "pwm", currentA: null });
  }
  k.estop = fb.emergencyStop === true;
  // Faults latched before a restart stay latched (a weld keeps the lock engaged below).
  for (const code of input.latched ?? []) k.faults.add(code);
  k.commandContactor(false, k.cfg.contactorOpenMs);
  // A latched weld re-engages the lock whatever its rest position and whatever the aux
  // contact reads now (the stop step, a power cut or a technician may have moved it).
  if (k.cfg.lockSafeState === "engaged" || k.faults.has("WELD")) k.commandLock(true, k.cfg.lockConfirmMs);
  k.log("info", "pile.boot", {
    contactorClosed: fb.contactorClosed,
    lockEngaged: fb.lockEngaged,
    timeFloorMs: k.floor.floor.toString(),
  });
  if (k.estop) fault(k, "EMERGENCY_STOP", "emergency stop active at boot");
  if (fb.pilot !== undefined && fb.pilot !== "A" && fb.pilot !== "B" && fb.pilot !== "C" && fb.pilot !== "D")
    fault(
      k,
      fb.pilot === "E" || fb.pilot === "F" || fb.pilot === "X" ? "PILOT_FAULT" : "PILOT_MCU",
      `pilot ${fb.pilot} at boot`,
    );
  if (k.phase === "booting" && k.contactor.deadline === undefined) bootContactorOpen(k);
}

/** The contactor reads open after boot: the lock may go to its rest position. */
export function bootContactorOpen(k: Kernel): void {
  if (k.cfg.lockSafeState === "released" && !k.faults.has("WELD")) k.commandLock(false, k.cfg.lockReleaseMs);
  bootProgress(k);
}

/** Booting ends once no relay confirmation is awaited. */
export function bootProgress(k: Kernel): void {
  if (k.phase !== "booting") return;
  if (k.contactor.deadline !== undefined || k.lock.deadline !== undefined) return;
  k.phase = "idle";
  k.log("info", "pile.ready", { state: stateOf(k) });
}
