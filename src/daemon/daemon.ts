/**
 * The composition root: configuration in, a running pile out. Order matters and is the safety
 * order of DESIGN.md: store and keys are checked before any line is opened; lines open at their
 * safe level; the core boots on the feedbacks read before anything moves; only then the radio,
 * the console and the control socket; READY once outputs are safe and the radio is up.
 */
import { accessSync, constants, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { openSerialConsole } from "../hw/console/serial-link.js";
import { systemClock } from "../hw/ports.js";
import { err, ok, type Result } from "../protocol/bytes.js";
import { readSmallFile } from "../sdk/files.js";
import { openStore, openStoreWriter, type Store } from "../store/index.js";
import { assemble } from "./assemble.js";
import { type Config, databasePath, socketMode } from "./config.js";
import { hashProblem } from "./console/secret.js";
import { type ConsoleService, startConsole } from "./console/service.js";
import { pileControl } from "./control-impl.js";
import { type ControlSocketServer, startControlSocket } from "./control-socket.js";
import { takeInstanceLock } from "./instance-lock.js";
import { KeyDirectory } from "./keys.js";
import { createLogger, exitFlushed, flushLogSync, type Logger, logErrorReporter } from "./log.js";
import { PileRuntime } from "./runtime.js";
import { createNotifier, startWatchdog } from "./sd-notify.js";
import { simControl } from "./sim-control.js";

/** How long READY waits for the radio before it is sent anyway (STATUS says BLE is down). */
const RADIO_READY_TIMEOUT_MS = 10_000;

/** Makes the state directory and checks that this user may write in it, with a clear message. */
function prepareStateDir(dir: string): Result<void, string> {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o750 });
  } catch (e) {
    return err(`state directory ${dir} cannot be made (${(e as NodeJS.ErrnoException).code ?? e})`);
  }
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (e) {
    return err(
      `state directory ${dir} is not writable by this user (${(e as NodeJS.ErrnoException).code ?? e}): the store and its lock live there`,
    );
  }
  return ok(undefined);
}

/**
 * Where the lock goes when the daemon gives up with the hardware open: to its configured rest
 * only once the contactor reads open and no weld is latched; a contactor that reads closed, a
 * feedback that cannot be read or a latch that cannot be checked keeps a live plug locked.
 */
export function lockAfterFailure(o: {
  contactorClosed: boolean | undefined;
  weldLatched: boolean | undefined;
  lockSafe: "released" | "engaged";
}): "released" | "engaged" {
  return o.contactorClosed === false && o.weldLatched === false ? o.lockSafe : "engaged";
}

/**
 * Outputs to safe when the daemon ends on an error with the lines open: contactor open first,
 * then the lock as lockAfterFailure says. Best effort, each step on its own; never throws.
 */
export async function failSafeOutputs(
  lines: {
    contactor: { write(active: boolean): Promise<void> };
    lock: { write(active: boolean): Promise<void> };
    contactorFeedback: { read(): Promise<boolean> };
  },
  weldLatched: () => boolean,
  lockSafe: "released" | "engaged",
  log: Logger,
): Promise<"released" | "engaged"> {
  await lines.contactor
    .write(false)
    .catch((e: unknown) => log.error({ err: String(e) }, "contactor open failed"));
  const contactorClosed = await lines.contactorFeedback.read().catch(() => undefined);
  let latched: boolean | undefined;
  try {
    latched = weldLatched();
  } catch {
    latched = undefined;
  }
  const lock = lockAfterFailure({ contactorClosed, weldLatched: latched, lockSafe });
  await lines.lock
    .write(lock === "engaged")
    .catch((e: unknown) => log.error({ err: String(e) }, "lock write failed"));
  log.warn({ contactorClosed, weldLatched: latched, lock }, "outputs driven safe");
  return lock;
}

/**
 * The console's secret hash (undefined when the console is off), read and checked: a hash nobody
 * can match would start a console nobody can log into. Also run by `piled --check-config`.
 */
export function consoleSecretHash(config: Config): Result<string | undefined, string> {
  if (!config.console.enabled) return { ok: true, value: undefined };
  let where = "console.secretHash";
  let secretHash: string;
  if (config.console.secretHash !== undefined) secretHash = config.console.secretHash;
  else {
    where = `console secret hash file ${config.console.secretHashFile}`;
    const read = readSmallFile(config.console.secretHashFile!, {
      what: "console secret hash file",
      owner: true,
    });
    if (!read.ok) return { ok: false, error: read.error.message };
    secretHash = read.value.replace(/^\uFEFF/, "").trim();
  }
  const problem = hashProblem(secretHash);
  return problem ? { ok: false, error: `${where} refused: ${problem}` } : { ok: true, value: secretHash };
}

export async function runDaemon(config: Config): Promise<number> {
  const logErrors = logErrorReporter();
  const log = createLogger({ level: config.logLevel, onWriteError: logErrors.onWriteError });
  try {
    return await runWith(config, log, logErrors.count);
  } finally {
    flushLogSync(log);
  }
}

async function runWith(config: Config, log: Logger, logWriteErrors: () => number): Promise<number> {
  const dlog = log.child({ component: "daemon" });
  const clock = systemClock;
  const notifier = createNotifier(process.env, (e) => dlog.warn({ err: e.message }, "sd_notify failed"));

  const keys = new KeyDirectory(config.keyDir);
  const loaded = keys.load();
  if (!loaded.ok) {
    process.stderr.write(`piled: keys refused, nothing was touched: ${loaded.error.message}\n`);
    return 2;
  }
  for (const w of keys.warnings) dlog.warn({ keyDir: config.keyDir }, w);
  if (keys.ids().length === 0)
    dlog.warn({ keyDir: config.keyDir }, "no key in the key directory: no code can be accepted");
  else dlog.info({ keyIds: keys.ids(), keyDir: config.keyDir }, "keys loaded");

  const secret = consoleSecretHash(config);
  if (!secret.ok) {
    process.stderr.write(`piled: ${secret.error}; nothing was touched\n`);
    return 2;
  }
  const secretHash = secret.value;

  // One daemon per state directory (instance-lock.ts): the lock is taken before any line is
  // opened and held until the process ends; a second daemon is refused here, touching nothing.
  const stateReady = prepareStateDir(config.stateDir);
  if (!stateReady.ok) {
    process.stderr.write(`piled: ${stateReady.error}; nothing was touched\n`);
    return 1;
  }
  const instance = takeInstanceLock(config.stateDir);
  if (!instance.ok) {
    process.stderr.write(`piled: ${instance.error.message}; nothing was touched\n`);
    return instance.error.code === "HELD" ? 2 : 1;
  }

  let store: Store;
  try {
    store = openStore(databasePath(config), { auditMaxRows: config.audit.maxRows });
  } catch (e) {
    dlog.fatal(
      { err: e instanceof Error ? e.message : String(e), code: (e as { code?: string }).code },
      "cannot open the store",
    );
    process.stderr.write(
      `piled: store ${databasePath(config)}: ${e instanceof Error ? e.message : String(e)}\n`,
    );
    return 1;
  }

  // The writes made while the contactor may be live go to a thread of their own (runtime.ts);
  // it is started before any line is opened, so a failure to start it touches nothing.
  const writer = openStoreWriter(databasePath(config));
  const parts = await assemble(config, clock, log).catch((e: unknown) => {
    dlog.fatal({ err: e instanceof Error ? e.message : String(e) }, "cannot open the hardware");
    return undefined;
  });
  if (!parts) {
    await writer.close().catch(() => undefined);
    store.close();
    return 1;
  }
  const sims = parts.sim;

  const runtime = new PileRuntime({
    config,
    log,
    clock,
    store,
    keys,
    lines: parts.lines,
    vehicle: parts.lines.vehicle,
    meter: parts.meter,
    ble: parts.ble,
    notifier,
    writer,
  });

  let console_: ConsoleService | undefined;
  let control: ControlSocketServer | undefined;
  let stopWatchdog = (): void => {};
  let stopping = false;
  const weldLatched = () => store.faults.active().some((f) => f.code === "WELD");

  const shutdown = async (why: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    dlog.info({ why }, "stopping");
    notifier.stopping(`stopping: ${why}`);
    stopWatchdog();
    await runtime.stop().catch((e: unknown) => dlog.error({ err: String(e) }, "stop failed"));
    await control?.close().catch(() => undefined);
    await console_?.close().catch(() => undefined);
    await parts.close();
    await writer.close();
    store.close();
    notifier.close();
    instance.value.release();
  };

  // A crash still opens the contactor first (best effort; ExecStopPost repeats it through sysfs).
  // The fatal line is written out before the exit: an exit drops what the log still buffers.
  const exit = (code: number): never => exitFlushed(log, code);
  const die = (e: unknown): void => {
    dlog.fatal(
      { err: e instanceof Error ? (e.stack ?? e.message) : String(e) },
      "internal error: outputs to safe, exiting",
    );
    flushLogSync(log);
    setTimeout(() => exit(70), 500).unref();
    void failSafeOutputs(parts.lines, weldLatched, config.lockSafeState, dlog).finally(() => exit(70));
  };
  process.on("uncaughtException", die);
  process.on("unhandledRejection", die);

  try {
    return await serve();
  } catch (e) {
    // A boot step failed with the lines open: outputs to safe, everything let go, and out at
    // once (a daemon that hangs here holds the pile until systemd's start timeout).
    dlog.fatal(
      { err: e instanceof Error ? e.message : String(e), code: (e as { code?: string }).code },
      "start-up failed with the hardware open: outputs to safe, exiting",
    );
    flushLogSync(log);
    stopping = true;
    stopWatchdog();
    await failSafeOutputs(parts.lines, weldLatched, config.lockSafeState, dlog);
    const bounded = (p: Promise<unknown>) =>
      Promise.race([p.catch(() => undefined), new Promise((r) => setTimeout(r, 2000).unref())]);
    await bounded(runtime.stop());
    await bounded(control?.close() ?? Promise.resolve());
    await bounded(console_?.close() ?? Promise.resolve());
    await bounded(parts.close());
    await bounded(writer.close());
    try {
      store.close();
    } catch {
      // already closed or unusable
    }
    notifier.close();
    process.off("uncaughtException", die);
    process.off("unhandledRejection", die);
    return 70;
  }

  async function serve(): Promise<number> {
    await runtime.start();

    // Signals from here on: a SIGHUP during the rest of the start-up must not end the daemon.
    process.on("SIGHUP", () => {
      const r = keys.load();
      if (r.ok) dlog.info({ keyIds: keys.ids() }, "keys reloaded");
      else dlog.error({ err: r.error.message }, "key reload refused; the keys held stay as they were");
      pile.audit({ actor: "daemon", action: "reload-keys", outcome: r.ok ? "ok" : r.error.code });
    });
    const stopped = new Promise<number>((resolve) => {
      const onSignal = (sig: string) => {
        void shutdown(sig).then(() => resolve(0));
      };
      process.once("SIGTERM", () => onSignal("SIGTERM"));
      process.once("SIGINT", () => onSignal("SIGINT"));
    });

    const front: { console?: ConsoleService; control?: ControlSocketServer } = {};
    const sim = sims ? simControl(sims, runtime) : undefined;
    const pile = pileControl({
      sim,
      meterStaleMs: config.deadlines.meterStaleMs,
      runtime,
      store,
      keys,
      clock,
      extraCounters: () => ({
        ...(front.console?.counters() ?? {}),
        ...(front.control?.counters() ?? {}),
        "log.writeErrors": logWriteErrors(),
      }),
    });
    try {
      mkdirSync(dirname(config.controlSocket.path), { recursive: true, mode: 0o750 });
      control = await startControlSocket({
        path: config.controlSocket.path,
        mode: socketMode(config),
        ...(config.controlSocket.group ? { group: config.controlSocket.group } : {}),
        pile,
        log: log.child({ component: "control" }),
      });
      front.control = control;
      dlog.info({ path: control.path }, "control socket listening");
    } catch (e) {
      dlog.error({ err: e instanceof Error ? e.message : String(e) }, "control socket not available");
    }

    if (config.console.enabled && secretHash) {
      const link = openSerialConsole({
        path: config.console.port,
        baud: config.console.baud,
        onError: (e) => dlog.warn({ err: e.message }, "console port"),
      });
      console_ = startConsole({
        link,
        pile,
        secretHash,
        lockoutAfter: config.console.lockoutAfter,
        lockoutMs: config.console.lockoutMs,
        idleLogoutMs: config.console.idleLogoutMs,
        pileId: config.pileId,
        clock,
        log: log.child({ component: "console" }),
      });
      front.console = console_;
      dlog.info({ port: config.console.port }, "technician console on");
    }

    const radio = await runtime.radioReady(RADIO_READY_TIMEOUT_MS);
    if (!stopping) {
      notifier.ready(radio ? "ready" : "ready; BLE radio down");
      dlog.info({ ble: runtime.bleState, pileId: config.pileId }, "ready");
      stopWatchdog = startWatchdog(notifier, () => runtime.healthy());
    }

    return await stopped;
  }
}
