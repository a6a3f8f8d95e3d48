/**
 * Builds firmware-bridge (make, under a lock: test files run two at a time) and drives the pilot
 * harness over its stdin/stdout control channel. Times in the replies are simulated µs.
 */
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export const FW_DIR = fileURLToPath(new URL("../../../firmware-bridge/", import.meta.url));
export const BUILD = `${FW_DIR}build/`;

/** What is missing to build firmware-bridge, as Debian package names; empty when all is there. */
export function missingToolchain(): string[] {
  const need: [string, string][] = [
    ["make", "/usr/bin/make"],
    ["gcc-avr", "/usr/bin/avr-gcc"],
    ["binutils-avr", "/usr/bin/avr-size"],
    ["avr-libc", "/usr/lib/avr/include/avr/io.h"],
    ["libsimavr-dev", "/usr/include/simavr/sim_avr.h"],
    ["libelf-dev", "/usr/include/libelf.h"],
    ["gcc", "/usr/bin/cc"],
    ["util-linux", "/usr/bin/flock"],
  ];
  return need.filter(([, f]) => !existsSync(f)).map(([p]) => p);
}

export interface BuildResult {
  status: number | null;
  output: string;
}

export function buildFirmware(): BuildResult {
  const missing = missingToolchain();
  if (missing.length > 0) {
    throw new Error(
      `firmware-bridge needs Debian packages: ${missing.join(" ")} (scripts/ensure-system-deps.sh)`,
    );
  }
  const r = spawnSync("flock", [`${FW_DIR}.build.lock`, "make", "-C", FW_DIR], { encoding: "utf8" });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

export interface HarnessLine {
  text: string;
  kind: string;
  t: number;
  fields: Record<string, string>;
}

function parse(text: string): HarnessLine {
  const words = text.split(" ");
  const fields: Record<string, string> = {};
  for (const w of words) {
    const i = w.indexOf("=");
    if (i > 0) fields[w.slice(0, i)] = w.slice(i + 1);
  }
  const kind = words[0] === "ok" ? `ok ${words[1]}` : (words[0] as string);
  return { text, kind, t: Number(fields.t ?? Number.NaN), fields };
}

export class Harness {
  readonly lines: HarnessLine[] = [];
  private waiters: { pred: (l: HarnessLine) => boolean; resolve: (l: HarnessLine) => void }[] = [];
  private constructor(
    private readonly proc: ChildProcessWithoutNullStreams,
    readonly pty: string,
  ) {}

  static async start(extraArgs: string[] = []): Promise<Harness> {
    const proc = spawn(`${BUILD}pilot-harness`, [`${BUILD}pilot.elf`, ...extraArgs]);
    proc.stderr.on("data", (b: Buffer) => process.stderr.write(`harness: ${b}`));
    const rl = createInterface({ input: proc.stdout });
    let h: Harness | undefined;
    const ready = new Promise<string>((resolve, reject) => {
      proc.once("exit", (c) => reject(new Error(`harness exited (${c}) before it was ready`)));
      rl.on("line", (text) => {
        const l = parse(text);
        if (!h && l.kind === "ready") resolve(l.fields.pty as string);
        h?.take(l);
      });
    });
    h = new Harness(proc, await ready);
    return h;
  }

  private readonly listeners = new Set<(l: HarnessLine) => void>();

  /** Sees every line from now on. */
  onLine(listener: (l: HarnessLine) => void): void {
    this.listeners.add(listener);
  }

  private take(l: HarnessLine): void {
    this.lines.push(l);
    for (const f of this.listeners) f(l);
    const hit = this.waiters.filter((x) => x.pred(l));
    this.waiters = this.waiters.filter((x) => !hit.includes(x));
    for (const w of hit) w.resolve(l);
  }

  /** The next line (from now on) matching pred. */
  next(pred: (l: HarnessLine) => boolean, timeoutMs = 5000): Promise<HarnessLine> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`harness: nothing matched in ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.waiters.push({
        pred,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
    });
  }

  /** Sends a command and waits for its `ok <word>` reply. */
  async cmd(line: string, timeoutMs = 5000): Promise<HarnessLine> {
    const word = line.split(" ")[0] as string;
    const reply = this.next((l) => l.kind === `ok ${word}` || l.kind === "err", timeoutMs);
    this.proc.stdin.write(`${line}\n`);
    const r = await reply;
    if (r.kind === "err") throw new Error(`harness: ${r.text}`);
    return r;
  }

  /** Waits `ms` of simulated time. */
  wait(ms: number): Promise<HarnessLine> {
    return this.cmd(`wait ${ms}`, ms * 20 + 5000);
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null) return;
    const done = new Promise((r) => this.proc.once("exit", r));
    this.proc.kill("SIGTERM");
    await done;
  }
}
