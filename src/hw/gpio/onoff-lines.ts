/**
 * DigitalOutput / DigitalInput over onoff 6 (legacy sysfs GPIO). onoff always works under
 * /sys/class/gpio/; `sysfsRoot` and `gpio` exist only so the adapters' own logic can be run
 * against a fake tree and a fake onoff.
 *
 * The export is done here, asynchronously, before onoff sees the line: onoff would otherwise
 * busy-wait (blocking the event loop) for udev to set the files' permissions.
 *
 * A watched input is also re-sampled (resampleMs): an edge the kernel or onoff missed is then
 * seen within one period, and a line whose reads fail is reported through health() (the last
 * level is kept for read(), but whoever listens knows it may be wrong).
 */
import { closeSync, existsSync, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import {
  type DigitalInput,
  type DigitalOutput,
  systemTimers,
  type Timers,
  type Unsubscribe,
} from "../ports.js";
import { DEFAULT_SYSFS_ROOT, type LineSpec, type ResolvedLine, resolveLine } from "./chip.js";
import { Debouncer } from "./debounce.js";
import { errnoOf, GpioError } from "./errors.js";
import { exportLine, lineDir, outputDirectionWord } from "./sysfs.js";

type Bit = 0 | 1;
export type Edge = "none" | "rising" | "falling" | "both";

/** The part of onoff's `Gpio` these adapters use. */
export interface OnoffGpio {
  read(): Promise<Bit>;
  write(value: Bit): Promise<void>;
  watch(callback: (err: Error | null | undefined, value: Bit) => void): void;
  unwatchAll(): void;
  direction(): string;
  activeLow(): boolean;
  unexport(): void;
}

export type GpioFactory = (
  n: number,
  direction: "in" | "high" | "low",
  edge: Edge,
  options: { activeLow: boolean },
) => OnoffGpio;

let onoffFactory: GpioFactory | undefined;

/** Loads onoff (and its native epoll module) on first use only: the simulator never needs it. */
async function defaultFactory(): Promise<GpioFactory> {
  if (!onoffFactory) {
    const { Gpio } = await import("onoff");
    onoffFactory = (n, direction, edge, options) => new Gpio(n, direction, edge, options);
  }
  return onoffFactory;
}

export interface LineOpenOptions {
  /** Legacy sysfs root; onoff itself only works with the default. */
  sysfsRoot?: string;
  /** A stand-in for onoff's Gpio constructor. */
  gpio?: GpioFactory;
  exportTimeoutMs?: number;
  timers?: Timers;
}

async function prepare(
  spec: LineSpec,
  opts: LineOpenOptions,
): Promise<{ line: ResolvedLine; factory: GpioFactory; root: string }> {
  const root = opts.sysfsRoot ?? DEFAULT_SYSFS_ROOT;
  const line = resolveLine(spec, { sysfsRoot: root });
  await exportLine(root, line.number, { timeoutMs: opts.exportTimeoutMs });
  return { line, factory: opts.gpio ?? (await defaultFactory()), root };
}

function construct(factory: GpioFactory, line: ResolvedLine, ...args: Parameters<GpioFactory>): OnoffGpio {
  try {
    return factory(...args);
  } catch (err) {
    const errno = errnoOf(err);
    const what = `GPIO ${line.number} (${line.chip.label}:${line.offset})`;
    if (errno === "EBUSY") throw new GpioError("BUSY", `${what} is busy`, { errno });
    throw new GpioError("IO", `cannot configure ${what}: ${errno ?? String(err)}`, { errno });
  }
}

/** onoff swallows configuration errors on a line that was already exported: read back instead. */
function verifyConfig(gpio: OnoffGpio, line: ResolvedLine, want: "in" | "out"): void {
  let direction: string;
  let activeLow: boolean;
  try {
    direction = gpio.direction();
    activeLow = gpio.activeLow();
  } catch (err) {
    throw new GpioError("IO", `cannot read back GPIO ${line.number}: ${errnoOf(err) ?? String(err)}`, {
      errno: errnoOf(err),
    });
  }
  const dirOk = want === "in" ? direction === "in" : ["out", "high", "low"].includes(direction);
  if (!dirOk || activeLow !== line.activeLow) {
    throw new GpioError(
      "IO",
      `GPIO ${line.number} did not take its configuration (direction ${direction}, active_low ${activeLow})`,
    );
  }
}

function ioError(what: string, err: unknown): GpioError {
  return new GpioError("IO", `${what}: ${errnoOf(err) ?? String(err)}`, { errno: errnoOf(err) });
}

export class OnoffOutput implements DigitalOutput {
  private closed = false;

  constructor(
    readonly name: string,
    readonly line: ResolvedLine,
    private readonly gpio: OnoffGpio,
  ) {}

  async write(active: boolean): Promise<void> {
    if (this.closed) throw new GpioError("IO", `output ${this.name} is closed`);
    try {
      await this.gpio.write(active ? 1 : 0);
    } catch (err) {
      throw ioError(`cannot write output ${this.name}`, err);
    }
  }

  /**
   * Releases the value file but leaves the line exported, so it holds its last level (on the
   * Pi, unexport turns the pin back into an input). onoff has no close without unexport, hence
   * the reach for its file descriptor.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const fd = (this.gpio as unknown as { _valueFd?: unknown })._valueFd;
    if (typeof fd === "number") {
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
    }
  }
}

/**
 * Opens an output already at its `safe` logical level: the direction is written as the raw
 * "high"/"low" word for that level, so the pin never passes through the other one.
 */
export async function openOutput(
  spec: LineSpec,
  opts: LineOpenOptions & {
    name: string;
    safe: boolean;
    /**
     * A line that is already an output keeps the level it has (the lock of a pile restarted with
     * a live plug must not be released before the daemon has read its feedbacks); only a line
     * that is not yet an output starts at `safe`.
     */
    holdIfOutput?: boolean;
  },
): Promise<OnoffOutput> {
  const held = opts.holdIfOutput ? currentRawLevel(opts.sysfsRoot ?? DEFAULT_SYSFS_ROOT, spec) : undefined;
  const { line, factory } = await prepare(spec, opts);
  const word = held !== undefined ? (held ? "high" : "low") : outputDirectionWord(opts.safe, line.activeLow);
  const gpio = construct(factory, line, line.number, word, "none", { activeLow: line.activeLow });
  verifyConfig(gpio, line, "out");
  return new OnoffOutput(opts.name, line, gpio);
}

/** The raw pin level of a line that is already exported as an output; undefined otherwise. */
function currentRawLevel(root: string, spec: LineSpec): boolean | undefined {
  try {
    const n = resolveLine(spec, { sysfsRoot: root }).number;
    const dir = `${root}/gpio${n}`;
    const direction = readFileSync(`${dir}/direction`, "utf8").trim();
    if (direction !== "out" && direction !== "high" && direction !== "low") return undefined;
    const value = readFileSync(`${dir}/value`, "utf8").trim() === "1";
    const activeLow = readFileSync(`${dir}/active_low`, "utf8").trim() === "1";
    return value !== activeLow;
  } catch {
    return undefined;
  }
}

export type InputMode = "watched" | "sampled";

export interface InputOptions extends LineOpenOptions {
  name: string;
  /** A change must hold this long before it is reported (0: report at once). */
  debounceMs?: number;
  /** Edges that wake the watcher; "none" samples. Default "both". */
  edge?: Edge;
  /** Sampling period where the line cannot be watched. Default 10 ms. */
  sampleMs?: number;
  /**
   * Re-sampling period of a watched line (a missed edge or a failed read is otherwise never
   * noticed): the level read is fed like an edge, so only a change is reported. Default 200 ms;
   * 0 turns it off.
   */
  resampleMs?: number;
}

export class OnoffInput implements DigitalInput {
  /** Read errors met while sampling or watching (the last level is kept). */
  readErrors = 0;
  /** false from a failed read until the next read that succeeds. */
  readable = true;
  private closed = false;
  private sampleTimer: unknown;
  private readonly healthListeners = new Set<(readable: boolean, detail: string) => void>();

  private constructor(
    readonly name: string,
    readonly line: ResolvedLine,
    private readonly gpio: OnoffGpio,
    private readonly debouncer: Debouncer,
    private readonly timers: Timers,
    readonly mode: InputMode,
    private readonly sampleMs: number,
    private readonly root: string,
  ) {}

  /** One read of the line, by sampling or an edge: success feeds the level, failure is reported. */
  private observed(value: Bit | undefined, err?: unknown): void {
    if (this.closed) return;
    if (value === undefined) {
      this.readErrors += 1;
      if (!this.readable) return;
      this.readable = false;
      this.report(false, `cannot read input ${this.name}: ${errnoOf(err) ?? String(err)}`);
      return;
    }
    if (!this.readable) {
      this.readable = true;
      this.report(true, `input ${this.name} reads again`);
    }
    this.debouncer.feed(value === 1);
  }

  private report(readable: boolean, detail: string): void {
    for (const l of [...this.healthListeners]) l(readable, detail);
  }

  static async open(spec: LineSpec, opts: InputOptions): Promise<OnoffInput> {
    const { line, factory, root } = await prepare(spec, opts);
    const edge = opts.edge ?? "both";
    const gpio = construct(factory, line, line.number, "in", edge, { activeLow: line.activeLow });
    let initial: Bit;
    try {
      verifyConfig(gpio, line, "in");
      initial = await gpio.read().catch((err: unknown) => {
        throw ioError(`cannot read input ${opts.name}`, err);
      });
    } catch (err) {
      try {
        gpio.unexport();
      } catch {
        // leave it
      }
      throw err;
    }
    const timers = opts.timers ?? systemTimers;
    const debouncer = new Debouncer(initial === 1, opts.debounceMs ?? 0, timers);
    let mode: InputMode = "sampled";
    let input: OnoffInput | undefined;
    if (edge !== "none") {
      try {
        // Needs EPOLLPRI on the value file; a file that is not a real sysfs attribute refuses
        // it (EPERM) and so do chips without interrupts.
        gpio.watch((err, value) => {
          if (!input) {
            if (!err) debouncer.feed(value === 1);
            return;
          }
          if (err) input.observed(undefined, err);
          else input.observed(value);
        });
        mode = "watched";
      } catch {
        try {
          gpio.unwatchAll(); // onoff has already listed the callback; this clears it
        } catch {
          // the epoll removal fails the same way; the list is cleared first
        }
      }
    }
    const period = mode === "sampled" ? (opts.sampleMs ?? 10) : (opts.resampleMs ?? 200);
    input = new OnoffInput(opts.name, line, gpio, debouncer, timers, mode, period, root);
    if (period > 0) input.scheduleSample();
    return input;
  }

  async read(): Promise<boolean> {
    return this.debouncer.level;
  }

  watch(listener: (active: boolean) => void): Unsubscribe {
    return this.debouncer.onChange(listener);
  }

  health(listener: (readable: boolean, detail: string) => void): Unsubscribe {
    this.healthListeners.add(listener);
    if (!this.readable) listener(false, `input ${this.name} cannot be read`);
    return () => {
      this.healthListeners.delete(listener);
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.sampleTimer !== undefined) this.timers.clearTimeout(this.sampleTimer);
    this.debouncer.dispose();
    this.healthListeners.clear();
    try {
      this.gpio.unexport();
    } catch {
      return; // already gone
    }
    // The kernel removes the directory before the write returns; anything slower (a stand-in
    // tree) gets a moment, so that closes in a row reach it one at a time.
    const dir = lineDir(this.root, this.line.number);
    for (let i = 0; i < 250 && existsSync(dir); i++) await sleep(2);
  }

  private scheduleSample(): void {
    if (this.closed) return;
    this.sampleTimer = this.timers.setTimeout(() => {
      this.sampleTimer = undefined;
      this.gpio.read().then(
        (value) => {
          this.observed(value);
          this.scheduleSample();
        },
        (err: unknown) => {
          this.observed(undefined, err);
          this.scheduleSample();
        },
      );
    }, this.sampleMs);
  }
}

export function openInput(spec: LineSpec, opts: InputOptions): Promise<OnoffInput> {
  return OnoffInput.open(spec, opts);
}
