/** Child-process helpers of the emulated radio (../radio.ts): waiting, and stopping by PID. */
import type { ChildProcess } from "node:child_process";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(pred: () => boolean, timeoutMs: number, gone: () => boolean): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (pred()) return true;
    if (gone()) return false;
    await sleep(10);
  }
  return pred();
}

export function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Sends SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
export async function stopChild(child: ChildProcess, graceMs = 1000): Promise<void> {
  if (exited(child) || child.pid === undefined) return;
  const gone = new Promise<void>((r) => child.once("exit", () => r()));
  try {
    process.kill(child.pid, "SIGTERM");
  } catch {
    return;
  }
  const t = setTimeout(() => {
    if (!exited(child) && child.pid !== undefined) {
      try {
        process.kill(child.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }, graceMs);
  await gone;
  clearTimeout(t);
}
