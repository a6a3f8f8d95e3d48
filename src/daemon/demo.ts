/**
 * `npm start`: the whole simulated pile on one desk. The daemon runs as its own process on the
 * simulated plant (GPIO relays with feedback, a Modbus RTU meter on a pty pair); the emulated BLE
 * radio carries a vehicle device and a phone through unlock → charge → stop; then the daemon stays
 * up to be explored with pilectl and the technician console. Ctrl-C tears everything down.
 *
 *   node dist/src/daemon/demo.js [--once] [--charge-s N]
 *     --once      tear down after the drive instead of waiting for Ctrl-C
 *     --charge-s  how long each carrier charges (default 6)
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

/** The commands that play the platform and a carrier for one more unlock against the demo. */
function unlockCommands(keyFile: string, codeFile: string, hciUart: string): string {
  const field = (f: string) =>
    `"$(node -e 'process.stdout.write(require(process.argv[1]).${f})' ${codeFile})"`;
  return `  one more unlock (the platform issues a code, a carrier presents it):
    node ${PILECTL} code issue --key ${keyFile} --device VIN-DESK-0001 --pile ${PILE_ID} --carrier mobile > ${codeFile}
    node ${PILECTL} carrier unlock --pile ${PILE_ID} --code ${field("code")} --verify-secret ${field("verifySecret")} --hci-uart ${hciUart}
    node ${PILECTL} carrier stop   --pile ${PILE_ID} --code ${field("code")} --verify-secret ${field("verifySecret")} --hci-uart ${hciUart}
`;
}

type Cleanup = (() => Promise<void> | void)[];

/** Starts piled on the config, its log to `logPath`, the lines that tell the story to the screen. */
function spawnDaemon(configPath: string, logPath: string, cleanup: Cleanup): ChildProcess {
  const logFile = createWriteStream(logPath);
  // The daemon dies with the demo even when the demo is killed outright (SIGKILL): the kernel
  // sends it SIGTERM when its parent goes (setpriv --pdeathsig execs it, the pid stays).
  const argv = [process.execPath, PILED, "--config", configPath];
  const [cmd, ...args] = existsSync(SETPRIV) ? [SETPRIV, "--pdeathsig", "SIGTERM", "--", ...argv] : argv;
  const d = spawn(cmd as string, args, {
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  cleanup.push(async () => {
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

/** The emulated radio when it can be had, and its controllers: pile, vehicle, phone, a spare. */
async function openRadio(cleanup: Cleanup) {
  // BLE: the emulated radio when it can be had.
  let radio: Radio | undefined;
  let bleNote: string;
  try {
    radio = await startRadio();
    cleanup.push(() => radio?.close());
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

interface Drive {
  issuer: Issuer;
  chargeMs: number;
  socket: string;
  cleanup: Cleanup;
  interrupted: () => number | undefined;
}

/** One unlock → charge → stop, by the carrier the platform picks. */
async function drive(c: Drive, vehicle: SimCarrier, phone: SimCarrier, deviceAwake: boolean): Promise<void> {
  vehicle.inAcquisitionState = deviceAwake;
  say("platform", `vehicle device ${deviceAwake ? "is" : "is NOT"} in its code-acquisition state`);
  const issued = c.issuer.issueFor({
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
  await sleep(c.chargeMs);
  const stopped = await carrier.stop(onStatus);
  say(
    carrier.name,
    stopped.kind === "stopped" ? "STOPPED: contactor confirmed open" : JSON.stringify(stopped),
  );
  await carrier.close();
  await sleep(2500); // the lock releases after the contactor is confirmed open
}

/** The vehicle device, then the phone, over the emulated radio; the exit code if interrupted. */
async function driveCarriers(c: Drive, vehiclePath: string, phonePath: string): Promise<number | undefined> {
  const vehicle = new SimCarrier("vehicle", "vehicle", { kind: "uart", path: vehiclePath });
  const phone = new SimCarrier("phone", "mobile", { kind: "uart", path: phonePath });
  c.cleanup.push(
    () => vehicle.close(),
    () => phone.close(),
  );

  await drive(c, vehicle, phone, true);
  const interrupted = c.interrupted();
  if (interrupted !== undefined) return interrupted;
  await drive(c, vehicle, phone, false);
  const sessions = await requestControl(c.socket, "sessions", ["5"], 5000);
  if (sessions.ok && sessions.value.ok) {
    for (const s of sessions.value.result as { carrier: string; energyWh: number; reason: string | null }[])
      say("piled", `session by ${s.carrier}: ${s.energyWh.toFixed(1)} Wh, ${s.reason}`);
  }
  return undefined;
}

/** Waits for the daemon's control socket to answer (30 s); false when it exits or never does. */
async function cameUp(socket: string, d: ChildProcess, logPath: string): Promise<boolean> {
  const up = Date.now() + 30_000;
  for (;;) {
    const r = await requestControl(socket, "status", [], 2000);
    if (r.ok && r.value.ok) return true;
    if (d.exitCode !== null || Date.now() > up) {
      say("demo", `piled did not come up (exit ${d.exitCode}); see ${logPath}`);
      return false;
    }
    await sleep(200);
  }
}

/** What the demo prints once the drive is done and the pile keeps running. */
function exploreText(
  socket: string,
  consolePty: string,
  logPath: string,
  work: string,
  cliPath?: string,
): string {
  return `
The simulated pile keeps running. Explore it:
  node ${PILECTL} status --socket ${socket}
  node ${PILECTL} sessions --socket ${socket}
  node ${PILECTL} sim plug-out --socket ${socket}      (fault switches: weld, meter-silent, estop-press, clear …)
  technician console:  picocom -q ${consolePty}     (secret: ${TECH_SECRET}; exit picocom with Ctrl-A Ctrl-X)
  daemon log:          ${logPath}
${cliPath ? unlockCommands(join(work, "keys", `key-${KEY_ID}.json`), join(work, "code.json"), cliPath) : "  (no radio: no carrier unlock from the command line)\n"}Ctrl-C stops everything.
`;
}

/** The platform and the pile share a pile virtual key (preset in the pile's key directory). */
function presetKey(work: string): Issuer {
  const key = crypto.getRandomValues(new Uint8Array(32));
  mkdirSync(join(work, "keys"), { mode: 0o700 });
  const wrote = writeKeyFile(join(work, "keys", `key-${KEY_ID}.json`), KEY_ID, key);
  if (!wrote.ok) throw wrote.error;
  return new Issuer({ keys: [{ keyId: KEY_ID, key }] });
}

/** `--charge-s` in ms; undefined when it is not a number of seconds 1..3600. */
function chargeMsOf(v: string | undefined): number | undefined {
  const s = Number(v ?? 6);
  return Number.isFinite(s) && s >= 1 && s <= 3600 ? s * 1000 : undefined;
}

/** The daemon's config: the simulated pile, its console on the pty; gives the file's path. */
function writeConfig(
  work: string,
  blePath: string | undefined,
  consolePty: string,
  secretHashFile: string,
): string {
  const config = {
    ...simPileConfig({ pileId: PILE_ID, dir: work, blePath }),
    console: { enabled: true, port: consolePty, secretHashFile },
  };
  const configPath = join(work, "piled.json");
  durable(configPath, `${JSON.stringify(config, null, 2)}\n`, 0o644);
  return configPath;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { once: { type: "boolean" }, "charge-s": { type: "string" } },
    strict: true,
  });
  const chargeMs = chargeMsOf(values["charge-s"]);
  if (chargeMs === undefined) {
    process.stderr.write("demo: --charge-s takes a number of seconds, 1..3600\n");
    return 2;
  }
  const cleanup: Cleanup = [];
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

  const work = mkdtempSync(join(tmpdir(), "piled-demo-"));
  cleanup.push(() => rmSync(work, { recursive: true, force: true }));
  say("demo", `working folder ${work}`);

  const issuer = presetKey(work);

  const { radio, pileBridge, vehicleBridge, phoneBridge, cliBridge } = await openRadio(cleanup);

  // The technician console on a pty pair: the daemon holds one end, the technician the other.
  const consolePair: PtyPair = await openPtyPair();
  cleanup.push(() => consolePair.close());
  const secretHashFile = join(work, "console-secret.hash");
  durable(secretHashFile, `${await hashSecret(TECH_SECRET)}\n`, 0o600);

  const socket = join(work, "control.sock");
  const configPath = writeConfig(work, pileBridge?.path, consolePair.a, secretHashFile);

  const logPath = join(work, "piled.log");
  const d = spawnDaemon(configPath, logPath, cleanup);

  if (!(await cameUp(socket, d, logPath))) {
    await teardown();
    return 1;
  }
  say("demo", "piled is up: outputs safe, meter polled over Modbus RTU");

  if (radio && vehicleBridge && phoneBridge) {
    const stop = await driveCarriers(
      { issuer, chargeMs, socket, cleanup, interrupted: () => interrupted },
      vehicleBridge.path,
      phoneBridge.path,
    );
    if (stop !== undefined) return stop;
  } else {
    say("demo", "no radio: skipping the carriers; the daemon runs without BLE");
  }

  if (values.once) {
    await teardown();
    say("demo", "done");
    return 0;
  }
  process.stdout.write(exploreText(socket, consolePair.b, logPath, work, cliBridge?.path));
  await new Promise<void>((r) => d.once("exit", () => r()));
  if (interrupted === undefined) say("demo", `piled exited (${d.exitCode ?? d.signalCode})`);
  await teardown();
  return interrupted ?? 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`demo: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
