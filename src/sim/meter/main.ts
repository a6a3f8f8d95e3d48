#!/usr/bin/env node
/**
 * A simulated meter on a serial device, standalone, for a desk bring-up:
 *
 *   node dist/src/sim/meter/main.js --port PATH --model sdm630|sdm120|abb-b23|em340
 *        [--unit N] [--baud N] [--power W] [--energy-wh N]
 *
 * Serves until SIGINT/SIGTERM. (The simulated pile wires SimMeter in-process instead and drives
 * its power from the contactor.)
 */
import { parseArgs } from "node:util";
import { isMeterModel, METER_MODELS } from "../../hw/meter/maps.js";
import { SimMeter } from "./sim-meter.js";

function fail(msg: string): never {
  process.stderr.write(`sim-meter: ${msg}\n`);
  process.exit(2);
}

function num(v: string | undefined, name: string, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n)) fail(`--${name} must be a number`);
  return n;
}

let parsed: ReturnType<typeof parseArgs<{ options: Record<string, { type: "string" }> }>>;
try {
  parsed = parseArgs({
    options: {
      port: { type: "string" },
      model: { type: "string" },
      unit: { type: "string" },
      baud: { type: "string" },
      power: { type: "string" },
      "energy-wh": { type: "string" },
    },
    strict: true,
  });
} catch (e) {
  fail(e instanceof Error ? e.message : String(e));
}
const v = parsed.values;
const port = typeof v["port"] === "string" ? v["port"] : fail("--port is required");
const model = typeof v["model"] === "string" ? v["model"] : fail("--model is required");
if (!isMeterModel(model)) fail(`--model must be one of ${METER_MODELS.join(", ")}`);
const unit = num(v["unit"] as string | undefined, "unit", 1);
if (!Number.isInteger(unit) || unit < 1 || unit > 247) fail("--unit must be 1..247");
const sim = new SimMeter({
  model,
  unit,
  energyWh: num(v["energy-wh"] as string | undefined, "energy-wh", 0),
});
sim.setPower(num(v["power"] as string | undefined, "power", 0));
await sim.attach(port, { baudRate: num(v["baud"] as string | undefined, "baud", 9600) });
process.stderr.write(`sim-meter: ${model} unit ${unit} on ${port}\n`);
const stop = () => {
  void sim.detach().then(() => process.exit(0));
};
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
