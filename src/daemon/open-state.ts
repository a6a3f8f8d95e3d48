/**
 * What the daemon checks before any line is opened: the keys, the console secret, the OCPP
 * files, the state directory, the instance lock and the store. A refusal touches nothing.
 */
import { accessSync, constants, mkdirSync } from "node:fs";
import { checkLinkFiles } from "../ocpp/link-options.js";
import { err, ok, type Result } from "../protocol/bytes.js";
import { readSmallFile } from "../sdk/files.js";
import { openStore, type Store } from "../store/index.js";
import { type Config, databasePath } from "./config.js";
import { hashProblem } from "./console/secret.js";
import { type InstanceLock, takeInstanceLock } from "./instance-lock.js";
import { KeyDirectory } from "./keys.js";
import type { Logger } from "./log.js";
import { createSessionHook, type SessionHookOptions } from "./ocpp-hook.js";

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

/** What the daemon holds once its state is checked, before any line is opened. */
export interface Opened {
  keys: KeyDirectory;
  secretHash: string | undefined;
  instance: InstanceLock;
  store: Store;
}

/**
 * Keys, the console secret, the OCPP files, the state directory, the instance lock and the
 * store, in that order: a refusal touches nothing and gives the exit code.
 */
export function openState(config: Config, dlog: Logger, ocppHook?: SessionHookOptions): Opened | number {
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

  const ocppFiles = checkLinkFiles(config.ocpp);
  if (!ocppFiles.ok) {
    process.stderr.write(`piled: OCPP refused, nothing was touched: ${ocppFiles.error.message}\n`);
    return 2;
  }

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

  try {
    const store = openStore(databasePath(config), {
      auditMaxRows: config.audit.maxRows,
      ...(ocppHook !== undefined ? { onSessionRecord: createSessionHook(ocppHook) } : {}),
    });
    return { keys, secretHash: secret.value, instance: instance.value, store };
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
}
