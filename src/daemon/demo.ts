/**
 * `npm start`: the whole simulated pile on one desk. The daemon runs as its own process on the
 * simulated plant (GPIO relays with feedback, a Modbus RTU meter on a pty pair) with the real
 * pilot firmware in the simulator harness as its vehicle sense (the MCU's permit in series with
 * the contactor); the emulated BLE radio carries a vehicle device and a phone through plug-in →
 * unlock → charge → stop (the first by STOP, the second by the vehicle going back to B when it is
 * full); then the daemon stays up to be explored with pilectl and the technician console. Ctrl-C
 * tears everything down.
 *
 *   node dist/src/daemon/demo.js [--once] [--charge-s N] [--plug-gpio]
 *     --once       tear down after the drive instead of waiting for Ctrl-C
 *     --charge-s   how long the first carrier charges before its STOP (default 6)
 *     --plug-gpio  sense the vehicle by the plug-present line instead of the pilot MCU
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { requestControl } from "../control/index.js";
import { pileStateName, type Status } from "../protocol/index.js";
import { writeFileDurable } from "../sdk/files.js";
import { Issuer } from "../sdk/issuer.js";
import { writeKeyFile } from "../sdk/keyfile.js";
import { SimCarrier } from "../sim/carriers.js";
import { openPtyPair, type PtyPair } from "../sim/pty.js";
import { type Radio, startRadio } from "../sim/radio.js";
import { hashSecret } from "./console/secret.js";
import { unlockCommands } from "./demo-commands.js";
import { simPileConfig } from "./sim-config.js";

/** A file the demo's daemon reads, fsynced with its directory (writeFileDurable). */
function durable(path: string, body: string, mode: number): void {
  const w = writeFileDurable(path, body, { mode });
  if (!w.ok) throw new Error(`cannot write ${path}: ${w.error.errno ?? w.error.code}`);
}

const here = dirname(fileURLToPath(import.meta.url));
const PILED = resolve(here, "piled.js");
const PILECTL = resolve(here, "..", "cli", "pilectl.js");
const PILE_ID = "SZ-0042";
const KEY_ID = 1;
const TECH_SECRET = "desk-technician";
const SETPRIV = "/usr/bin/setpriv";
/** Exit codes by the shell's convention, 128 + the signal's number. */
const SIGNAL_EXITS: [NodeJS.Signals, number][] = [
  ["SIGINT", 130],
  ["SIGTERM", 143],
  ["SIGHUP", 129],
];

const t0 = Date.now();
const say = (who: string, text: string): void => {
  const s = ((Date.now() - t0) / 1000).toFixed(1).padStart(6);
  process.stdout.write(`[${s}s] ${who.padEnd(8)} ${text}\n`);
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function statusLine(s: Status): string {
  return `STATUS ${pileStateName(s.state) ?? s.state} energy ${s.energyWh} Wh, power ${s.powerW} W, ${s.elapsedS} s`;
}

/** Polls `status` until no session runs (or the time is up). */
async function untilSessionEnds(socket: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const r = await requestControl(socket, "status", [], 2000);
    if (r.ok && r.value.ok && (r.value.result as { session: unknown }).session === null) return;
    await sleep(500);
  }
}

interface Options {
  chargeMs: number;
  pilot: boolean;
  once: boolean;
}

/** The command line; an exit code when it is wrong. */
function parseOptions(): Options | number {
  const { values } = parseArgs({
    options: { once: { type: "boolean" }, "charge-s": { type: "string" }, "plug-gpio": { type: "boolean" } },
    strict: true,
  });
  const chargeS = Number(values["charge-s"] ?? 6);
  if (!Number.isFinite(chargeS) || chargeS < 1 || chargeS > 3600) {
    process.stderr.write("demo: --charge-s takes a number of seconds, 1..3600\n");
    return 2;
  }
  return { chargeMs: chargeS * 1000, pilot: values["plug-gpio"] !== true, once: values.once === true };
}

/** What is to be undone at the end, and the signal that asked for it (if one did). */
interface Teardown {
  cleanup: (() => Promise<void> | void)[];
  teardown: () => Promise<void>;
  interrupted: () => number | undefined;
}

function makeTeardown(): Teardown {
  const cleanup: (() => Promise<void> | void)[] = [];
  // One teardown, however many paths ask for it: the exit waits for the folders to be gone.
  let torn: Promise<void> | undefined;
  const teardown = (): Promise<void> =>
    (torn ??= (async () => {
      for (const c of cleanup.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
    })());
  // Ctrl-C, a kill and a closed terminal all stop everything (the daemon's own SIGHUP means
  // "reload keys"; it runs in its own process group, so the terminal's signals reach only us).
  let interrupted: number | undefined;
  for (const [sig, code] of SIGNAL_EXITS) {
    process.on(sig, () => {
      if (interrupted !== undefined) return;
      interrupted = code;
      say("demo", `${sig}: tearing down`);
      void teardown().then(() => process.exit(code));
    });
  }
  return { cleanup, teardown, interrupted: () => interrupted };
}

/** The working folder and the pile virtual key the platform and the pile share. */
function setUpWork(td: Teardown): { work: string; issuer: Issuer } {
  const work = mkdtempSync(join(tmpdir(), "piled-demo-"));
  td.cleanup.push(() => rmSync(work, { recursive: true, force: true }));
  say("demo", `working folder ${work}`);

  // The platform and the pile share a pile virtual key (preset in the pile's key directory).
  const key = crypto.getRandomValues(new Uint8Array(32));
  mkdirSync(join(work, "keys"), { mode: 0o700 });
  const wrote = writeKeyFile(join(work, "keys", `key-${KEY_ID}.json`), KEY_ID, key);
  if (!wrote.ok) throw wrote.error;
  return { work, issuer: new Issuer({ keys: [{ keyId: KEY_ID, key }] }) };
}

type Bridge = Awaited<ReturnType<Radio["bridge"]>>;

interface Ble {
  radio?: Radio;
  pileBridge?: Bridge;
  vehicleBridge?: Bridge;
  phoneBridge?: Bridge;
  cliBridge?: Bridge;
}

/** BLE: the emulated radio when it can be had, with a bridge for each party. */
async function startBle(td: Teardown): Promise<Ble> {
  let radio: Radio | undefined;
  let bleNote: string;
  try {
    radio = await startRadio();
    td.cleanup.push(() => radio?.close());
    bleNote = "emulated radio (BlueZ btvirt, software LE controllers over H4 UART ptys)";
  } catch (e) {
    bleNote = `DISABLED — the emulated radio is not available here: ${e instanceof Error ? e.message : String(e)}`;
  }
  say("demo", `BLE path: ${bleNote}`);
  const pileBridge = radio ? await radio.bridge() : undefined;
  const vehicleBridge = radio ? await radio.bridge() : undefined;
  const phoneBridge = radio ? await radio.bridge() : undefined;
  // A spare controller for one more unlock from the command line once the drive is done.
  const cliBridge = radio ? await radio.bridge() : undefined;
  return { radio, pileBridge, vehicleBridge, phoneBridge, cliBridge };
}

/** The technician console on a pty pair: the daemon holds one end, the technician the other. */
async function openConsole(td: Teardown, work: string): Promise<{ pair: PtyPair; secretHashFile: string }> {
  const pair: PtyPair = await openPtyPair();
  td.cleanup.push(() => pair.close());
  const secretHashFile = join(work, "console-secret.hash");
  durable(secretHashFile, `${await hashSecret(TECH_SECRET)}\n`, 0o600);
  return { pair, secretHashFile };
}

/** The daemon's configuration file; returns its path. */
function writeConfig(
  work: string,
  blePath: string | undefined,
  pilot: boolean,
  con: { pair: PtyPair; secretHashFile: string },
): string {
  const config = {
    ...simPileConfig({ pileId: PILE_ID, dir: work, blePath, pilot }),
    console: { enabled: true, port: con.pair.a, secretHashFile: con.secretHashFile },
  };
  const configPath = join(work, "piled.json");
  durable(configPath, `${JSON.stringify(config, null, 2)}\n`, 0o644);
  return configPath;
}

/** Starts piled on the config, its log to `logPath` and its state changes to the terminal. */
function spawnDaemon(td: Teardown, configPath: string, logPath: string): ChildProcess {
  const logFile = createWriteStream(logPath);
  // The daemon dies with the demo even when the demo is killed outright (SIGKILL): the kernel
  // sends it SIGTERM when its parent goes (setpriv --pdeathsig execs it, the pid stays).
  const argv = [process.execPath, PILED, "--config", configPath];
  const [cmd, ...args] = existsSync(SETPRIV) ? [SETPRIV, "--pdeathsig", "SIGTERM", "--", ...argv] : argv;
  const d = spawn(cmd as string, args, {
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  td.cleanup.push(async () => {
    if (d.exitCode === null && d.signalCode === null && d.pid !== undefined) {
      process.kill(d.pid, "SIGTERM");
      await new Promise((r) => d.once("exit", r));
    }
    logFile.end();
  });
  d.stdout?.pipe(logFile);
  d.stderr?.on("data", (b: Buffer) => process.stderr.write(b));
  d.stdout?.on("data", (b: Buffer) => {
    for (const line of b.toString().split("\n")) {
      if (!line.startsWith("{")) continue;
      try {
        const j = JSON.parse(line) as { msg?: string; state?: string; fault?: string; stopReason?: string };
        if (j.msg === "pile state") say("piled", `state → ${j.state}`);
        else if (j.msg === "fault latched") say("piled", `FAULT ${j.fault}`);
        else if (j.msg === "ready") say("piled", "READY");
      } catch {
        // not a log line of ours
      }
    }
  });
  say("demo", `started piled (pid ${d.pid}), log in ${logPath}`);
  return d;
}

/** Waits up to 30 s for the control socket to answer; false when piled did not come up. */
async function daemonUp(socket: string, d: ChildProcess): Promise<boolean> {
  const up = Date.now() + 30_000;
  for (;;) {
    const r = await requestControl(socket, "status", [], 2000);
    if (r.ok && r.value.ok) return true;
    if (d.exitCode !== null || Date.now() > up) return false;
    await sleep(200);
  }
}

/** What one session of the drive needs. */
interface Drive {
  socket: string;
  issuer: Issuer;
  pilot: boolean;
  chargeMs: number;
  vehicle: SimCarrier;
  phone: SimCarrier;
}

/** One session: plug-in, a code to the carrier the platform picks, unlock, charge, stop, plug-out. */
async function driveSession(dr: Drive, deviceAwake: boolean): Promise<void> {
  const { socket, pilot, vehicle, phone } = dr;
  const control = (cmd: string, args: string[]) => requestControl(socket, cmd, args, 5000);
  if (pilot) {
    await control("sim", ["plug-in"]);
    say("vehicle", "plugged in: pilot state B (the simulated vehicle answers the PWM on its own)");
    await sleep(500);
  }
  vehicle.inAcquisitionState = deviceAwake;
  say("platform", `vehicle device ${deviceAwake ? "is" : "is NOT"} in its code-acquisition state`);
  const issued = dr.issuer.issueFor({
    deviceId: "LSVAU2180N2183294",
    pileId: PILE_ID,
    validForS: 3600,
    vehicle: { inAcquisitionState: vehicle.inAcquisitionState },
  });
  if (!issued.ok) throw issued.error;
  const carrier = issued.value.carrier === "vehicle" ? vehicle : phone;
  say("platform", `code issued for pile ${PILE_ID}, sent with V to the ${carrier.name}`);
  carrier.receive(issued.value);
  const onStatus = (s: Status) => say(carrier.name, statusLine(s));
  const outcome = await carrier.unlock(onStatus);
  if (outcome.kind !== "accepted") {
    say(carrier.name, `unlock failed: ${JSON.stringify(outcome)}`);
    return;
  }
  say(
    carrier.name,
    `ACCEPTED, session ${Buffer.from(outcome.sessionId).toString("hex").slice(0, 8)}… charging`,
  );
  if (pilot && !deviceAwake) {
    say("vehicle", "charging until full: it goes back to B on its own");
    await untilSessionEnds(socket, 120_000);
    say("vehicle", "full: pilot B, the pile opened the contactor and turned the PWM off");
  } else {
    await sleep(dr.chargeMs);
    const stopped = await carrier.stop(onStatus);
    say(
      carrier.name,
      stopped.kind === "stopped" ? "STOPPED: contactor confirmed open" : JSON.stringify(stopped),
    );
  }
  await carrier.close();
  await sleep(2500); // the lock releases after the contactor is confirmed open
  if (pilot) {
    await control("sim", ["plug-out"]);
    say("vehicle", "unplugged: pilot state A");
    await sleep(500);
  }
}

/** The two sessions (vehicle by STOP, phone until full) and the pile's record of them. */
async function driveAll(
  td: Teardown,
  d: Omit<Drive, "vehicle" | "phone">,
  ble: Ble,
): Promise<number | undefined> {
  if (!(ble.radio && ble.vehicleBridge && ble.phoneBridge)) {
    say("demo", "no radio: skipping the carriers; the daemon runs without BLE");
    return undefined;
  }
  const vehicle = new SimCarrier("vehicle", "vehicle", { kind: "uart", path: ble.vehicleBridge.path });
  const phone = new SimCarrier("phone", "mobile", { kind: "uart", path: ble.phoneBridge.path });
  td.cleanup.push(
    () => vehicle.close(),
    () => phone.close(),
  );
  const dr: Drive = { ...d, vehicle, phone };
  await driveSession(dr, true);
  if (td.interrupted() !== undefined) return td.interrupted();
  await driveSession(dr, false);
  const sessions = await requestControl(d.socket, "sessions", ["5"], 5000);
  if (sessions.ok && sessions.value.ok) {
    for (const s of sessions.value.result as { carrier: string; energyWh: number; reason: string | null }[])
      say("piled", `session by ${s.carrier}: ${s.energyWh.toFixed(1)} Wh, ${s.reason}`);
  }
  return undefined;
}

/** How to explore the pile that keeps running. */
function exploreText(
  work: string,
  socket: string,
  consolePty: string,
  logPath: string,
  cli?: Bridge,
): string {
  return `
The simulated pile keeps running. Explore it:
  node ${PILECTL} status --socket ${socket}
  node ${PILECTL} sessions --socket ${socket}
  node ${PILECTL} sim plug-out --socket ${socket}      (fault switches: weld, meter-silent, estop-press, clear …)
  node ${PILECTL} sim vehicle-c --socket ${socket}     (pilot: plug-in, vehicle-a … vehicle-f, diode-break, diode-fix, vehicle-auto, mcu-freeze)
  technician console:  picocom -q ${consolePty}     (secret: ${TECH_SECRET}; exit picocom with Ctrl-A Ctrl-X)
  daemon log:          ${logPath}
${cli ? unlockCommands(PILE_ID, join(work, "keys", `key-${KEY_ID}.json`), join(work, "code.json"), cli.path) : "  (no radio: no carrier unlock from the command line)\n"}Ctrl-C stops everything.
`;
}

async function main(): Promise<number> {
  const opts = parseOptions();
  if (typeof opts === "number") return opts;
  const { chargeMs, pilot } = opts;
  const td = makeTeardown();
  const { work, issuer } = setUpWork(td);
  const ble = await startBle(td);
  const con = await openConsole(td, work);
  const socket = join(work, "control.sock");
  const configPath = writeConfig(work, ble.pileBridge?.path, pilot, con);
  const logPath = join(work, "piled.log");
  const d = spawnDaemon(td, configPath, logPath);
  if (!(await daemonUp(socket, d))) {
    say("demo", `piled did not come up (exit ${d.exitCode}); see ${logPath}`);
    await td.teardown();
    return 1;
  }
  say("demo", "piled is up: outputs safe, meter polled over Modbus RTU");

  const stoppedBy = await driveAll(td, { socket, issuer, pilot, chargeMs }, ble);
  if (stoppedBy !== undefined) return stoppedBy;

  if (opts.once) {
    await td.teardown();
    say("demo", "done");
    return 0;
  }
  process.stdout.write(exploreText(work, socket, con.pair.b, logPath, ble.cliBridge));
  await new Promise<void>((r) => d.once("exit", () => r()));
  if (td.interrupted() === undefined) say("demo", `piled exited (${d.exitCode ?? d.signalCode})`);
  await td.teardown();
  return td.interrupted() ?? 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`demo: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
