/**
 * A whole pile as its own process, for end-to-end tests: a temp folder with a key file and a
 * config on the simulated plant (`gpio.driver: "sim"`, `meter.driver: "sim"`), a controller on
 * the emulated radio, the BUILT daemon (dist/src/daemon/piled.js) spawned on it, and its control
 * socket. Everything started here is torn down by PID in stop(): the daemon, the bridges made
 * through bridge(), the radio when this harness started it, and the temp folder.
 *
 *   const pile = await startPile({ pileId: "E2E-1" });
 *   const link = await new NobleCentral({ controller: { kind: "uart", path: (await pile.bridge()).path } })…
 *   await pile.waitStatus((s) => s.state === "AVAILABLE");
 *   await pile.stop();
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { SessionView, StatusView } from "../../src/control/index.js";
import { requestControl } from "../../src/control/index.js";
import { simPileConfig } from "../../src/daemon/sim-config.js";
import { Issuer } from "../../src/sdk/issuer.js";
import { writeKeyFile } from "../../src/sdk/keyfile.js";
import { checkRadioTools, type Radio, type RadioBridge, startRadio } from "../../src/sim/radio.js";

/** dist/test/helpers/pile-proc.js → dist/src/daemon/piled.js */
export const PILED = fileURLToPath(new URL("../../src/daemon/piled.js", import.meta.url));

export interface PileProcOptions {
  pileId?: string;
  keyId?: number;
  /** 32 bytes; default random. */
  key?: Uint8Array;
  /** A radio to join (not closed by stop()); default a radio of its own. */
  radio?: Radio;
  /** Merged over the generated config (shallow, per top-level field). */
  config?: Record<string, unknown>;
  /** How long the daemon may take to answer `status` with BLE up. Default 30 s. */
  upTimeoutMs?: number;
  /** The status that counts as up (BLE up always). Default AVAILABLE. */
  upState?: StatusView["state"];
  /**
   * A file the daemon's stdout (its log) is written to instead of a pipe, e.g. /dev/full for a
   * log destination that fails every write; output() then holds stderr only.
   */
  stdoutTo?: string;
}

export class PileProcError extends Error {
  override readonly name = "PileProcError";
  constructor(
    readonly code: "NOT_UP" | "CONTROL" | "WAIT_TIMEOUT",
    message: string,
  ) {
    super(message);
  }
}

export interface PileProc {
  readonly dir: string;
  readonly socket: string;
  readonly pileId: string;
  readonly key: Uint8Array;
  readonly keyId: number;
  /** The platform's issuer holding this pile's key. */
  readonly issuer: Issuer;
  readonly radio: Radio;
  /** The daemon's PID. */
  readonly pid: number;
  /** A fresh controller on the pile's radio, closed by stop(). */
  bridge(): Promise<RadioBridge>;
  /** One control-socket command; throws PileProcError CONTROL on a refusal or no answer. */
  control(cmd: string, args?: string[]): Promise<unknown>;
  status(): Promise<StatusView>;
  sessions(limit?: number): Promise<SessionView[]>;
  /** Polls `status` until `pred` holds; throws WAIT_TIMEOUT with the last status otherwise. */
  waitStatus(pred: (s: StatusView) => boolean, timeoutMs?: number): Promise<StatusView>;
  /** The daemon's stdout+stderr so far (pino lines), for failure messages. */
  output(): string;

  /** Sends a signal to the daemon and resolves with how it exited. */
  kill(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Tears everything down; safe to call twice. */
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function exitedOf(c: ChildProcess): boolean {
  return c.exitCode !== null || c.signalCode !== null;
}

async function killChild(
  c: ChildProcess,
  signal: NodeJS.Signals,
  graceMs = 5000,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const done = (): { code: number | null; signal: NodeJS.Signals | null } => ({
    code: c.exitCode,
    signal: c.signalCode as NodeJS.Signals | null,
  });
  if (exitedOf(c) || c.pid === undefined) return done();
  const gone = new Promise<void>((r) => c.once("exit", () => r()));
  try {
    process.kill(c.pid, signal);
  } catch {
    return done();
  }
  const t = setTimeout(() => {
    if (!exitedOf(c) && c.pid !== undefined) {
      try {
        process.kill(c.pid, "SIGKILL");
      } catch {
        // gone
      }
    }
  }, graceMs);
  await gone;
  clearTimeout(t);
  return done();
}

export async function startPile(opts: PileProcOptions = {}): Promise<PileProc> {
  checkRadioTools(); // fails naming the Debian packages that are missing
  const pileId = opts.pileId ?? `E2E-${randomBytes(3).toString("hex").toUpperCase()}`;
  const keyId = opts.keyId ?? 1;
  const key = opts.key ?? new Uint8Array(randomBytes(32));
  const teardown: Array<() => Promise<void> | void> = [];
  const runTeardown = async () => {
    for (const t of teardown.splice(0).reverse()) await Promise.resolve(t()).catch(() => undefined);
  };

  const dir = mkdtempSync(join(tmpdir(), "piled-e2e-"));
  teardown.push(() => rmSync(dir, { recursive: true, force: true }));
  try {
    const ownRadio = opts.radio === undefined;
    const radio = opts.radio ?? (await startRadio());
    if (ownRadio) teardown.push(() => radio.close());
    const bridges: RadioBridge[] = [];
    teardown.push(async () => {
      await Promise.all(bridges.splice(0).map((b) => b.close()));
    });
    const bridge = async () => {
      const b = await radio.bridge();
      bridges.push(b);
      return b;
    };

    mkdirSync(join(dir, "keys"), { mode: 0o700 });
    const wrote = writeKeyFile(join(dir, "keys", `key-${keyId}.json`), keyId, key);
    if (!wrote.ok) throw wrote.error;
    const issuer = new Issuer({ keys: [{ keyId, key }] });

    const pileBridge = await bridge();
    const socket = join(dir, "control.sock");
    const config = { ...simPileConfig({ pileId, dir, blePath: pileBridge.path }), ...opts.config };
    const configPath = join(dir, "piled.json");
    writeFileSync(configPath, `${JSON.stringify(config, null, 2)}\n`);

    let out = "";
    const stdoutFd = opts.stdoutTo === undefined ? undefined : openSync(opts.stdoutTo, "w");
    const child = spawn(process.execPath, [PILED, "--config", configPath], {
      stdio: ["ignore", stdoutFd ?? "pipe", "pipe"],
    });
    if (stdoutFd !== undefined) closeSync(stdoutFd);
    child.on("error", () => {});
    const keep = (b: Buffer) => {
      out = (out + b.toString()).slice(-200_000);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    // The daemon goes before its bridge (teardown runs in reverse).
    teardown.push(async () => {
      await killChild(child, "SIGTERM");
    });
    if (child.pid === undefined) throw new PileProcError("NOT_UP", "piled did not spawn");
    const pid = child.pid;

    const tail = () => out.split("\n").slice(-30).join("\n");
    const control = async (cmd: string, args: string[] = []): Promise<unknown> => {
      const r = await requestControl(socket, cmd, args, 10_000);
      if (!r.ok) throw new PileProcError("CONTROL", `${cmd}: ${r.error.code} ${r.error.message}`);
      if (!r.value.ok)
        throw new PileProcError("CONTROL", `${cmd}: ${r.value.error.code} ${r.value.error.message}`);
      return r.value.result;
    };
    const status = async () => (await control("status")) as StatusView;
    const waitStatus = async (pred: (s: StatusView) => boolean, timeoutMs = 15_000) => {
      const end = Date.now() + timeoutMs;
      let last: StatusView | undefined;
      for (;;) {
        last = await status();
        if (pred(last)) return last;
        if (Date.now() > end)
          throw new PileProcError(
            "WAIT_TIMEOUT",
            `status never matched within ${timeoutMs} ms; last: ${JSON.stringify(last)}`,
          );
        await sleep(100);
      }
    };

    const upBy = Date.now() + (opts.upTimeoutMs ?? 30_000);
    for (;;) {
      const r = await requestControl(socket, "status", [], 2000);
      if (r.ok && r.value.ok) {
        const s = r.value.result as StatusView;
        if (s.ble === "up" && s.state === (opts.upState ?? "AVAILABLE")) break;
      }
      if (exitedOf(child) || Date.now() > upBy)
        throw new PileProcError(
          "NOT_UP",
          `piled did not come up (exit ${child.exitCode ?? child.signalCode}):\n${tail()}`,
        );
      await sleep(100);
    }

    let stopped: Promise<void> | undefined;
    return {
      dir,
      socket,
      pileId,
      key,
      keyId,
      issuer,
      radio,
      pid,
      bridge,
      control,
      status,
      sessions: async (limit = 10) => (await control("sessions", [String(limit)])) as SessionView[],
      waitStatus,
      output: () => out,
      kill: (signal: NodeJS.Signals = "SIGTERM") => killChild(child, signal),
      stop: () => {
        stopped ??= runTeardown();
        return stopped;
      },
    };
  } catch (e) {
    await runTeardown();
    throw e;
  }
}
