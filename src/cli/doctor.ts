/**
 * `pilectl doctor`: the pre-flight check a technician runs after installing, before starting
 * piled (it reads the meter and looks at the GPIO lines, so the daemon must not be running):
 *
 *   pilectl doctor [--config FILE] [--user NAME] [--min-free-mb N]
 *                  [--gpio-root DIR] [--bt-root DIR]
 *
 * One line per check: `ok`, `warn` or `fail`, the check's name, what was found. Checks: config
 * parses, GPIO chip and lines (present, free), meter (one read), BLE controller, keys (owner and
 * modes), clock (against the store's time floor), disk space of the state directory, console
 * hash file. Exit 0 when nothing failed (warnings allowed), 1 when a check failed, 2 on usage.
 */
import { loadConfig } from "../daemon/config.js";
import { DEFAULT_SYSFS_ROOT } from "../hw/gpio/chip.js";
import {
  type CheckResult,
  checkBle,
  checkClock,
  checkConsole,
  checkDisk,
  checkGpio,
  checkKeys,
  checkMeter,
  type DoctorEnv,
  lookupAccount,
} from "./doctor-checks.js";
import { type CliIo, EXIT_OK, EXIT_REJECTED, intOption, parseOptions } from "./io.js";

const USAGE =
  "usage: pilectl doctor [--config FILE] [--user NAME] [--min-free-mb N] [--gpio-root DIR] [--bt-root DIR]\n";

function line(r: CheckResult): string {
  return `${r.status.padEnd(4)}  ${r.name.padEnd(7)}  ${r.detail}\n`;
}

export async function run(args: string[], io: CliIo): Promise<number> {
  if (args[0] === "--help" || args[0] === "-h") {
    io.out(USAGE);
    return EXIT_OK;
  }
  const { values } = parseOptions(args, {
    config: { type: "string" },
    user: { type: "string" },
    "min-free-mb": { type: "string" },
    "gpio-root": { type: "string" },
    "bt-root": { type: "string" },
  });
  const str = (k: string, d: string): string => (typeof values[k] === "string" ? (values[k] as string) : d);
  const configPath = str("config", "/etc/piled/piled.json");
  const user = str("user", "piled");
  const env: DoctorEnv = {
    gpioRoot: str("gpio-root", DEFAULT_SYSFS_ROOT),
    btRoot: str("bt-root", "/sys/class/bluetooth"),
    account: lookupAccount(user),
    minFreeBytes: intOption(values, "min-free-mb", 1, 1_000_000, 50) * 1048576,
    nowMs: Date.now(),
  };
  const loaded = loadConfig(configPath);
  if (!loaded.ok) {
    io.out(line({ name: "config", status: "fail", detail: loaded.error.message }));
    io.out("doctor: 1 failed (the other checks need a configuration)\n");
    return EXIT_REJECTED;
  }
  const c = loaded.value;
  const results: CheckResult[] = [
    { name: "config", status: "ok", detail: `${configPath} parses (pile ${c.pileId})` },
  ];
  const emit = (r: CheckResult): void => {
    results.push(r);
    io.out(line(r));
  };
  io.out(line(results[0]!));
  emit(checkGpio(c, env));
  emit(await checkMeter(c));
  emit(checkBle(c, env));
  emit(checkKeys(c, env));
  emit(checkClock(c, env));
  emit(checkDisk(c, env));
  emit(checkConsole(c));
  const n = (s: string): number => results.filter((r) => r.status === s).length;
  io.out(`doctor: ${n("ok")} ok, ${n("warn")} warn, ${n("fail")} failed\n`);
  return n("fail") > 0 ? EXIT_REJECTED : EXIT_OK;
}
