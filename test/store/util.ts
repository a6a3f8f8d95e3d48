/** Shared bits of the store tests: temp dirs, ids, the repo root. */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import type { TestContext } from "node:test";
import { fileURLToPath } from "node:url";

/** The compiled fixtures folder (dist/test/store/fixtures). */
export const fixturesDir = join(dirname(fileURLToPath(import.meta.url)), "fixtures");
/** The repository root: three levels up from dist/test/store/. */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

/** A fresh temp dir removed when the test ends. */
export function tempDir(t: TestContext): string {
  const d = mkdtempSync(join(tmpdir(), "piled-store-"));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

export const id = (): Uint8Array => new Uint8Array(randomBytes(16));
export const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
export const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "hex"));

/** A small seeded PRNG (mulberry32) so a failing run can be replayed from its printed seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Child {
  /** Complete stdout lines received so far. */
  readonly lines: string[];
  /** Resolves when the child has exited (and its stdout has ended). */
  readonly done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
  /** SIGKILL by PID, if still running. */
  kill(): void;
}

/**
 * Spawns a compiled fixture with this node; `onLine` sees every complete stdout line as it
 * arrives (kill from there to stop the child "the instant" it printed something).
 */
export function spawnFixture(
  t: TestContext,
  name: string,
  args: string[],
  onLine?: (line: string, c: Child) => void,
): Child {
  const proc = spawn(process.execPath, [join(fixturesDir, name), ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let exited = false;
  const lines: string[] = [];
  let partial = "";
  let stderr = "";
  const child: Child = {
    lines,
    done: new Promise((resolveDone) => {
      proc.on("close", (code, signal) => {
        exited = true;
        resolveDone({ code, signal, stderr });
      });
    }),
    kill: () => {
      if (!exited && proc.pid !== undefined && proc.exitCode === null && proc.signalCode === null) {
        process.kill(proc.pid, "SIGKILL");
      }
    },
  };
  t.after(() => child.kill());
  proc.stderr.setEncoding("utf8").on("data", (d: string) => {
    stderr += d;
  });
  proc.stdout.setEncoding("utf8").on("data", (d: string) => {
    partial += d;
    let nl = partial.indexOf("\n");
    while (nl >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      lines.push(line);
      onLine?.(line, child);
      nl = partial.indexOf("\n");
    }
  });
  return child;
}
