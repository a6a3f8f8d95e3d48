/**
 * The stop-time safety pass (systemd ExecStopPost, after the daemon died or stopped): a dead
 * process leaves a sysfs GPIO where it was, and a closed contactor must not outlive the daemon.
 * Synchronous sysfs calls only, no onoff and no event loop: open the contactor, then read its
 * feedback, and only if it reads open move the lock to its configured rest position. A contactor
 * that still reads closed (welded), that could not be opened, or whose feedback cannot be read
 * keeps the lock engaged: a live plug is never released. So does a WELD the store holds latched
 * (an aux contact that reads open now does not undo a weld seen before), and a store that could
 * not be read: the latched faults are then unknown.
 *
 * The feedback is sampled through the whole confirmation window until it reads open; one failed
 * read does not end the window, and the outcome is the last sample's.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { DEFAULT_SYSFS_ROOT, describeLine, type LineSpec, resolveLine } from "./chip.js";
import { errnoOf, GpioError } from "./errors.js";
import { exportLineSync, lineDir, outputDirectionWord } from "./sysfs.js";

/** The faults the store holds latched, as the stop step could read them. */
export type LatchedFaults =
  | { readable: true; codes: readonly string[] }
  | { readable: false; detail: string };

export interface SafeOutputsSpec {
  contactor: LineSpec;
  lock: LineSpec;
  lockSafe: "released" | "engaged";
  contactorFeedback?: LineSpec;
  /** Reads the faults latched in the store, once the contactor was driven open; undefined: not consulted. */
  latched?: () => LatchedFaults;
}

export interface LineAction {
  /** "chip:offset" as configured. */
  line: string;
  /** Resolved sysfs number, once known. */
  number?: number;
  /** This pass exported the line. */
  exported: boolean;
  /** The logical level driven (outputs) or read (inputs). */
  active?: boolean;
  error?: GpioError;
}

export interface SafeOutputsReport {
  /** Every step succeeded and the lock went where the config says. */
  ok: boolean;
  /** Driven open (inactive). */
  contactor: LineAction;
  contactorFeedback?: LineAction;
  /** true: feedback still reads closed after opening; undefined: no feedback or unreadable. */
  weld: boolean | undefined;
  /** Feedback samples taken and how many of them failed. */
  samples?: { taken: number; failed: number };
  /** The store's latched faults, where they were consulted. */
  latched?: LatchedFaults;
  lock: LineAction & {
    position: "released" | "engaged";
    reason:
      | "configured"
      | "weld"
      | "weld-latched"
      | "store-unreadable"
      | "contactor-failed"
      | "feedback-unreadable";
  };
}

function toGpioError(err: unknown, what: string): GpioError {
  if (err instanceof GpioError) return err;
  const errno = errnoOf(err);
  return new GpioError(errno === "EBUSY" ? "BUSY" : "IO", `${what}: ${errno ?? String(err)}`, { errno });
}

function attempt(action: LineAction, what: string, step: () => void): boolean {
  try {
    step();
    return true;
  } catch (err) {
    action.error = toGpioError(err, what);
    return false;
  }
}

function readBit(path: string): boolean {
  const text = readFileSync(path, "utf8").trim();
  if (text !== "0" && text !== "1") throw new GpioError("IO", `${path} reads "${text}", not 0 or 1`);
  return text === "1";
}

interface PassOptions {
  root: string;
  exportTimeoutMs: number;
}

function driveOutput(o: PassOptions, spec: LineSpec, active: boolean, action: LineAction): boolean {
  const root = o.root;
  return attempt(action, `cannot drive ${action.line}`, () => {
    const line = resolveLine(spec, { sysfsRoot: root });
    action.number = line.number;
    action.exported = exportLineSync(root, line.number, { timeoutMs: o.exportTimeoutMs });
    const dir = lineDir(root, line.number);
    writeFileSync(`${dir}/active_low`, line.activeLow ? "1" : "0");
    // raw level word: the line becomes (or stays) an output already at the wanted level
    writeFileSync(`${dir}/direction`, outputDirectionWord(active, line.activeLow));
    writeFileSync(`${dir}/value`, active ? "1" : "0");
    if (readBit(`${dir}/value`) !== active) {
      throw new GpioError("IO", `${action.line} (GPIO ${line.number}) does not read back the level written`);
    }
    action.active = active;
  });
}

function readInput(o: PassOptions, spec: LineSpec, action: LineAction): boolean {
  const root = o.root;
  return attempt(action, `cannot read ${action.line}`, () => {
    const line = resolveLine(spec, { sysfsRoot: root });
    action.number = line.number;
    action.exported = exportLineSync(root, line.number, { timeoutMs: o.exportTimeoutMs }) || action.exported;
    const dir = lineDir(root, line.number);
    if (readFileSync(`${dir}/direction`, "utf8").trim() !== "in") writeFileSync(`${dir}/direction`, "in");
    writeFileSync(`${dir}/active_low`, line.activeLow ? "1" : "0");
    action.active = readBit(`${dir}/value`);
  });
}

/** Blocks the thread for `ms` (this pass is synchronous by design: it runs alone, at the end). */
function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** One feedback sample: the level read, or undefined when the read failed. */
export type Sample = () => boolean | undefined;

/**
 * Samples the contactor's feedback until it reads open or the window is over. A failed read
 * does not end the window; the outcome is the last sample's (undefined: the last read failed).
 */
export function confirmOpen(
  sample: Sample,
  window: { untilMs: number; now: () => number; pause: (ms: number) => void; periodMs?: number },
): { closed: boolean | undefined; taken: number; failed: number } {
  let taken = 0;
  let failed = 0;
  for (;;) {
    const closed = sample();
    taken += 1;
    if (closed === undefined) failed += 1;
    if (closed === false || window.now() >= window.untilMs) return { closed, taken, failed };
    window.pause(window.periodMs ?? 10);
  }
}

/** The lock's position and why, from what the pass found. */
export function lockDecision(
  found: {
    contactorOpened: boolean;
    feedback: boolean;
    weld: boolean | undefined;
    latched?: LatchedFaults | undefined;
  },
  lockSafe: "released" | "engaged",
): { position: "released" | "engaged"; reason: SafeOutputsReport["lock"]["reason"] } {
  let reason: SafeOutputsReport["lock"]["reason"] = "configured";
  if (!found.contactorOpened) reason = "contactor-failed";
  else if (found.feedback && found.weld === undefined) reason = "feedback-unreadable";
  else if (found.weld) reason = "weld";
  else if (found.latched && !found.latched.readable) reason = "store-unreadable";
  else if (found.latched?.codes.includes("WELD")) reason = "weld-latched";
  return { position: reason === "configured" ? lockSafe : "engaged", reason };
}

export function forceSafeOutputs(
  spec: SafeOutputsSpec,
  opts: {
    sysfsRoot?: string;
    exportTimeoutMs?: number;
    /** How long the contactor's feedback may take to read open before it counts as welded (a real contactor needs 20–50 ms). */
    confirmMs?: number;
  } = {},
): SafeOutputsReport {
  const root: PassOptions = {
    root: opts.sysfsRoot ?? DEFAULT_SYSFS_ROOT,
    exportTimeoutMs: opts.exportTimeoutMs ?? 2000,
  };
  const contactor: LineAction = { line: describeLine(spec.contactor), exported: false };
  const contactorOpened = driveOutput(root, spec.contactor, false, contactor);
  let latched: LatchedFaults | undefined;
  try {
    latched = spec.latched?.();
  } catch (err) {
    latched = { readable: false, detail: err instanceof Error ? err.message : String(err) };
  }

  let feedback: LineAction | undefined;
  let weld: boolean | undefined;
  let samples: SafeOutputsReport["samples"];
  const fbSpec = spec.contactorFeedback;
  if (fbSpec) {
    const action: LineAction = { line: describeLine(fbSpec), exported: false };
    feedback = action;
    const sample: Sample = () => {
      delete action.error;
      delete action.active;
      return readInput(root, fbSpec, action) ? action.active : undefined;
    };
    const r = confirmOpen(sample, { untilMs: Date.now() + (opts.confirmMs ?? 0), now: Date.now, pause });
    weld = r.closed;
    samples = { taken: r.taken, failed: r.failed };
  }

  const { position, reason } = lockDecision(
    { contactorOpened, feedback: feedback !== undefined, weld, latched },
    spec.lockSafe,
  );
  const lock: SafeOutputsReport["lock"] = {
    line: describeLine(spec.lock),
    exported: false,
    position,
    reason,
  };
  const lockDriven = driveOutput(root, spec.lock, position === "engaged", lock);

  const report: SafeOutputsReport = {
    ok: contactorOpened && lockDriven && reason === "configured",
    contactor,
    weld,
    lock,
  };
  if (feedback) report.contactorFeedback = feedback;
  if (samples) report.samples = samples;
  if (latched) report.latched = latched;
  return report;
}
