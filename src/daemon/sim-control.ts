/**
 * `sim` commands of the control socket, present only when the plant is simulated: a desk
 * integrator (and the end-to-end tests) pull the plug, weld the contactor or silence the meter
 * of a running daemon exactly as a field fault would.
 */
import type { SimMeter } from "../sim/meter/sim-meter.js";
import type { SimPilot, SimVehicleState } from "../sim/pilot-sim.js";
import type { SimPlant } from "../sim/plant.js";
import type { PileRuntime } from "./runtime.js";

export const SIM_ACTIONS = [
  "plug-in",
  "plug-out",
  "weld",
  "contactor-never-closes",
  "lock-stuck-open",
  "lock-opens-under-load",
  "estop-press",
  "estop-release",
  "meter-silent",
  "meter-crc",
  "meter-exception",
  "meter-repeat",
  "meter-shifted",
  "meter-backwards",
  "meter-absurd",
  "meter-ok",
  "clear",
  "state",
  // The simulated pilot MCU's vehicle (plug-in / plug-out play B / A there).
  "vehicle-a",
  "vehicle-b",
  "vehicle-c",
  "vehicle-d",
  "vehicle-e",
  "vehicle-f",
  "diode-break",
  "diode-fix",
  "vehicle-auto",
  "vehicle-manual",
  "mcu-freeze",
  "mcu-reset",
] as const;
export type SimAction = (typeof SIM_ACTIONS)[number];

export type SimOutcome =
  | { ok: true; result: unknown }
  | { ok: false; error: { code: string; message: string } };

export interface SimControl {
  run(action: string): SimOutcome;
}

/** Runs a pilot simulator action; false when `action` is none; throws without a simulated MCU. */
function pilotHandled(pilot: SimPilot | undefined, action: SimAction): boolean {
  if (pilot) return pilotAction(pilot, action);
  if (PILOT_ONLY.has(action)) throw new Error("the pilot MCU is not simulated");
  return false;
}

/** The pilot simulator's actions; false when `action` is none of them. */
function pilotAction(pilot: SimPilot, action: SimAction): boolean {
  if (action.startsWith("vehicle-") && action.length === 9) {
    pilot.setAuto(false);
    pilot.setVehicle(action.slice(8).toUpperCase() as SimVehicleState);
    return true;
  }
  switch (action) {
    case "plug-in":
      pilot.setVehicle("B");
      return true;
    case "plug-out":
      pilot.setVehicle("A");
      return true;
    case "diode-break":
    case "diode-fix":
      pilot.setDiode(action === "diode-fix");
      return true;
    case "vehicle-auto":
    case "vehicle-manual":
      pilot.setAuto(action === "vehicle-auto");
      return true;
    case "mcu-freeze":
      pilot.freeze();
      return true;
    case "mcu-reset":
      pilot.reset();
      return true;
    default:
      return false;
  }
}

const PILOT_ONLY = new Set<string>(
  SIM_ACTIONS.filter((a) => a.startsWith("vehicle-") || a.includes("diode") || a.startsWith("mcu-")),
);

/** The plant's and the meter's actions; throws when the part asked for is not simulated. */
function plantOrMeterAction(sim: { plant?: SimPlant; meter?: SimMeter }, action: SimAction): void {
  const { plant, meter } = sim;
  const need = <T>(x: T | undefined, what: string): T => {
    if (x === undefined) throw new Error(`${what} is not simulated`);
    return x;
  };
  switch (action) {
    case "plug-in":
      need(plant, "the plant").insertPlug();
      break;
    case "plug-out":
      need(plant, "the plant").pullPlug();
      break;
    case "weld":
      need(plant, "the plant").weldContactor();
      break;
    case "contactor-never-closes":
      need(plant, "the plant").contactorNeverCloses();
      break;
    case "lock-stuck-open":
      need(plant, "the plant").lockStuckOpen();
      break;
    case "lock-opens-under-load":
      need(plant, "the plant").lockOpensUnderLoad();
      break;
    case "estop-press":
      need(plant, "the plant").pressEmergencyStop();
      break;
    case "estop-release":
      need(plant, "the plant").releaseEmergencyStop();
      break;
    case "meter-silent":
      need(meter, "the meter").setFaults({ silent: true });
      break;
    case "meter-crc":
      need(meter, "the meter").setFaults({ corruptCrc: true });
      break;
    case "meter-exception":
      need(meter, "the meter").setFaults({ exception: 4 });
      break;
    case "meter-repeat":
      need(meter, "the meter").setFaults({ duplicateAfterMs: 20 });
      break;
    case "meter-shifted":
      need(meter, "the meter").setFaults({ shifted: true });
      break;
    case "meter-backwards":
      need(meter, "the meter").setFaults({ energyOffsetWh: -5000 });
      break;
    case "meter-absurd":
      need(meter, "the meter").setFaults({ energyOffsetWh: 7_360_000 });
      break;
    case "meter-ok":
      need(meter, "the meter").clearFaults();
      break;
    case "clear":
      plant?.clearFaults();
      meter?.clearFaults();
      break;
    case "state":
      break;
  }
}

export function simControl(
  sim: { plant?: SimPlant; meter?: SimMeter; pilot?: SimPilot },
  runtime: PileRuntime,
): SimControl {
  const { pilot } = sim;
  return {
    run(action: string): SimOutcome {
      if (!(SIM_ACTIONS as readonly string[]).includes(action))
        return { ok: false, error: { code: "USAGE", message: `sim actions: ${SIM_ACTIONS.join(", ")}` } };
      try {
        if (pilotHandled(pilot, action as SimAction)) return done(sim, runtime);
        plantOrMeterAction(sim, action as SimAction);
      } catch (e) {
        return {
          ok: false,
          error: { code: "NOT_SIMULATED", message: e instanceof Error ? e.message : String(e) },
        };
      }
      return done(sim, runtime);
    },
  };
}

/** The plant, the meter, the pilot simulator and the pile after an action. */
function done(
  sim: { plant?: SimPlant; meter?: SimMeter; pilot?: SimPilot },
  runtime: PileRuntime,
): SimOutcome {
  const { plant, meter, pilot } = sim;
  return {
    ok: true,
    result: {
      plant: plant?.state(),
      meter: meter?.values(),
      ...(pilot ? { pilot: pilot.state() } : {}),
      pile: runtime.snapshot().state,
    },
  };
}
