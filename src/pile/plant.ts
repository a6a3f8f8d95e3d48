/** The plant's other inputs: vehicle sense, emergency stop, line health, meter, radio. */
import { fault } from "./faults.js";
import { tryClose } from "./interlock.js";
import { type Kernel, STOPPABLE } from "./kernel.js";
import { beginStop } from "./session.js";
import { abortRelayTest } from "./technician.js";
import type { InputLine, MeterSample } from "./types.js";

export function vehicleSense(k: Kernel, present: boolean | undefined): void {
  k.vehicle = present;
  if (present === false && STOPPABLE.has(k.phase)) beginStop(k, "PLUG_REMOVED");
  if (present !== false && k.phase === "relayTest") abortRelayTest(k, "vehicle sensed during relay test");
}

export function emergencyStop(k: Kernel, active: boolean): void {
  const was = k.estop;
  k.estop = active;
  if (active) fault(k, "EMERGENCY_STOP", "emergency stop active");
  else if (was) k.log("info", "estop.released", {});
}

/** A line that cannot be read is a fault: its level, kept from before, may be wrong. */
export function inputHealth(k: Kernel, line: InputLine, readable: boolean): void {
  if (readable) {
    if (k.unreadable.delete(line)) k.log("info", "input.readable", { line });
    return;
  }
  k.unreadable.add(line);
  fault(k, "FEEDBACK_UNREADABLE", `${line} cannot be read`);
}

export function meterReading(k: Kernel, r: MeterSample): void {
  const takenAt = Math.min(r.takenAt, k.now);
  if (k.meter && takenAt < k.meter.takenAt) return;
  k.meter = { energyImportWh: r.energyImportWh, powerW: r.powerW, takenAt };
  const s = k.session;
  if (!s) return;
  if (k.phase === "locking" && s.lockConfirmedAt !== undefined) tryClose(k);
  if (k.phase === "charging" && s.code.claims.maxEnergyWh > 0) {
    if (k.sessionEnergy(s) >= s.code.claims.maxEnergyWh) beginStop(k, "ENERGY_LIMIT");
  }
}

export function radio(k: Kernel, up: boolean): void {
  if (k.radioDown === !up) return;
  k.radioDown = !up;
  k.log("info", "pile.radio", { up });
}
