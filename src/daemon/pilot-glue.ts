/**
 * The pilot MCU in the daemon, kept apart from the runtime: opening it (the real UART, or the
 * firmware in the simulator harness with its permit wired into the simulated plant), turning its
 * reports into core inputs, performing the core's `pilot` effects, and its view for the status
 * pages (pilectl status, the console).
 */
import type { Logger } from "pino";
import type { PilotDetails, PilotPort, Unsubscribe, VehicleSense } from "../hw/ports.js";
import type { PileEffect, PileInput } from "../pile/index.js";
import type { SimPilot } from "../sim/pilot-sim.js";
import type { SimPlant } from "../sim/plant.js";
import type { Config } from "./config.js";

export interface OpenedPilot {
  vehicle: VehicleSense;
  sim: SimPilot | undefined;
  close(): Promise<void>;
}

/** The simulated plant gets the MCU's permit in series with its contactor coil. */
export const simMcuPermit = (c: Config): boolean => c.vehicle.kind === "pilot-mcu" && c.vehicle.sim;

/**
 * Opens the pilot MCU the config names (its close pushed onto `closers`); undefined for a
 * plug-present (or no) vehicle sense.
 */
export async function openPilot(
  config: Config,
  plant: SimPlant | undefined,
  log: Logger,
  closers: (() => Promise<void>)[],
): Promise<OpenedPilot | undefined> {
  const v = config.vehicle;
  if (v.kind !== "pilot-mcu") return undefined;
  const plog = log.child({ component: "pilot" });
  let sim: SimPilot | undefined;
  if (v.sim) {
    // The simulator is loaded only for a configuration that asks for it.
    const { SimPilot } = await import("../sim/pilot-sim.js");
    sim = await SimPilot.start({
      auto: true,
      onPermit: (on) => plant?.setPermit(on),
      onExit: (code) => plog.error({ code }, "pilot harness exited"),
    });
    plog.info({ pty: sim.pty }, "pilot firmware running in the simulator harness");
  }
  const started = sim;
  try {
    // The MCU's serial link (serialport) only for a pile that has one.
    const { PilotVehicle } = await import("../hw/pilot/vehicle.js");
    const vehicle = await PilotVehicle.open({
      port: sim ? sim.pty : v.port,
      baud: v.baud,
      heartbeatMs: v.heartbeatMs,
      silenceMs: v.silenceMs,
      heartbeatLimitMs: v.heartbeatLimitMs,
      // The harness holds the MCU until the board's port is open (serialport flushes on open).
      ...(started ? { onOpen: async () => started.go() } : {}),
      onError: (what, e) => plog.warn({ what, err: e instanceof Error ? e.message : String(e) }, "pilot MCU"),
    });
    const details = vehicle.pilot.details();
    if (details.state === "lost")
      plog.warn({ details }, "pilot MCU not answering: PILOT_MCU until it is heard");
    else plog.info({ details }, "pilot MCU up");
    const opened: OpenedPilot = {
      vehicle,
      sim,
      close: async () => {
        await vehicle.close().catch(() => undefined);
        await sim?.stop();
      },
    };
    closers.push(() => opened.close());
    return opened;
  } catch (e) {
    await sim?.stop();
    throw e;
  }
}

type PilotFeed = Extract<PileInput, { type: "pilot" }>;

/**
 * The daemon's reaction time to the pilot: from a STATE line parsed off the UART to the core's
 * effects for it performed (the last 64, in ms).
 */
const reactions = new WeakMap<PilotPort, number[]>();

/** Every report of the pilot as a core input; each one's reaction time is kept. */
export function watchPilot(
  pilot: PilotPort,
  feed: (i: Omit<PilotFeed, "mono" | "wall">) => Promise<unknown>,
  log?: Logger,
): Unsubscribe {
  const times: number[] = [];
  reactions.set(pilot, times);
  return pilot.watch((r) => {
    const t0 = performance.now();
    log?.info({ pilot: r.state, diodeFailed: r.diodeFailed, mcu: pilot.details() }, "pilot state");
    void feed({ type: "pilot", state: r.state, diodeFailed: r.diodeFailed }).then(() => {
      times.push(performance.now() - t0);
      if (times.length > 64) times.shift();
    });
  });
}

/** The pilot's state for the core's boot input. */
export function bootPilot(vehicle: VehicleSense | undefined): { pilot?: PilotFeed["state"] } {
  if (!vehicle?.pilot) return {};
  return { pilot: vehicle.pilot.report()?.state ?? "lost" };
}

/**
 * Performs a `pilot` effect. A refusal or a timeout is logged: the MCU's permit stays off on its
 * own, and the contactor's feedback (in series) tells the core what happened.
 */
export async function performPilot(
  pilot: PilotPort | undefined,
  e: Extract<PileEffect, { type: "pilot" }>,
  log: Logger,
): Promise<void> {
  if (!pilot) return;
  try {
    if (e.command === "pwm") await pilot.setCurrent(e.currentA);
    else await pilot.testPermit(e.on);
  } catch (err) {
    log.warn(
      { command: e.command, err: err instanceof Error ? err.message : String(err) },
      "pilot MCU refused",
    );
    throw err;
  }
}

/** The core's pilot settings from the daemon's config. */
export function pilotCoreConfig(c: Config): { pilotMaxCurrentA?: number } {
  return c.vehicle.kind === "pilot-mcu" ? { pilotMaxCurrentA: c.vehicle.maxCurrentA } : {};
}

/** The status pages' view of the pilot. */
export function pilotView(vehicle: VehicleSense | undefined): PilotDetails | undefined {
  const p = vehicle?.pilot;
  if (!p) return undefined;
  const d = p.details();
  const t = [...(reactions.get(p) ?? [])].sort((a, b) => a - b);
  if (t.length === 0) return d;
  const us = (ms: number) => Math.round(ms * 1000);
  d.counters["daemon.reactions"] = t.length;
  d.counters["daemon.reactionP50Us"] = us(t[t.length >> 1] as number);
  d.counters["daemon.reactionMaxUs"] = us(t[t.length - 1] as number);
  return d;
}
