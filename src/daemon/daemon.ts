/**
 * The composition root: configuration in, a running pile out. Order matters and is the safety
 * order of DESIGN.md: store and keys are checked before any line is opened; lines open at their
 * safe level; the core boots on the feedbacks read before anything moves; only then the radio,
 * the console and the control socket; READY once outputs are safe and the radio is up.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type { PileControl } from "../control/index.js";
import { type Clock, systemClock, type TimedClock } from "../hw/ports.js";
import { openStoreWriter, type StoreWriter } from "../store/index.js";
import { type Assembled, assemble } from "./assemble.js";
import { type Config, databasePath, socketMode } from "./config.js";
import type { ConsoleService } from "./console/service.js";
import { pileControl } from "./control-impl.js";
import { type ControlSocketServer, startControlSocket } from "./control-socket.js";
import { createLogger, exitFlushed, flushLogSync, type Logger, logErrorReporter } from "./log.js";
import { collectNow, memoryCounters } from "./memory.js";
import type { OcppGlue } from "./ocpp-glue.js";
import { type Opened, openState } from "./open-state.js";
import { pilotView } from "./pilot-glue.js";
import { linkCountersOf } from "./runtime/link-counters.js";
import { PileRuntime } from "./runtime.js";
import { createNotifier, type Notifier, startWatchdog } from "./sd-notify.js";
import { simControl } from "./sim-control.js";
import { type SiteFronts, startSite } from "./site-glue.js";

/** How long READY waits for the radio before it is sent anyway (STATUS says BLE is down). */
const RADIO_READY_TIMEOUT_MS = 10_000;

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

export async function runDaemon(config: Config): Promise<number> {
  const logErrors = logErrorReporter();
  const log = createLogger({ level: config.logLevel, onWriteError: logErrors.onWriteError });
  try {
    return await runWith(config, log, logErrors.count);
  } finally {
    flushLogSync(log);
  }
}

/** The running daemon: what it holds, and the front ends and watchdog started so far. */
interface Live extends Opened {
  config: Config;
  log: Logger;
  dlog: Logger;
  clock: Clock;
  notifier: Notifier;
  writer: StoreWriter;
  parts: Assembled;
  runtime: PileRuntime;
  console_?: ConsoleService | undefined;
  control?: ControlSocketServer | undefined;
  ocpp?: OcppGlue | undefined;
  /** Dashboard, metrics, MQTT (site-glue.ts). */
  site?: SiteFronts | undefined;
  stopWatchdog: () => void;
  stopping: boolean;
}

/** The pile runtime over the opened state and the assembled hardware. */
function newRuntime(
  config: Config,
  log: Logger,
  clock: TimedClock,
  { store, keys }: Opened,
  parts: Assembled,
  notifier: Notifier,
  writer: StoreWriter,
): PileRuntime {
  return new PileRuntime({
    config,
    log,
    clock,
    store,
    keys,
    lines: parts.lines,
    vehicle: parts.vehicle ?? parts.lines.vehicle,
    meter: parts.meter,
    ble: parts.ble,
    notifier,
    writer,
    links: linkCountersOf({
      meter: parts.meter,
      ble: parts.ble,
      inputs: [parts.lines.contactorFeedback, parts.lines.lockFeedback, parts.lines.emergencyStop],
    }),
  });
}

async function runWith(config: Config, log: Logger, logWriteErrors: () => number): Promise<number> {
  const dlog = log.child({ component: "daemon" });
  const clock = systemClock;
  const notifier = createNotifier(process.env, (e) => dlog.warn({ err: e.message }, "sd_notify failed"));

  // OCPP on: the store's session changes queue their TransactionEvents (ocpp-hook.ts), on this
  // connection and the write worker's alike. The station's modules (ocpp-rpc, its WebSocket and
  // its schema validator: ~14 MB of RSS) are loaded only then.
  const ocppGlue = config.ocpp.enabled ? await import("./ocpp-glue.js") : undefined;
  const ocppHook = ocppGlue?.sessionHookOptions(config);
  const opened = openState(config, dlog, ocppHook);
  if (typeof opened === "number") return opened;
  const { store } = opened;

  // The writes made while the contactor may be live go to a thread of their own (runtime.ts);
  // it is started before any line is opened, so a failure to start it touches nothing.
  const writer = openStoreWriter(
    databasePath(config),
    ocppGlue && ocppHook ? { module: ocppGlue.OCPP_HOOK_MODULE, options: ocppHook } : undefined,
  );
  const parts = await assemble(config, clock, log).catch((e: unknown) => {
    dlog.fatal({ err: e instanceof Error ? e.message : String(e) }, "cannot open the hardware");
    return undefined;
  });
  if (!parts) {
    await writer.close().catch(() => undefined);
    store.close();
    return 1;
  }

  const runtime = newRuntime(config, log, clock, opened, parts, notifier, writer);
  const l: Live = {
    ...opened,
    config,
    log,
    dlog,
    clock,
    notifier,
    writer,
    parts,
    runtime,
    stopWatchdog: () => {},
    stopping: false,
  };
  const weldLatched = () => store.faults.active().some((f) => f.code === "WELD");

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
    return await serve(l, logWriteErrors);
  } catch (e) {
    await abortStart(l, e, weldLatched);
    process.off("uncaughtException", die);
    process.off("unhandledRejection", die);
    return 70;
  }
}

async function shutdown(l: Live, why: string): Promise<void> {
  if (l.stopping) return;
  l.stopping = true;
  l.dlog.info({ why }, "stopping");
  l.notifier.stopping(`stopping: ${why}`);
  l.stopWatchdog();
  await l.ocpp?.stop().catch((e: unknown) => l.dlog.error({ err: String(e) }, "OCPP stop failed"));
  await l.site?.close().catch(() => undefined);
  await l.runtime.stop().catch((e: unknown) => l.dlog.error({ err: String(e) }, "stop failed"));
  await l.control?.close().catch(() => undefined);
  await l.console_?.close().catch(() => undefined);
  await l.parts.close();
  await l.writer.close();
  l.store.close();
  l.notifier.close();
  l.instance.release();
}

/**
 * A boot step failed with the lines open: outputs to safe, everything let go, and out at once
 * (a daemon that hangs here holds the pile until systemd's start timeout).
 */
async function abortStart(l: Live, e: unknown, weldLatched: () => boolean): Promise<void> {
  const { dlog, log, config } = l;
  dlog.fatal(
    { err: e instanceof Error ? e.message : String(e), code: (e as { code?: string }).code },
    "start-up failed with the hardware open: outputs to safe, exiting",
  );
  flushLogSync(log);
  l.stopping = true;
  l.stopWatchdog();
  await failSafeOutputs(l.parts.lines, weldLatched, config.lockSafeState, dlog);
  const bounded = (p: Promise<unknown>) =>
    Promise.race([p.catch(() => undefined), new Promise((r) => setTimeout(r, 2000).unref())]);
  await bounded(l.ocpp?.stop() ?? Promise.resolve());
  await bounded(l.site?.close() ?? Promise.resolve());
  await bounded(l.runtime.stop());
  await bounded(l.control?.close() ?? Promise.resolve());
  await bounded(l.console_?.close() ?? Promise.resolve());
  await bounded(l.parts.close());
  await bounded(l.writer.close());
  try {
    l.store.close();
  } catch {
    // already closed or unusable
  }
  l.notifier.close();
}

async function serve(l: Live, logWriteErrors: () => number): Promise<number> {
  const { runtime, keys, dlog, config } = l;
  await runtime.start();

  // Signals from here on: a SIGHUP during the rest of the start-up must not end the daemon.
  process.on("SIGHUP", () => {
    const r = keys.load();
    if (r.ok) dlog.info({ keyIds: keys.ids() }, "keys reloaded");
    else dlog.error({ err: r.error.message }, "key reload refused; the keys held stay as they were");
    pile.audit({ actor: "daemon", action: "reload-keys", outcome: r.ok ? "ok" : r.error.code });
  });
  // SIGUSR2: a full GC, and the live heap after it in the status counters (memory.ts). It holds
  // the loop for milliseconds, so never while the contactor may be live.
  process.on("SIGUSR2", () => {
    if (runtime.contactorMayBeLive()) {
      dlog.warn("full GC refused: the contactor may be live");
      return;
    }
    const t0 = performance.now();
    const liveHeapKb = collectNow();
    dlog.info({ liveHeapKb, gcMs: Math.round(performance.now() - t0) }, "full GC on request");
  });
  const stopped = new Promise<number>((resolve) => {
    const onSignal = (sig: string) => {
      void shutdown(l, sig).then(() => resolve(0));
    };
    process.once("SIGTERM", () => onSignal("SIGTERM"));
    process.once("SIGINT", () => onSignal("SIGINT"));
  });

  if (config.ocpp.enabled) l.ocpp = await ocppOrThrow(config, runtime, l.log);
  const pilotSense = l.parts.vehicle;
  const pile = pileControl({
    sim: l.parts.sim ? simControl(l.parts.sim, runtime) : undefined,
    meterStaleMs: config.deadlines.meterStaleMs,
    pilot: () => pilotView(pilotSense),
    ocpp: () => l.ocpp,
    runtime,
    store: l.store,
    keys,
    clock: l.clock,
    extraCounters: () => ({
      ...(l.console_?.counters() ?? {}),
      ...(l.control?.counters() ?? {}),
      ...(l.site?.counters() ?? {}),
      "log.writeErrors": logWriteErrors(),
      ...memoryCounters(),
    }),
  });
  await startControl(l, pile);
  await startTechnicianConsole(l, pile);
  l.site = await startSite({ config, pile, runtime, log: l.log });

  const radio = await runtime.radioReady(RADIO_READY_TIMEOUT_MS);
  if (!l.stopping) {
    l.notifier.ready(radio ? "ready" : "ready; BLE radio down");
    dlog.info({ ble: runtime.bleState, pileId: config.pileId }, "ready");
    l.stopWatchdog = startWatchdog(l.notifier, () => runtime.healthy());
  }

  return await stopped;
}

async function startControl(l: Live, pile: PileControl): Promise<void> {
  const { config, dlog } = l;
  try {
    mkdirSync(dirname(config.controlSocket.path), { recursive: true, mode: 0o750 });
    l.control = await startControlSocket({
      path: config.controlSocket.path,
      mode: socketMode(config),
      ...(config.controlSocket.group ? { group: config.controlSocket.group } : {}),
      pile,
      log: l.log.child({ component: "control" }),
    });
    dlog.info({ path: l.control.path }, "control socket listening");
  } catch (e) {
    dlog.error({ err: e instanceof Error ? e.message : String(e) }, "control socket not available");
  }
}

/** The technician console, its modules loaded only when the configuration turns it on. */
async function startTechnicianConsole(l: Live, pile: PileControl): Promise<void> {
  const { config, dlog } = l;
  if (!(config.console.enabled && l.secretHash)) return;
  const [{ openSerialConsole }, { startConsole }] = await Promise.all([
    import("../hw/console/serial-link.js"),
    import("./console/service.js"),
  ]);
  if (l.stopping) return;
  const link = openSerialConsole({
    path: config.console.port,
    baud: config.console.baud,
    onError: (e) => dlog.warn({ err: e.message }, "console port"),
  });
  l.console_ = startConsole({
    link,
    pile,
    secretHash: l.secretHash,
    lockoutAfter: config.console.lockoutAfter,
    lockoutMs: config.console.lockoutMs,
    idleLogoutMs: config.console.idleLogoutMs,
    pileId: config.pileId,
    clock: l.clock,
    log: l.log.child({ component: "console" }),
  });
  dlog.info({ port: config.console.port }, "technician console on");
}

/**
 * The OCPP station over the started runtime; a station that cannot start fails the start-up. An
 * accepted OCPP Reset stops the daemon as SIGTERM does (systemd's Restart=always starts it again).
 */
async function ocppOrThrow(config: Config, runtime: PileRuntime, log: Logger): Promise<OcppGlue> {
  const { startOcpp } = await import("./ocpp-glue.js");
  const onReset = () => process.kill(process.pid, "SIGTERM");
  const o = startOcpp({ config, runtime, dbPath: databasePath(config), log, onReset });
  if (!o.ok) throw new Error(`OCPP: ${o.error.message}`);
  log.info({ url: config.ocpp.url, identity: config.ocpp.identity }, "OCPP station on");
  return o.value;
}
