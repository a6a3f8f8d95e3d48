/**
 * The crash rig: the BUILT daemon with its real GPIO adapters on the fake sysfs (this process
 * runs inside scripts/fake-sysfs/run.sh in a private mount namespace), the sysfs-level plant, a
 * simulated meter on a pty that belongs to this process (its count goes on across daemon
 * restarts), the emulated radio and a notify socket. Used by the crash campaign and the bench.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { SessionView, StatusView } from "../src/control/index.js";
import { requestControl } from "../src/control/index.js";
import { Issuer } from "../src/sdk/issuer.js";
import { writeKeyFile } from "../src/sdk/keyfile.js";
import { SimMeter } from "../src/sim/meter/sim-meter.js";
import { openPtyPair, type PtyPair } from "../src/sim/pty.js";
import { type Radio, type RadioBridge, startRadio } from "../src/sim/radio.js";

export const DIST = resolve(fileURLToPath(import.meta.url), "..", "..");
export const REPO = resolve(DIST, "..");
export const PILED = join(DIST, "src", "daemon", "piled.js");
const PLANT = join(DIST, "src", "sim", "sysfs-plant.js");
const CHIP = "pinctrl-bcm2711";
const BASE = 512;
export const LINES = { contactor: 17, lock: 27, contactorFeedback: 22, lockFeedback: 23, plugPresent: 24 };

/**
 * The node options systemd/piled.service starts the daemon with (its `Environment="NODE_OPTIONS=…"`
 * line): the benches and the soak start the daemon with the same, so their figures are the
 * installed daemon's.
 */
export function unitNodeOptions(unit = readFileSync(join(REPO, "systemd", "piled.service"), "utf8")): string {
  return /^Environment="NODE_OPTIONS=([^"]*)"\s*$/m.exec(unit)?.[1] ?? "";
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface RecvSocket {
  bind(path: string): void;
  close(): void;
  on(ev: "error", l: (e: Error) => void): void;
}
const unixDgram = createRequire(import.meta.url)("unix-dgram") as {
  createSocket(type: "unix_dgram", l: (b: Buffer) => void): RecvSocket;
};

/** Builds the fsync-shadow shim (prove/fsync_shadow.c) with gcc; undefined without gcc. */
export function buildShadowShim(into: string): string | undefined {
  const src = join(REPO, "prove", "fsync_shadow.c");
  const out = join(into, "fsync_shadow.so");
  const r = spawnSync("gcc", ["-shared", "-fPIC", "-O2", "-o", out, src, "-ldl", "-lpthread"], {
    encoding: "utf8",
  });
  return r.status === 0 ? out : undefined;
}

export interface Daemon {
  child: ChildProcess;
  pid: number;
  spawnedAt: number;
  /** performance.now() of READY=1, once seen. */
  readyAt?: number;
  /** The contactor's and lock's sysfs values read the moment READY=1 arrived. */
  atReady?: { contactor: string; lock: string };
  exited: Promise<void>;
}

export class Rig {
  readonly work = mkdtempSync(join(tmpdir(), "piled-prove-"));
  readonly state = join(this.work, "state");
  readonly shadow = join(this.work, "shadow");
  readonly config = join(this.work, "piled.json");
  readonly socket = join(this.work, "control.sock");
  readonly pileId = "PROVE-01";
  readonly meter = new SimMeter({ model: "sdm120", energyWh: 5000 });
  issuer!: Issuer;
  radio!: Radio;
  carrierBridge!: RadioBridge;
  private pileBridge!: RadioBridge;
  private pty!: PtyPair;
  private ptyDir: string | undefined;
  private plant: ChildProcess | undefined;
  private notify: RecvSocket | undefined;
  private powerTimer: NodeJS.Timeout | undefined;
  daemon: Daemon | undefined;
  shim: string | undefined;
  logFd = -1;

  async start(opts: { ble?: boolean; shim?: boolean } = {}): Promise<void> {
    const key = crypto.getRandomValues(new Uint8Array(32));
    mkdirSync(join(this.work, "keys"), { mode: 0o700 });
    mkdirSync(this.shadow);
    const w = writeKeyFile(join(this.work, "keys", "key-9.json"), 9, key);
    if (!w.ok) throw w.error;
    this.issuer = new Issuer({ keys: [{ keyId: 9, key }] });
    if (opts.shim) this.shim = buildShadowShim(this.work);
    this.ptyDir = mkdtempSync(join(tmpdir(), "piled-prove-pty-"));
    this.pty = await openPtyPair({ dir: this.ptyDir });
    await this.meter.attach(this.pty.a, { baudRate: 9600 });
    const ble = opts.ble !== false;
    if (ble) {
      this.radio = await startRadio();
      this.pileBridge = await this.radio.bridge();
      this.carrierBridge = await this.radio.bridge();
    }
    const line = (n: number) => ({ chip: CHIP, line: n });
    writeFileSync(
      this.config,
      JSON.stringify({
        pileId: this.pileId,
        keyDir: join(this.work, "keys"),
        stateDir: this.state,
        gpio: {
          driver: "sysfs",
          contactor: line(LINES.contactor),
          lock: line(LINES.lock),
          contactorFeedback: { ...line(LINES.contactorFeedback), debounceMs: 5 },
          lockFeedback: { ...line(LINES.lockFeedback), debounceMs: 5 },
          plugPresent: line(LINES.plugPresent),
        },
        meter: { driver: "modbus", port: this.pty.b, model: "sdm120", pollIntervalMs: 300, baud: 9600 },
        ble: ble
          ? { enabled: true, controller: { kind: "uart", path: this.pileBridge.path } }
          : { enabled: false },
        controlSocket: { path: this.socket, mode: "0600" },
        logLevel: "info",
      }),
    );
    this.logFd = openSync(join(this.work, "piled.log"), "a");
    this.plant = spawn(process.execPath, [PLANT, "--config", this.config], {
      stdio: ["pipe", "pipe", "inherit"],
    });
    await new Promise<void>((ok, fail) => {
      this.plant!.stdout!.once("data", () => ok());
      this.plant!.once("exit", (c) => fail(new Error(`plant exited ${c}`)));
    });
    this.notify = unixDgram.createSocket("unix_dgram", (b) => this.onNote(b.toString()));
    this.notify.on("error", () => {});
    this.notify.bind(join(this.work, "notify.sock"));
    // The meter measures what the contactor lets through.
    this.powerTimer = setInterval(() => this.meter.setPower(this.value("contactor") === "1" ? 7000 : 0), 20);
  }

  private onNote(note: string): void {
    const d = this.daemon;
    if (!d || d.readyAt !== undefined || !note.split("\n").includes("READY=1")) return;
    d.readyAt = performance.now();
    d.atReady = { contactor: this.value("contactor"), lock: this.value("lock") };
  }

  value(name: keyof typeof LINES): string {
    try {
      return readFileSync(`/sys/class/gpio/gpio${BASE + LINES[name]}/value`, "utf8").trim();
    } catch {
      return "unexported";
    }
  }

  plantCmd(cmd: string): void {
    this.plant?.stdin?.write(`${cmd}\n`);
  }

  spawnDaemon(env: Record<string, string> = {}): Daemon {
    const pre: Record<string, string> = this.shim
      ? { LD_PRELOAD: this.shim, SHADOW_ROOT: this.state, SHADOW_DIR: this.shadow }
      : {};
    const child = spawn(process.execPath, [PILED, "--config", this.config], {
      stdio: ["ignore", this.logFd, this.logFd],
      env: {
        ...process.env,
        ...pre,
        ...env,
        NOTIFY_SOCKET: join(this.work, "notify.sock"),
        WATCHDOG_USEC: "5000000",
      },
    });
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    this.daemon = { child, pid: child.pid ?? -1, spawnedAt: performance.now(), exited };
    return this.daemon;
  }

  async killDaemon(): Promise<void> {
    const d = this.daemon;
    if (!d) return;
    if (d.child.exitCode === null && d.child.signalCode === null) {
      try {
        process.kill(d.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    await d.exited;
    this.daemon = undefined;
  }

  /** ExecStopPost: `piled --safe-outputs`. */
  safeOutputs(): { exit: number | null; report: string } {
    const r = spawnSync(process.execPath, [PILED, "--safe-outputs", "--config", this.config], {
      encoding: "utf8",
    });
    return { exit: r.status, report: r.stdout.trim() };
  }

  async control(cmd: string, args: string[] = [], ms = 5000): Promise<unknown> {
    const r = await requestControl(this.socket, cmd, args, ms);
    if (!r.ok) throw new Error(`${cmd}: ${r.error.code} ${r.error.message}`);
    if (!r.value.ok) throw new Error(`${cmd}: ${r.value.error.code} ${r.value.error.message}`);
    return r.value.result;
  }

  async status(): Promise<StatusView | undefined> {
    try {
      return (await this.control("status", [], 2000)) as StatusView;
    } catch {
      return undefined;
    }
  }

  async sessions(): Promise<SessionView[]> {
    return (await this.control("sessions", ["1000"], 10_000)) as SessionView[];
  }

  /** Waits for READY=1 and then for the pile to answer AVAILABLE (with BLE up when enabled). */
  async waitUp(ble: boolean, ms = 30_000): Promise<StatusView> {
    const until = Date.now() + ms;
    for (;;) {
      const d = this.daemon;
      if (!d || d.child.exitCode !== null || d.child.signalCode !== null)
        throw new Error(`piled exited during boot (see ${join(this.work, "piled.log")})`);
      if (d.readyAt !== undefined) {
        const s = await this.status();
        if (s && (!ble || s.ble === "up") && (s.state === "AVAILABLE" || s.state === "FAULTED")) return s;
      }
      if (Date.now() > until) throw new Error("piled did not come up in time");
      await sleep(20);
    }
  }

  async close(keep = false): Promise<void> {
    await this.killDaemon();
    if (this.powerTimer) clearInterval(this.powerTimer);
    this.notify?.close();
    if (this.plant?.pid && this.plant.exitCode === null) {
      const gone = new Promise((r) => this.plant!.once("exit", r));
      process.kill(this.plant.pid, "SIGTERM");
      await gone;
    }
    await this.meter.detach?.();
    await this.pty?.close();
    if (this.ptyDir) rmSync(this.ptyDir, { recursive: true, force: true });
    await this.carrierBridge?.close().catch(() => undefined);
    await this.pileBridge?.close().catch(() => undefined);
    await this.radio?.close().catch(() => undefined);
    if (this.logFd >= 0) closeSync(this.logFd);
    if (!keep) rmSync(this.work, { recursive: true, force: true });
  }
}
