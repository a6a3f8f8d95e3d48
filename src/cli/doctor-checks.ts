/**
 * The checks of `pilectl doctor`, one function each, each returning one line's worth: ok, warn or
 * fail and what was found. None changes anything on the board: GPIO lines are looked at, never
 * exported; the meter is read once; files are stat()ed and read, never written. No check prints a
 * key, a hash or a secret.
 */
import { existsSync, readdirSync, readFileSync, type Stats, statfsSync, statSync } from "node:fs";
import { join } from "node:path";
import { type Config, databasePath } from "../daemon/config.js";
import { meterLinkOptions } from "../daemon/config-sections.js";
import { hashProblem } from "../daemon/console/secret.js";
import { KeyDirectory } from "../daemon/keys.js";
import { describeLine, listChips, resolveLine } from "../hw/gpio/chip.js";
import { GpioError } from "../hw/gpio/errors.js";
import { openModbusMeter } from "../hw/meter/modbus-meter.js";
import { MeterError, systemClock } from "../hw/ports.js";
import { identityPath, readIdentity } from "../store/identity.js";

export type Status = "ok" | "warn" | "fail";

export interface CheckResult {
  name: string;
  status: Status;
  detail: string;
}

export interface Account {
  name: string;
  uid: number;
}

export interface DoctorEnv {
  gpioRoot: string;
  btRoot: string;
  account: Account | undefined;
  minFreeBytes: number;
  nowMs: number;
}

const ok = (name: string, detail: string): CheckResult => ({ name, status: "ok", detail });
const warn = (name: string, detail: string): CheckResult => ({ name, status: "warn", detail });
const fail = (name: string, detail: string): CheckResult => ({ name, status: "fail", detail });
const errText = (e: unknown): string => (e as NodeJS.ErrnoException).code ?? String(e);
const octal = (mode: number): string => `0${(mode & 0o777).toString(8)}`;

/** The earliest date a running pile's clock can show: before it, the clock was never set. */
export const CLOCK_FLOOR_MS = Date.UTC(2025, 0, 1);

/**
 * The account by name from /etc/passwd (or `passwdFile`). System accounts made by
 * systemd-sysusers live there; a directory service is not looked at (piled's user is local).
 */
export function lookupAccount(name: string, passwdFile = "/etc/passwd"): Account | undefined {
  let text: string;
  try {
    text = readFileSync(passwdFile, "utf8");
  } catch {
    return undefined;
  }
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f[0] === name && f[2] !== undefined && /^\d+$/.test(f[2])) return { name, uid: Number(f[2]) };
  }
  return undefined;
}

const ROLES = [
  "contactor",
  "lock",
  "contactorFeedback",
  "lockFeedback",
  "plugPresent",
  "emergencyStop",
] as const;

/** The chip is there, every configured line is inside it, no two roles share a line, none is exported. */
export function checkGpio(c: Config, env: DoctorEnv): CheckResult {
  const name = "gpio";
  if (c.gpio.driver === "sim") return warn(name, 'gpio.driver is "sim": no GPIO hardware checked');
  let chips: ReturnType<typeof listChips>;
  try {
    chips = listChips(env.gpioRoot);
  } catch (e) {
    return fail(name, e instanceof GpioError ? e.message : String(e));
  }
  const taken = new Map<number, string>();
  const problems: string[] = [];
  for (const role of ROLES) {
    const spec = c.gpio[role];
    if (spec === undefined) continue;
    try {
      const r = resolveLine(spec, { sysfsRoot: env.gpioRoot });
      const prior = taken.get(r.number);
      if (prior !== undefined) problems.push(`${role} and ${prior} are both GPIO ${r.number}`);
      taken.set(r.number, role);
      if (existsSync(join(env.gpioRoot, `gpio${r.number}`)))
        problems.push(
          `${role} ${describeLine(spec)} (GPIO ${r.number}) is already exported: in use (is piled running? stop it first)`,
        );
    } catch (e) {
      problems.push(`${role}: ${e instanceof GpioError ? e.message : String(e)}`);
    }
  }
  if (problems.length > 0) return fail(name, problems.join("; "));
  const used = [
    ...new Set(
      chips
        .filter((ch) => [...taken.keys()].some((n) => n >= ch.base && n < ch.base + ch.ngpio))
        .map((ch) => ch.label),
    ),
  ];
  return ok(name, `chip ${used.join(", ")}: ${taken.size} lines found and free`);
}

/** One read of the meter with the configured settings. */
export async function checkMeter(c: Config): Promise<CheckResult> {
  const name = "meter";
  if (c.meter.driver === "sim") return warn(name, 'meter.driver is "sim": no meter checked');
  const m = c.meter;
  const meter = openModbusMeter(meterLinkOptions(c, m.port, systemClock));
  try {
    const r = await meter.read();
    return ok(
      name,
      `${m.model} unit ${m.unit} on ${m.port}: ${r.voltageV} V, ${r.powerW} W, ${r.energyImportWh} Wh`,
    );
  } catch (e) {
    if (!(e instanceof MeterError)) throw e;
    return fail(name, `${m.model} unit ${m.unit} on ${m.port}: ${e.code}: ${e.message}`);
  } finally {
    await meter.close();
  }
}

/** Kernel HCI: the controller is there and no rfkill switch blocks it. UART: the tty is there. */
export function checkBle(c: Config, env: DoctorEnv): CheckResult {
  const name = "ble";
  if (!c.ble.enabled) return ok(name, "BLE is off (ble.enabled false)");
  const ctl = c.ble.controller;
  if (ctl.kind === "uart") {
    let st: Stats;
    try {
      st = statSync(ctl.path);
    } catch (e) {
      return fail(name, `UART controller ${ctl.path}: ${errText(e)} (plugged in? see udev/99-piled.rules)`);
    }
    if (!st.isCharacterDevice()) return fail(name, `UART controller ${ctl.path} is not a character device`);
    return ok(name, `UART controller ${ctl.path} present`);
  }
  const dir = join(env.btRoot, `hci${ctl.device}`);
  if (!existsSync(dir)) {
    let seen: string[] = [];
    try {
      seen = readdirSync(env.btRoot).filter((n) => /^hci\d+$/.test(n));
    } catch {
      // no bluetooth class at all: no controller, no driver
    }
    return fail(name, `no controller hci${ctl.device}; seen: ${seen.length > 0 ? seen.join(", ") : "none"}`);
  }
  const blocked: string[] = [];
  for (const rf of readdirSync(dir).filter((n) => /^rfkill\d+$/.test(n))) {
    for (const kind of ["soft", "hard"]) {
      try {
        if (readFileSync(join(dir, rf, kind), "utf8").trim() === "1") blocked.push(kind);
      } catch {
        // no such switch
      }
    }
  }
  if (blocked.length > 0)
    return fail(
      name,
      `hci${ctl.device} is blocked by rfkill (${blocked.join(", ")}): rfkill unblock bluetooth`,
    );
  return ok(name, `controller hci${ctl.device} present, not blocked (piled brings it up)`);
}

function ownerProblem(path: string, st: Stats, env: DoctorEnv, what: string): string | undefined {
  if (env.account === undefined) return undefined;
  if (st.uid !== env.account.uid)
    return `${what} ${path} is owned by uid ${st.uid}, not ${env.account.name} (uid ${env.account.uid})`;
  return undefined;
}

/** The key directory and every key file: owned by the daemon's user, no access for group or others, valid. */
export function checkKeys(c: Config, env: DoctorEnv): CheckResult {
  const name = "keys";
  const dir = c.keyDir;
  let st: Stats;
  try {
    st = statSync(dir);
  } catch (e) {
    return fail(name, `key directory ${dir}: ${errText(e)}`);
  }
  const problems: string[] = [];
  if (env.account === undefined)
    problems.push("no such user to own the keys (install the package, or --user)");
  const own = ownerProblem(dir, st, env, "key directory");
  if (own) problems.push(own);
  if ((st.mode & 0o077) !== 0) problems.push(`key directory ${dir} has mode ${octal(st.mode)} (want 0700)`);
  try {
    for (const f of readdirSync(dir).filter((n) => n.endsWith(".json"))) {
      const p = join(dir, f);
      const fst = statSync(p);
      const o = ownerProblem(p, fst, env, "key file");
      if (o) problems.push(o);
      if ((fst.mode & 0o077) !== 0) problems.push(`key file ${p} has mode ${octal(fst.mode)} (want 0600)`);
    }
  } catch (e) {
    return fail(name, `key directory ${dir}: ${errText(e)}`);
  }
  if (problems.length > 0) return fail(name, problems.join("; "));
  const kd = new KeyDirectory(dir);
  const loaded = kd.load();
  if (!loaded.ok) {
    const hint =
      process.getuid?.() === 0 && env.account !== undefined && env.account.uid !== 0
        ? ` (run the check as the daemon's user: sudo -u ${env.account.name} pilectl doctor)`
        : "";
    return fail(name, `${loaded.error.message}${hint}`);
  }
  if (loaded.value === 0)
    return fail(name, `no key in ${dir}: the pile would accept no code (pilectl key new)`);
  return ok(name, `${loaded.value} key(s) in ${dir}, readable by ${env.account?.name ?? "?"} only`);
}

/** The clock is later than a fixed floor and than the store's time floor (codes are refused before it). */
export function checkClock(c: Config, env: DoctorEnv): CheckResult {
  const name = "clock";
  const now = env.nowMs;
  const iso = new Date(now).toISOString();
  if (now < CLOCK_FLOOR_MS) return fail(name, `the clock says ${iso}: never set (NTP or an RTC)`);
  let floor: bigint;
  try {
    const id = readIdentity(identityPath(databasePath(c)));
    if (id === undefined) return ok(name, `${iso} (no store yet to compare with)`);
    floor = id.marks.floor;
  } catch (e) {
    return warn(
      name,
      `${iso}; the store's time floor is unreadable: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
  if (BigInt(now) < floor) {
    const behind = Number(floor - BigInt(now)) / 1000;
    return fail(
      name,
      `the clock says ${iso}, ${behind.toFixed(0)} s before the store's time floor ${new Date(Number(floor)).toISOString()}: set the clock first`,
    );
  }
  return ok(name, `${iso}, after the store's time floor`);
}

/** Free space where the database lives. */
export function checkDisk(c: Config, env: DoctorEnv): CheckResult {
  const name = "disk";
  let free: number;
  try {
    const s = statfsSync(c.stateDir);
    free = s.bavail * s.bsize;
  } catch (e) {
    return fail(name, `state directory ${c.stateDir}: ${errText(e)}`);
  }
  const mib = (n: number): string => `${(n / 1048576).toFixed(0)} MiB`;
  const text = `${mib(free)} free in ${c.stateDir}`;
  if (free < env.minFreeBytes) return fail(name, `${text}, below ${mib(env.minFreeBytes)}`);
  if (free < 4 * env.minFreeBytes) return warn(name, `${text}, below ${mib(4 * env.minFreeBytes)}`);
  return ok(name, text);
}

/** The console's hash file: readable, a usable scrypt hash, not readable by others. */
export function checkConsole(c: Config): CheckResult {
  const name = "console";
  if (!c.console.enabled) return ok(name, "console is off");
  const file = c.console.secretHashFile;
  if (file === undefined) return ok(name, "console hash given in the config");
  let text: string;
  let st: Stats;
  try {
    st = statSync(file);
    text = readFileSync(file, "utf8");
  } catch (e) {
    return fail(name, `hash file ${file}: ${errText(e)}`);
  }
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  const problem = lines.length !== 1 ? `${lines.length} lines, want one` : hashProblem(lines[0]!);
  if (problem !== undefined) return fail(name, `hash file ${file}: ${problem}`);
  if ((st.mode & 0o007) !== 0)
    return fail(name, `hash file ${file} has mode ${octal(st.mode)}: others may read it (want 0640)`);
  return ok(name, `hash file ${file} holds a usable scrypt hash`);
}
