#!/usr/bin/env node
/**
 * piled: the charging pile's controller daemon.
 *
 *   piled --config FILE            run the pile
 *   piled --check-config FILE      validate a configuration and exit
 *   piled --safe-outputs --config FILE
 *                                  drive every output to its safe state straight through sysfs
 *                                  (systemd's ExecStopPost: a closed contactor must not outlive
 *                                  the daemon) and exit; a WELD latched in the store, or a
 *                                  store that cannot be read, keeps the lock engaged.
 *                                  It takes no instance lock: it runs after the daemon exited
 *                                  (the kernel freed the lock then) and must work regardless
 *
 * One daemon per state directory: the daemon takes an exclusive lock (stateDir/piled.lock,
 * instance-lock.ts) before it opens any line; a second one exits 2 naming the holder's pid.
 *
 * Exit codes: 0 clean stop, 1 runtime failure (store, hardware), 2 configuration or key error,
 * or another daemon holds the state directory (nothing was touched), 70 internal error or a
 * start-up step failed once the hardware was open (outputs were driven safe first).
 */
import { parseArgs } from "node:util";
import { forceSafeOutputs } from "../hw/gpio/safe.js";
import { checkLinkFiles } from "../ocpp/link-options.js";
import { readLatchedFaults } from "../store/index.js";
import { VERSION } from "../version.js";
import { type Config, databasePath, loadConfig } from "./config.js";
import { runDaemon } from "./daemon.js";
import { withoutOptimizingCompiler } from "./memory.js";
import { consoleSecretHash } from "./open-state.js";

const USAGE = "usage: piled --config FILE | piled --check-config FILE | piled --safe-outputs --config FILE\n";

const HELP = `piled ${VERSION}: the charging pile's controller daemon

usage:
  piled --config FILE              run the pile (SIGTERM/SIGINT stop cleanly, SIGHUP reloads keys,
                                   SIGUSR2 runs a full GC when the contactor is open:
                                   memory.liveHeapKb in the status counters)
  piled --check-config FILE        validate a configuration and exit
  piled --safe-outputs --config FILE
                                   drive every output to its safe state through sysfs and exit
                                   (systemd's ExecStopPost); a latched WELD keeps the lock engaged
  piled --version                  print the version
  piled --help                     this text

exit codes: 0 clean stop, 1 runtime failure (store, hardware), 2 configuration or key error
(nothing was touched), 70 internal error (outputs were driven safe first)
`;

function fail(code: number, text: string): never {
  process.stderr.write(text.endsWith("\n") ? text : `${text}\n`);
  process.exit(code);
}

function load(path: string): Config {
  const r = loadConfig(path);
  if (r.ok) return r.value;
  const lines = r.error.issues.map((i) => `  ${i.path || "(file)"}: ${i.message}`);
  return fail(
    2,
    `piled: configuration ${path} refused (${r.error.code}), nothing was touched:\n${lines.join("\n")}`,
  );
}

let args: ReturnType<
  typeof parseArgs<{
    options: {
      config: { type: "string" };
      "check-config": { type: "string" };
      "safe-outputs": { type: "boolean" };
      help: { type: "boolean" };
      version: { type: "boolean" };
    };
  }>
>;
try {
  args = parseArgs({
    options: {
      config: { type: "string" },
      "check-config": { type: "string" },
      "safe-outputs": { type: "boolean" },
      help: { type: "boolean" },
      version: { type: "boolean" },
    },
    strict: true,
  });
} catch (e) {
  fail(2, `piled: ${e instanceof Error ? e.message : String(e)}\n${USAGE}`);
}
const v = args.values;
if (v.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
if (v.version) {
  process.stdout.write(`piled ${VERSION}\n`);
  process.exit(0);
}
if (v["check-config"] !== undefined) {
  const checked = load(v["check-config"]);
  const secret = consoleSecretHash(checked);
  if (!secret.ok) fail(2, `piled: configuration ${v["check-config"]} refused: ${secret.error}\n`);
  const ocppFiles = checkLinkFiles(checked.ocpp);
  if (!ocppFiles.ok)
    fail(2, `piled: configuration ${v["check-config"]} refused: ${ocppFiles.error.message}\n`);
  process.stdout.write(`${v["check-config"]}: ok\n`);
  process.exit(0);
}
if (v.config === undefined) fail(2, USAGE);
const config = load(v.config);

if (v["safe-outputs"]) {
  if (config.gpio.driver !== "sysfs") {
    process.stdout.write(
      `${JSON.stringify({ ok: true, detail: "simulated plant: no sysfs outputs to drive" })}\n`,
    );
    process.exit(0);
  }
  const report = forceSafeOutputs(
    {
      contactor: config.gpio.contactor,
      lock: config.gpio.lock,
      lockSafe: config.lockSafeState,
      contactorFeedback: config.gpio.contactorFeedback,
      latched: () => readLatchedFaults(databasePath(config)),
    },
    { confirmMs: config.deadlines.contactorOpenMs },
  );
  process.stdout.write(
    `${JSON.stringify(report, (_k, x) => (x instanceof Error ? { code: (x as { code?: string }).code, message: x.message } : x))}\n`,
  );
  process.exit(report.ok ? 0 : 1);
}

withoutOptimizingCompiler();
// Out as soon as the daemon is done (its log already flushed): an adapter, timer or port left
// behind by a failed start must not keep the process up until systemd's start timeout.
runDaemon(config).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`piled: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(70);
  },
);
