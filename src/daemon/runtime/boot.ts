/**
 * Boot of the control loop and its input lines: outputs to their safe state, the feedbacks read
 * and handed to the core, an interrupted session closed from the meter, the lines watched; and
 * the inputs read again when a deadline is due (sampleInputs).
 */
import type { DigitalInput } from "../../hw/ports.js";
import { FAULT_CODES, type FaultCode, type InputLine, type PileSnapshot } from "../../pile/index.js";
import { toHex } from "../../protocol/index.js";
import { bootPilot, watchPilot } from "../pilot-glue.js";
import { errText, type InputBody, type LoopContext } from "./context.js";
import type { Outputs } from "./effects.js";

interface InputLevels {
  contactorClosed: boolean;
  lockEngaged: boolean;
  vehicle: boolean | undefined;
  emergencyStop: boolean | undefined;
  pilot?: ReturnType<typeof bootPilot>["pilot"];
}

async function readInputs(ctx: LoopContext): Promise<InputLevels> {
  const { lines, vehicle } = ctx.parts;
  return {
    contactorClosed: await lines.contactorFeedback.read(),
    lockEngaged: await lines.lockFeedback.read(),
    vehicle: vehicle ? await vehicle.present() : undefined,
    emergencyStop: lines.emergencyStop ? await lines.emergencyStop.read() : undefined,
    ...bootPilot(vehicle),
  };
}

/**
 * The meter's import register at boot, the contactor commanded open (no energy flows): it
 * closes an interrupted session. undefined when the meter cannot be read (energy unknown).
 */
async function bootMeter(ctx: LoopContext): Promise<number | undefined> {
  try {
    return (await ctx.parts.meter.read()).energyImportWh;
  } catch (e) {
    ctx.log.warn({ err: errText(e) }, "meter unreadable at boot: an interrupted session's energy is unknown");
    return undefined;
  }
}

async function closeInterrupted(ctx: LoopContext): Promise<void> {
  const { store, clock } = ctx.parts;
  const meterNowWh = store.sessions.active() ? await bootMeter(ctx) : undefined;
  for (const s of store.sessions.markInterrupted(clock.now(), meterNowWh)) {
    ctx.log.warn(
      {
        sessionId: toHex(s.sessionId),
        codeId: toHex(s.codeId),
        energyWh: s.energyWh,
        energySource: s.energySource,
      },
      "session interrupted by a stop of the daemon: recorded as INTERRUPTED",
    );
  }
}

/** Input lines whose reads fail are faults of the core (FEEDBACK_UNREADABLE), not only a counter. */
function watchHealth(ctx: LoopContext, unsubs: (() => void)[]): void {
  const { lines } = ctx.parts;
  const watched: [InputLine, DigitalInput | undefined][] = [
    ["contactorFeedback", lines.contactorFeedback],
    ["lockFeedback", lines.lockFeedback],
    ["emergencyStop", lines.emergencyStop],
  ];
  for (const [line, input] of watched) {
    const off = input?.health?.((readable, detail) => {
      if (!readable) {
        ctx.count("gpio.unreadable");
        ctx.log.error({ line, detail }, "input line cannot be read");
      }
      void ctx.feed({ type: "inputHealth", line, readable });
    });
    if (off) unsubs.push(off);
  }
}

function watchInputs(ctx: LoopContext, unsubs: (() => void)[]): void {
  const { lines, vehicle } = ctx.parts;
  const feed = ctx.feed;
  unsubs.push(
    lines.contactorFeedback.watch((closed) => void feed({ type: "contactorFeedback", closed })),
    lines.lockFeedback.watch((engaged) => void feed({ type: "lockFeedback", engaged })),
  );
  if (lines.emergencyStop)
    unsubs.push(lines.emergencyStop.watch((active) => void feed({ type: "emergencyStop", active })));
  if (vehicle) unsubs.push(vehicle.watch((present) => void feed({ type: "vehicle", present })));
  if (vehicle?.pilot) unsubs.push(watchPilot(vehicle.pilot, (i) => feed(i), ctx.log));
  watchHealth(ctx, unsubs);
}

/** What moved between two readings, as inputs of the core. */
function changes(was: InputLevels, now: InputLevels): InputBody[] {
  const out: InputBody[] = [];
  if (now.contactorClosed !== was.contactorClosed)
    out.push({ type: "contactorFeedback", closed: now.contactorClosed });
  if (now.lockEngaged !== was.lockEngaged) out.push({ type: "lockFeedback", engaged: now.lockEngaged });
  if (now.vehicle !== was.vehicle) out.push({ type: "vehicle", present: now.vehicle });
  if (now.pilot !== was.pilot && now.pilot) out.push({ type: "pilot", state: now.pilot });
  if (now.emergencyStop !== undefined && now.emergencyStop !== was.emergencyStop)
    out.push({ type: "emergencyStop", active: now.emergencyStop });
  return out;
}

export async function boot(
  ctx: LoopContext,
  outputs: Outputs,
  unsubs: (() => void)[],
  booted: () => void,
): Promise<void> {
  const { lines, store } = ctx.parts;
  await outputs.write(lines.contactor, false, "contactor");
  const atBoot = await readInputs(ctx);
  await closeInterrupted(ctx);
  const latched = store.faults
    .active()
    .map((f) => f.code)
    .filter((c): c is FaultCode => FAULT_CODES.includes(c as FaultCode)) as FaultCode[];
  await ctx.feed({
    type: "boot",
    feedback: atBoot,
    floor: store.floor.get(),
    ...(latched.length > 0 ? { latched } : {}),
  });
  booted();
  watchInputs(ctx, unsubs);
  // A change between the boot reading and the watches above would be lost: read once more and
  // feed whatever moved meanwhile.
  for (const c of changes(atBoot, await readInputs(ctx))) await ctx.feed(c);
}

/**
 * A deadline is due: before the core may declare it missed, the inputs are read again and any
 * change is handed over first. After a stall of the loop, libuv runs due timers before it
 * polls I/O, so a feedback that arrived in time may still sit unread. A feedback that matches
 * its command answers its deadline (core.ts), so a healthy contactor is not taken for a slow or
 * a welded one; one that really did not move still reads as it was, and its deadline fires.
 */
export async function sampleInputs(ctx: LoopContext, seen: PileSnapshot["feedback"]): Promise<InputBody[]> {
  const { lines, vehicle } = ctx.parts;
  const read = async <T>(f: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await f();
    } catch {
      ctx.count("inputs.sampleErrors");
      return undefined;
    }
  };
  const contactorClosed = await read(() => lines.contactorFeedback.read());
  const lockEngaged = await read(() => lines.lockFeedback.read());
  const estop = lines.emergencyStop ? await read(() => lines.emergencyStop!.read()) : undefined;
  const present = vehicle ? await read(() => vehicle.present()) : undefined;
  const out: InputBody[] = [];
  if (contactorClosed !== undefined && contactorClosed !== seen.contactor)
    out.push({ type: "contactorFeedback", closed: contactorClosed });
  if (lockEngaged !== undefined && lockEngaged !== seen.lock)
    out.push({ type: "lockFeedback", engaged: lockEngaged });
  if (estop !== undefined && estop !== seen.emergencyStop) out.push({ type: "emergencyStop", active: estop });
  if (present !== undefined && present !== seen.vehicle) out.push({ type: "vehicle", present });
  for (const _ of out) ctx.count("inputs.sampledChanges");
  return out;
}
