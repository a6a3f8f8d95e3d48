/**
 * A fixture script run as its own process (by PID), printing one JSON event per line
 * (`{"ev": …}`), with `stats` on stdin answered by an `ev: "stats"` event. Shared by the BLE
 * fixtures (the echo peripheral, the pile) of the tests and the bench.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createInterface } from "node:readline";

export type FixtureEvent = { ev: string } & Record<string, unknown>;

export class FixtureProcess {
  readonly events: FixtureEvent[] = [];
  readonly child: ChildProcess;
  stderr = "";
  #waiters: Array<{ pred: (e: FixtureEvent) => boolean; resolve: (e: FixtureEvent) => void }> = [];

  constructor(
    readonly script: string,
    args: string[],
    env: NodeJS.ProcessEnv = process.env,
  ) {
    if (!existsSync(script)) throw new Error(`${script} missing: build first (npx tsc -p tsconfig.json)`);
    this.child = spawn(process.execPath, [script, ...args], { stdio: ["pipe", "pipe", "pipe"], env });
    this.child.on("error", () => {});
    this.child.stdin?.on("error", () => {});
    this.child.stderr?.setEncoding("utf8").on("data", (d: string) => {
      this.stderr = (this.stderr + d).slice(-4000);
    });
    createInterface({ input: this.child.stdout! }).on("line", (line) => {
      let e: FixtureEvent;
      try {
        e = JSON.parse(line) as FixtureEvent;
      } catch {
        return;
      }
      if (typeof e?.ev !== "string") return;
      this.events.push(e);
      for (const w of [...this.#waiters]) {
        if (w.pred(e)) {
          this.#waiters.splice(this.#waiters.indexOf(w), 1);
          w.resolve(e);
        }
      }
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** The first event at or after index `since` matching `pred`; rejects after `ms` (a hang guard). */
  waitFor(pred: (e: FixtureEvent) => boolean, ms = 10_000, since = 0): Promise<FixtureEvent> {
    const seen = this.events.slice(since).find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const w = {
        pred,
        resolve: (e: FixtureEvent) => {
          clearTimeout(t);
          resolve(e);
        },
      };
      const t = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        reject(new Error(`fixture event not seen within ${ms} ms; stderr: ${this.stderr}`));
      }, ms);
      this.#waiters.push(w);
    });
  }

  async stats(): Promise<FixtureEvent> {
    const since = this.events.length;
    this.child.stdin?.write("stats\n");
    return this.waitFor((e) => e.ev === "stats", 5000, since);
  }

  /** Kills by PID with `signal` (SIGKILL after 3 s) and waits for the exit. */
  async kill(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    if (this.exited || this.child.pid === undefined) return;
    const gone = new Promise<void>((r) => this.child.once("exit", () => r()));
    try {
      process.kill(this.child.pid, signal);
    } catch {
      return;
    }
    const t = setTimeout(() => {
      if (!this.exited && this.child.pid !== undefined) {
        try {
          process.kill(this.child.pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    }, 3000);
    await gone;
    clearTimeout(t);
  }
}
