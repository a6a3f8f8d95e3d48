/**
 * The composition root: configuration in, a running pile out. Order matters and is the safety
 * order of DESIGN.md: store and keys are checked before any line is opened; lines open at their
 * safe level; the core boots on the feedbacks read before anything moves; only then the radio,
 * the console and the control socket; READY once outputs are safe and the radio is up.
 */
import { mkdirSync, readFileSync } from "node:fs";
import { createConnection } from "node:net";
import { dirname } from "node:path";
import { systemClock } from "../hw/ports.js";
import { openStore, type Store } from "../store/index.js";
import { assemble } from "./assemble.js";
import { type Config, databasePath, socketMode } from "./config.js";
import { openSerialConsole } from "./console/serial-link.js";
import { type ConsoleService, startConsole } from "./console/service.js";
import { pileControl } from "./control-impl.js";
import { type ControlSocketServer, startControlSocket } from "./control-socket.js";
import { KeyDirectory } from "./keys.js";
import { createLogger } from "./log.js";
import { PileRuntime } from "./runtime.js";
import { createNotifier, startWatchdog } from "./sd-notify.js";
import { simControl } from "./sim-control.js";

/** How long READY waits for the radio before it is sent anyway (STATUS says BLE is down). */
const RADIO_READY_TIMEOUT_MS = 10_000;

function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection(path);
    const done = (v: boolean) => {
      sock.destroy();
      resolve(v);
    };
    sock.once("connect", () => done(true));
    sock.once("error", () => done(false));
    setTimeout(() => done(false), 1000).unref();
  });
}

export async function runDaemon(config: Config): Promise<number> {
  const log = createLogger({ level: config.logLevel });
  const dlog = log.child({ component: "daemon" });
  const clock = systemClock;
  const notifier = createNotifier(process.env, (e) => dlog.warn({ err: e.message }, "sd_notify failed"));

  const keys = new KeyDirectory(config.keyDir);
  const loaded = keys.load();
  if (!loaded.ok) {
    process.stderr.write(`piled: keys refused, nothing was touched: ${loaded.error.message}\n`);
    return 2;
  }
  if (keys.ids().length === 0)
    dlog.warn({ keyDir: config.keyDir }, "no key in the key directory: no code can be accepted");
  else dlog.info({ keyIds: keys.ids(), keyDir: config.keyDir }, "keys loaded");

  let secretHash: string | undefined;
  if (config.console.enabled) {
    try {
      secretHash = config.console.secretHash ?? readFileSync(config.console.secretHashFile!, "utf8").trim();
    } catch (e) {
      process.stderr.write(`piled: console secret hash file: ${(e as NodeJS.ErrnoException).code ?? e}\n`);
      return 2;
    }
  }

  // A second daemon on the same pile would fight the first over the relays: refuse before any
  // line is opened if something already answers on our control socket.
  if (await socketAnswers(config.controlSocket.path)) {
    process.stderr.write(
      `piled: another piled answers on ${config.controlSocket.path}; nothing was touched\n`,
    );
    return 1;
  }

  let store: Store;
  try {
    mkdirSync(config.stateDir, { recursive: true, mode: 0o750 });
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

  const parts = await assemble(config, clock, log).catch((e: unknown) => {
    dlog.fatal({ err: e instanceof Error ? e.message : String(e) }, "cannot open the hardware");
    return undefined;
  });
  if (!parts) {
    store.close();
    return 1;
  }

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
  });

  let console_: ConsoleService | undefined;
  let control: ControlSocketServer | undefined;
  let stopWatchdog = (): void => {};
  let stopping = false;

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
    store.close();
    notifier.close();
  };

  // A crash still opens the contactor first (best effort; ExecStopPost repeats it through sysfs).
  const die = (e: unknown): void => {
    dlog.fatal(
      { err: e instanceof Error ? (e.stack ?? e.message) : String(e) },
      "internal error: outputs to safe, exiting",
    );
    setTimeout(() => process.exit(70), 500).unref();
    parts.lines.contactor.write(false).finally(() => process.exit(70));
  };
  process.on("uncaughtException", die);
  process.on("unhandledRejection", die);

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
  const sim = parts.sim ? simControl(parts.sim, runtime) : undefined;
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
