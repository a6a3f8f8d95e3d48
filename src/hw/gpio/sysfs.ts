/**
 * The few legacy-sysfs operations both the onoff adapters and the stop-time safety pass need:
 * export a line and wait until its files are usable, and the raw direction word that sets an
 * output glitch-free.
 */
import { closeSync, existsSync, openSync, writeFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { errnoOf, GpioError } from "./errors.js";

export function lineDir(root: string, n: number): string {
  return `${root}/gpio${n}`;
}

/**
 * The direction word that makes a line an output already at `active` (logical). The kernel
 * applies "high"/"low" as RAW pin levels (gpiod_direction_output_raw), ignoring active_low, and
 * "out" means raw low: on an active-low line "out" would drive the line ACTIVE. Hence the XOR.
 */
export function outputDirectionWord(active: boolean, activeLow: boolean): "high" | "low" {
  return active !== activeLow ? "high" : "low";
}

function usable(path: string): boolean {
  try {
    closeSync(openSync(path, "r+"));
    return true;
  } catch {
    return false;
  }
}

function linesReady(dir: string): boolean {
  return usable(`${dir}/value`) && usable(`${dir}/direction`) && usable(`${dir}/active_low`);
}

function writeExport(root: string, n: number): void {
  try {
    writeFileSync(`${root}/export`, String(n));
  } catch (err) {
    const errno = errnoOf(err);
    if (errno === "EBUSY") {
      throw new GpioError("BUSY", `GPIO ${n} is held by a driver or another process`, { errno });
    }
    throw new GpioError("EXPORT", `cannot export GPIO ${n}: ${errno ?? String(err)}`, { errno });
  }
}

/**
 * Exports line `n` unless it already is, then waits (without blocking the event loop) until
 * its files can be opened read-write (udev may still be fixing permissions). Resolves to true
 * if this call exported it.
 */
export async function exportLine(
  root: string,
  n: number,
  opts: { timeoutMs?: number; pollMs?: number } = {},
): Promise<boolean> {
  const dir = lineDir(root, n);
  if (existsSync(dir)) return false;
  writeExport(root, n);
  const deadline = performance.now() + (opts.timeoutMs ?? 2000);
  while (!linesReady(dir)) {
    if (performance.now() > deadline) {
      throw new GpioError("EXPORT", `GPIO ${n} exported but ${dir} never became usable`);
    }
    await sleep(opts.pollMs ?? 2);
  }
  return true;
}

/** The same, synchronously (for the stop-time safety pass, which must not depend on an event loop). */
export function exportLineSync(root: string, n: number, opts: { timeoutMs?: number } = {}): boolean {
  const dir = lineDir(root, n);
  if (existsSync(dir)) return false;
  writeExport(root, n);
  const deadline = performance.now() + (opts.timeoutMs ?? 2000);
  const pause = new Int32Array(new SharedArrayBuffer(4));
  while (!linesReady(dir)) {
    if (performance.now() > deadline) {
      throw new GpioError("EXPORT", `GPIO ${n} exported but ${dir} never became usable`);
    }
    Atomics.wait(pause, 0, 0, 1);
  }
  return true;
}
