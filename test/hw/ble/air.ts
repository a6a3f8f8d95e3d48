/** Test plumbing for the over-the-air BLE tier: peripheral fixtures as separate processes. */
import { type ChildProcess, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
/** dist/test/hw/ble/fixtures/peripheral.js */
export const PERIPHERAL_FIXTURE = join(here, "fixtures", "peripheral.js");

export type FixtureEvent = { ev: string } & Record<string, unknown>;

export class PeripheralProcess {
  readonly events: FixtureEvent[] = [];
  #waiters: Array<{ pred: (e: FixtureEvent) => boolean; resolve: (e: FixtureEvent) => void }> = [];
  readonly child: ChildProcess;
  stderr = "";

  constructor(uart: string, pileId: string) {
    this.child = spawn(process.execPath, [PERIPHERAL_FIXTURE, "--uart", uart, "--pile", pileId], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    this.child.stderr?.setEncoding("utf8").on("data", (d: string) => {
      this.stderr = (this.stderr + d).slice(-4000);
    });
    this.child.stdin?.on("error", () => {});
    const rl = createInterface({ input: this.child.stdout! });
    rl.on("line", (line) => {
      let e: FixtureEvent;
      try {
        e = JSON.parse(line) as FixtureEvent;
      } catch {
        return;
      }
      this.events.push(e);
      for (const w of [...this.#waiters]) {
        if (w.pred(e)) {
          this.#waiters.splice(this.#waiters.indexOf(w), 1);
          w.resolve(e);
        }
      }
    });
  }

  /** The first event (past or future) matching `pred`; rejects after `ms` (a hang guard). */
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

  async up(): Promise<void> {
    await this.waitFor((e) => e.ev === "radio" && e.state === "up");
  }

  async stats(): Promise<FixtureEvent> {
    const since = this.events.length;
    this.child.stdin?.write("stats\n");
    return this.waitFor((e) => e.ev === "stats", 5000, since);
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** Kills by PID with `signal` and waits for the exit. */
  async kill(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    if (this.exited || this.child.pid === undefined) return;
    const gone = new Promise<void>((r) => this.child.once("exit", () => r()));
    process.kill(this.child.pid, signal);
    const t = setTimeout(() => {
      if (!this.exited && this.child.pid !== undefined) process.kill(this.child.pid, "SIGKILL");
    }, 3000);
    await gone;
    clearTimeout(t);
  }
}
