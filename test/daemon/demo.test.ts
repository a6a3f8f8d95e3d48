/**
 * The desk demo (`npm start`) on a signal: Ctrl-C, a kill and a closed terminal each end the
 * daemon it started, remove its working folder (key file and database inside) and exit by the
 * shell's convention (128 + the signal's number).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { poll } from "../helpers/poll.js";

const DEMO = fileURLToPath(new URL("../../src/daemon/demo.js", import.meta.url));
const leftovers: { pid?: number; work?: string }[] = [];
after(() => {
  for (const l of leftovers) {
    if (l.pid !== undefined && alive(l.pid)) process.kill(l.pid, "SIGKILL");
    if (l.work) rmSync(l.work, { recursive: true, force: true });
  }
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function signalled(
  sig: NodeJS.Signals,
): Promise<{ code: number | null; work: string; daemonPid: number }> {
  const demo = spawn(process.execPath, [DEMO, "--charge-s", "1"], { stdio: ["ignore", "pipe", "pipe"] });
  const seen: { pid?: number; work?: string } = {};
  leftovers.push(seen);
  let out = "";
  const exited = new Promise<number | null>((r) => demo.once("exit", (code) => r(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`demo did not start piled:\n${out}`)), 60_000);
    demo.stdout.on("data", (b: Buffer) => {
      out += b.toString();
      seen.work ??= /working folder (\S+)/.exec(out)?.[1];
      const pid = /started piled \(pid (\d+)\)/.exec(out)?.[1];
      if (pid && seen.pid === undefined) {
        seen.pid = Number(pid);
        clearTimeout(timer);
        resolve();
      }
    });
  });
  assert.ok(seen.work && seen.pid !== undefined);
  assert.ok(existsSync(seen.work));
  process.kill(demo.pid as number, sig);
  const code = await exited;
  // the daemon gets its SIGTERM and the demo waits for its exit before its own
  return { code, work: seen.work, daemonPid: seen.pid };
}

for (const [sig, want] of [
  ["SIGTERM", 143],
  ["SIGHUP", 129],
] as const) {
  test(`field report: ${sig} on the running demo ends piled by PID, removes the working folder and exits ${want}`, async () => {
    const r = await signalled(sig);
    assert.equal(r.code, want);
    assert.equal(existsSync(r.work), false, `${r.work} is left behind`);
    assert.equal(alive(r.daemonPid), false, `piled (pid ${r.daemonPid}) outlives the demo`);
  });
}

test("field report: piled does not outlive a demo killed outright (SIGKILL)", async () => {
  const r = await signalled("SIGKILL");
  await poll(() => !alive(r.daemonPid), { timeoutMs: 30_000, everyMs: 100 });
  assert.equal(alive(r.daemonPid), false, `piled (pid ${r.daemonPid}) is left running as an orphan`);
});
