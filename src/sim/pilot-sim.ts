/**
 * The simulated pilot MCU: the real firmware (firmware-bridge/build/pilot.elf) run by the
 * libsimavr harness (firmware-bridge/build/pilot-harness), its UART on a pty of the harness's
 * own. The harness plays the vehicle; its permit pin is wired into the simulated plant, in series
 * with the board's contactor line. A simple vehicle model can drive it on its own: once plugged
 * it answers the PWM with C within a second, and after `fullAfterMs` of charging goes back to B
 * (it is full); it answers the PWM off with B, as IEC 61851 asks.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const BUILD = fileURLToPath(new URL("../../../firmware-bridge/build/", import.meta.url));
export const HARNESS_PATH = `${BUILD}pilot-harness`;
export const FIRMWARE_PATH = `${BUILD}pilot.elf`;

export type SimVehicleState = "A" | "B" | "C" | "D" | "E" | "F";

export interface SimPilotState {
  vehicle: SimVehicleState;
  diode: boolean;
  permit: boolean;
  auto: boolean;
  /** The PWM as last measured on the pin: duty % (null with the PWM off). */
  dutyPercent: number | null;
}

export interface SimPilotOptions {
  /** The vehicle model answers the PWM on its own. */
  auto?: boolean;
  /** How long the model charges before it is full. */
  fullAfterMs?: number;
  onPermit?: (on: boolean) => void;
  onExit?: (code: number | null) => void;
}

export class SimPilot {
  #vehicle: SimVehicleState = "A";
  #diode = true;
  #permit = false;
  #duty: number | null = null;
  #auto: boolean;
  #cSince: number | undefined;
  #pwmSince: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopping = false;

  private constructor(
    private readonly proc: ChildProcessWithoutNullStreams,
    readonly pty: string,
    private readonly o: SimPilotOptions,
  ) {
    this.#auto = o.auto ?? false;
  }

  /** Starts the harness, halted; call `go()` once the board's port is open. */
  static async start(o: SimPilotOptions = {}): Promise<SimPilot> {
    for (const f of [HARNESS_PATH, FIRMWARE_PATH])
      if (!existsSync(f)) throw new Error(`${f} missing: build it with make -C firmware-bridge`);
    const proc = spawn(HARNESS_PATH, [FIRMWARE_PATH]);
    proc.stderr.resume();
    const rl = createInterface({ input: proc.stdout });
    let sim: SimPilot | undefined;
    const pty = await new Promise<string>((resolve, reject) => {
      proc.once("exit", (c) => reject(new Error(`pilot harness exited (${c}) before it was ready`)));
      rl.on("line", (text) => {
        const f = fields(text);
        if (!sim && text.startsWith("ready ")) resolve(f.pty ?? "");
        else if (sim) sim.#line(text, f);
      });
    });
    sim = new SimPilot(proc, pty, o);
    proc.on("exit", (c) => {
      if (!sim?.stopping) o.onExit?.(c);
    });
    return sim;
  }

  get stopping(): boolean {
    return this.#stopping;
  }

  /** Releases the MCU and starts the vehicle model's clock. */
  go(): void {
    this.#send("go");
    this.#timer = setInterval(() => this.#tick(), 100);
    this.#timer.unref();
  }

  state(): SimPilotState {
    return {
      vehicle: this.#vehicle,
      diode: this.#diode,
      permit: this.#permit,
      auto: this.#auto,
      dutyPercent: this.#duty,
    };
  }

  setVehicle(v: SimVehicleState): void {
    this.#vehicle = v;
    this.#cSince = v === "C" || v === "D" ? Date.now() : undefined;
    this.#send(`vehicle ${v}`);
  }

  setDiode(present: boolean): void {
    this.#diode = present;
    this.#send(`diode ${present ? 1 : 0}`);
  }

  setAuto(on: boolean): void {
    this.#auto = on;
  }

  /** A hung MCU (the watchdog resets it) or an external reset. */
  freeze(): void {
    this.#send("freeze");
  }
  reset(): void {
    this.#send("reset");
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.#timer) clearInterval(this.#timer);
    if (this.proc.exitCode !== null) return;
    const done = new Promise((r) => this.proc.once("exit", r));
    this.proc.kill("SIGTERM");
    await done;
  }

  #send(line: string): void {
    if (this.proc.exitCode === null) this.proc.stdin.write(`${line}\n`);
  }

  #line(text: string, f: Record<string, string>): void {
    if (text.startsWith("permit ")) {
      this.#permit = f.v === "1";
      this.o.onPermit?.(this.#permit);
    } else if (text.startsWith("ok pwm ")) {
      const on = f.on === "1";
      this.#duty = on ? Number(f.duty) : null;
      if (on) this.#pwmSince ??= Date.now();
      else this.#pwmSince = undefined;
    }
  }

  /** The vehicle model: asks for energy once the PWM offers it, stops when full or offered none. */
  #tick(): void {
    this.#send("pwm");
    if (!this.#auto) return;
    const now = Date.now();
    const v = this.#vehicle;
    if (
      v === "B" &&
      this.#pwmSince !== undefined &&
      now - this.#pwmSince >= 1000 &&
      this.#cSince === undefined
    )
      this.setVehicle("C");
    else if ((v === "C" || v === "D") && this.#duty === null) this.#back();
    else if ((v === "C" || v === "D") && now - (this.#cSince ?? now) >= (this.o.fullAfterMs ?? 20_000))
      this.#back();
  }

  /** Back to B; the model stays at B (full) until unplugged. */
  #back(): void {
    this.#send("vehicle B");
    this.#vehicle = "B";
    this.#cSince = Number.POSITIVE_INFINITY;
  }
}

function fields(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const w of text.split(" ")) {
    const i = w.indexOf("=");
    if (i > 0) out[w.slice(0, i)] = w.slice(i + 1);
  }
  return out;
}
