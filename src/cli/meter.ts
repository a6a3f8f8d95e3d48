/**
 * `pilectl meter read`: a commissioning read of the energy meter, straight over the RS-485 adapter
 * (the daemon must not be polling the same port at the time).
 *
 *   pilectl meter read --port PATH --model sdm630|sdm120|abb-b23|em340 [--unit N] [--baud N]
 *                      [--parity none|even|odd] [--timeout-ms N]
 *
 * Prints one JSON line of the four values; on a meter failure prints {"error": CODE, "message"}
 * and exits 1 (IMPLAUSIBLE: the meter answered with values it cannot have measured, e.g. negative
 * energy, or a voltage outside its range when the model is wrong); usage errors exit 2.
 */
import type { Parity } from "../hw/meter/bus.js";
import { isMeterModel, METER_MODELS } from "../hw/meter/maps.js";
import { openModbusMeter } from "../hw/meter/modbus-meter.js";
import { MeterError, systemClock } from "../hw/ports.js";
import {
  CliError,
  type CliIo,
  EXIT_OK,
  EXIT_REJECTED,
  intOption,
  parseOptions,
  printJson,
  stringOption,
} from "./io.js";

const USAGE = `usage: pilectl meter read --port PATH --model ${METER_MODELS.join("|")} [--unit N] [--baud N] [--parity none|even|odd] [--timeout-ms N]\n`;

export async function run(args: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === "--help" || sub === "-h") {
    io.out(USAGE);
    return EXIT_OK;
  }
  if (sub !== "read") throw new CliError(`meter: unknown subcommand '${sub ?? ""}'\n${USAGE}`);
  const { values } = parseOptions(rest, {
    port: { type: "string" },
    model: { type: "string" },
    unit: { type: "string" },
    baud: { type: "string" },
    parity: { type: "string" },
    "timeout-ms": { type: "string" },
  });
  const path = stringOption(values, "port");
  const model = stringOption(values, "model");
  if (!isMeterModel(model)) throw new CliError(`--model must be one of ${METER_MODELS.join(", ")}`);
  const unit = intOption(values, "unit", 1, 247, 1);
  const baudRate = intOption(values, "baud", 300, 921_600, 9600);
  const timeoutMs = intOption(values, "timeout-ms", 10, 60_000, 1000);
  const parity = (values["parity"] ?? "none") as string;
  if (parity !== "none" && parity !== "even" && parity !== "odd") {
    throw new CliError("--parity must be none, even or odd");
  }
  const meter = openModbusMeter({
    path,
    baudRate,
    parity: parity as Parity,
    timeoutMs,
    retries: 1,
    model,
    unit,
    clock: systemClock,
  });
  try {
    const r = await meter.read();
    printJson(io, {
      voltageV: r.voltageV,
      currentA: r.currentA,
      powerW: r.powerW,
      energyImportWh: r.energyImportWh,
    });
    return EXIT_OK;
  } catch (e) {
    if (!(e instanceof MeterError)) throw e;
    printJson(io, { error: e.code, message: e.message, ...(e.detail ?? {}) });
    return EXIT_REJECTED;
  } finally {
    await meter.close();
  }
}
