/**
 * pilectl: the command-line companion of piled. Each command group lives in its own module,
 * loaded on demand so that `pilectl code …` never loads the BLE stack.
 */
import { VERSION } from "../version.js";
import { CliError, type CliIo, EXIT_USAGE } from "./io.js";

type Runner = (args: string[], io: CliIo) => Promise<number>;

const COMMANDS: Record<string, { summary: string; load: () => Promise<Runner> }> = {
  key: { summary: "key new: make a pile virtual key file", load: async () => (await import("./key.js")).run },
  code: { summary: "code issue|check: charging codes", load: async () => (await import("./code.js")).run },
  meter: {
    summary: "meter read: commissioning read of the energy meter",
    load: async () => (await import("./meter.js")).run,
  },
  store: {
    summary: "store recover: start a new store when piled refuses a damaged one",
    load: async () => (await import("./store.js")).run,
  },
  doctor: {
    summary: "doctor: pre-flight checks after installing (GPIO, meter, BLE, keys, clock, disk)",
    load: async () => (await import("./doctor.js")).run,
  },
  carrier: {
    summary: "carrier unlock|stop: act as a carrier over BLE",
    load: async () => (await import("./carrier.js")).run,
  },
};

/** Commands answered by the running daemon over its control socket. */
export const CONTROL = [
  "status",
  "meter-now",
  "sessions",
  "faults",
  "clear-fault",
  "stop",
  "relay-test",
  "available",
  "current-limit",
  "keys",
  "time",
  "log",
  "sim",
  "ocpp",
  "ocmf",
];

function usage(io: CliIo): void {
  io.err("usage: pilectl <command> [options] | pilectl --version\n");
  for (const [name, c] of Object.entries(COMMANDS)) io.err(`  ${name.padEnd(12)} ${c.summary}\n`);
  io.err(`  ${CONTROL.join(", ")}: ask the running daemon (see pilectl status --help)\n`);
}

export async function main(argv: string[], io: CliIo): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    if (cmd === undefined || cmd === "--help" || cmd === "-h" || cmd === "help") {
      usage(io);
      return cmd === undefined ? EXIT_USAGE : 0;
    }
    if (cmd === "--version" || cmd === "-V" || cmd === "version") {
      io.out(`pilectl ${VERSION}\n`);
      return 0;
    }
    // Own properties only: `pilectl constructor` or `__proto__` is an unknown command, not Object's.
    const entry = Object.hasOwn(COMMANDS, cmd) ? COMMANDS[cmd] : undefined;
    // `pilectl code issue --help`: any help flag shows the group's usage.
    if (entry && rest.some((a) => a === "--help" || a === "-h"))
      return await (await entry.load())(["--help"], io);
    if (entry) return await (await entry.load())(rest, io);
    if (CONTROL.includes(cmd)) return await (await import("./control.js")).run(cmd, rest, io);
    io.err(`pilectl: unknown command '${cmd}'\n`);
    usage(io);
    return EXIT_USAGE;
  } catch (e) {
    if (e instanceof CliError) {
      io.err(`pilectl: ${e.message}\n`);
      return e.exitCode;
    }
    throw e;
  }
}
