/**
 * The stop-time safety pass (systemd ExecStopPost, after the daemon died or stopped): a dead
 * process leaves a sysfs GPIO where it was, and a closed contactor must not outlive the daemon.
 * Synchronous sysfs calls only, no onoff and no event loop: open the contactor, then read its
 * feedback, and only if it reads open move the lock to its configured rest position. A contactor
 * that still reads closed (welded), that could not be opened, or whose feedback cannot be read
 * keeps the lock engaged: a live plug is never released.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { DEFAULT_SYSFS_ROOT, describeLine, type LineSpec, resolveLine } from "./chip.js";
import { errnoOf, GpioError } from "./errors.js";
import { exportLineSync, lineDir, outputDirectionWord } from "./sysfs.js";

export interface SafeOutputsSpec {
  contactor: LineSpec;
  lock: LineSpec;
  lockSafe: "released" | "engaged";
  contactorFeedback?: LineSpec;
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
  lock: LineAction & {
    position: "released" | "engaged";
    reason: "configured" | "weld" | "contactor-failed" | "feedback-unreadable";
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
    action.exported = exportLineSync(root, line.number, { timeoutMs: o.exportTimeoutMs });
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

  let feedback: LineAction | undefined;
  let weld: boolean | undefined;
  if (spec.contactorFeedback) {
    feedback = { line: describeLine(spec.contactorFeedback), exported: false };
    const until = Date.now() + (opts.confirmMs ?? 0);
    while (readInput(root, spec.contactorFeedback, feedback)) {
      weld = feedback.active === true;
      if (!weld || Date.now() >= until) break;
      pause(10);
    }
  }

  let reason: SafeOutputsReport["lock"]["reason"] = "configured";
  if (!contactorOpened) reason = "contactor-failed";
  else if (feedback && weld === undefined) reason = "feedback-unreadable";
  else if (weld) reason = "weld";
  const position = reason === "configured" ? spec.lockSafe : "engaged";
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
  return report;
}
