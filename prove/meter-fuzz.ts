/**
 * Modbus replies fuzzed: a hostile slave on one end of a pty pair answers the meter bus's real
 * requests with the true reply mutated (bit flips, cuts, extra bytes), random bytes, nothing, a
 * repeat of an older reply or the true one. The ModbusMeter on the other end must resolve with
 * the meter's true reading (within one register step) or reject with a MeterError, never hang.
 */
import fc from "fast-check";
import { SerialPort } from "serialport";
import { ModbusBus } from "../src/hw/meter/bus.js";
import { METER_MAPS } from "../src/hw/meter/maps.js";
import { ModbusMeter } from "../src/hw/meter/modbus-meter.js";
import { energyResolutionWh } from "../src/hw/meter/plausibility.js";
import { MeterError, systemClock } from "../src/hw/ports.js";
import { SimMeter } from "../src/sim/meter/sim-meter.js";
import { answer, RequestFramer } from "../src/sim/meter/slave.js";
import { openPtyPair } from "../src/sim/pty.js";
import { type FuzzTally, type Mut, mutate } from "./core-fuzz.js";

type Reply =
  | { kind: "true" }
  | { kind: "mutated"; muts: Mut[] }
  | { kind: "random"; bytes: Uint8Array }
  | { kind: "none" }
  | { kind: "old" };

const mutArb: fc.Arbitrary<Mut> = fc.oneof(
  fc.record({ op: fc.constant("flip" as const), at: fc.nat(60), bit: fc.nat(7) }),
  fc.record({ op: fc.constant("cut" as const), at: fc.nat(60) }),
  fc.record({ op: fc.constant("add" as const), bytes: fc.uint8Array({ maxLength: 10 }) }),
  fc.record({ op: fc.constant("set" as const), at: fc.nat(60), v: fc.nat(255) }),
);
const replyArb: fc.Arbitrary<Reply> = fc.oneof(
  { arbitrary: fc.constant({ kind: "true" as const }), weight: 2 },
  {
    arbitrary: fc.record({
      kind: fc.constant("mutated" as const),
      muts: fc.array(mutArb, { minLength: 1, maxLength: 3 }),
    }),
    weight: 4,
  },
  fc.record({ kind: fc.constant("random" as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 40 }) }),
  fc.constant({ kind: "none" as const }),
  fc.constant({ kind: "old" as const }),
);

const withTimeout = <T>(p: Promise<T>, ms: number) =>
  Promise.race([p, new Promise<"hung">((r) => setTimeout(() => r("hung"), ms).unref())]);

export async function fuzzMeter(reads: number, seed: number, t: FuzzTally): Promise<void> {
  const plan = fc.sample(replyArb, { numRuns: reads * 6, seed });
  const pair = await openPtyPair();
  const model = "sdm120";
  const sim = new SimMeter({ model, energyWh: 12_345 });
  const slave = new SerialPort({ path: pair.b, baudRate: 115200 });
  await new Promise<void>((ok, fail) => slave.once("open", () => ok()).once("error", fail));
  const framer = new RequestFramer();
  let k = 0;
  let old: Buffer | undefined;
  slave.on("data", (b: Buffer) => {
    for (const req of framer.push(b)) {
      const good = answer(req, 1, sim.registers);
      if (!good) continue;
      const r = plan[k++ % plan.length]!;
      const out =
        r.kind === "true"
          ? good
          : r.kind === "mutated"
            ? Buffer.from(mutate(good, r.muts))
            : r.kind === "random"
              ? Buffer.from(r.bytes)
              : r.kind === "old"
                ? old
                : undefined;
      old = good;
      if (out && out.length > 0) slave.write(out);
    }
  });
  const bus = new ModbusBus({ path: pair.a, baudRate: 115200, timeoutMs: 60, retries: 1, backoffMs: 2 });
  const meter = new ModbusMeter({ bus, model, unit: 1, clock: systemClock, ownsBus: true });
  const map = METER_MAPS[model];
  try {
    for (let i = 0; i < reads; i++) {
      t.cases++;
      t.inputs++;
      const truth = sim.values().energyImportWh;
      const r = await withTimeout(
        meter.read().then(
          (v) => ({ ok: true as const, v }),
          (e: unknown) => ({ ok: false as const, e }),
        ),
        5000,
      );
      if (r === "hung") {
        t.violations.push(`meter: read ${i} did not end within 5 s`);
        break;
      }
      if (r.ok) {
        t.answered++;
        if (Math.abs(r.v.energyImportWh - truth) > energyResolutionWh(map, truth) + 0.01)
          t.violations.push(`meter: accepted energy ${r.v.energyImportWh}, the meter holds ${truth}`);
      } else if (r.e instanceof MeterError) t.counted++;
      else t.violations.push(`meter: read rejected with a non-MeterError: ${String(r.e)}`);
    }
  } finally {
    await meter.close().catch(() => undefined);
    await new Promise<void>((r) => slave.close(() => r()));
    await pair.close();
  }
}
