/**
 * A pty pair from socat (serial tests, and the simulated meter of the default run): `a` and `b` are two linked tty paths (symlinks in a
 * private temporary folder). Fails with the Debian package to install when socat is missing.
 *
 *   const pair = await openPtyPair();
 *   try { ... } finally { await pair.close(); }
 *
 * `openPtyPair({ dir })` makes the links in an existing folder (e.g. to bring a killed pair back
 * under the same paths); close() then leaves that folder in place.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface PtyPair {
  a: string;
  b: string;
  pid: number;
  /** Kills socat (by its pid), waits for it to exit and removes the temporary folder. */
  close(): Promise<void>;
}

let socatChecked = false;

export function requireSocat(): void {
  if (socatChecked) return;
  const r = spawnSync("socat", ["-V"], { stdio: "ignore" });
  if (r.error || r.status !== 0) {
    throw new Error("socat is missing: install the Debian package 'socat' (scripts/ensure-system-deps.sh)");
  }
  socatChecked = true;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

export async function openPtyPair(opts: { dir?: string; timeoutMs?: number } = {}): Promise<PtyPair> {
  requireSocat();
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), "piled-pty-"));
  const a = join(dir, "A");
  const b = join(dir, "B");
  // socat runs under a small shell that kills it when our end of its stdin closes: a process
  // killed with SIGKILL (a crash test, a daemon on a desk) leaves no socat behind. The shell
  // prints socat's pid first, so `pid` is socat's own (tests kill it to unplug the link).
  const child = spawn(
    "sh",
    [
      "-c",
      'socat -d -d "$1" "$2" & pid=$!; echo "$pid"; cat >/dev/null; kill "$pid" 2>/dev/null; wait "$pid"',
      "sh",
      `PTY,raw,echo=0,link=${a}`,
      `PTY,raw,echo=0,link=${b}`,
    ],
    { stdio: ["pipe", "pipe", "pipe"] },
  );
  child.stdin?.on("error", () => {});
  let socatPid: number | undefined;
  child.stdout?.once("data", (d: Buffer) => {
    const n = Number.parseInt(d.toString(), 10);
    if (Number.isInteger(n) && n > 0) socatPid = n;
  });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    if (stderr.length < 4096) stderr += d.toString();
  });
  const cleanup = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.stdin?.end();
      if (socatPid !== undefined) {
        try {
          process.kill(socatPid, "SIGTERM");
        } catch {
          // already gone
        }
      }
    }
    await exited(child);
    if (ownDir) rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + (opts.timeoutMs ?? 5000);
  while (!(existsSync(a) && existsSync(b))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await cleanup();
      throw new Error(`socat did not make the pty pair in ${dir}: ${stderr.trim() || "timed out"}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  // socat prints "starting data transfer loop" once both ends are ready.
  while (
    !stderr.includes("starting data transfer loop") &&
    child.exitCode === null &&
    Date.now() < deadline
  ) {
    await new Promise((r) => setTimeout(r, 5));
  }
  while (socatPid === undefined && child.exitCode === null && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 5));
  }
  if (socatPid === undefined) {
    await cleanup();
    throw new Error(`socat did not start in ${dir}: ${stderr.trim() || "no pid"}`);
  }
  return { a, b, pid: socatPid, close: cleanup };
}
