/**
 * Meter polling figures, per register map:
 * - bytes on the wire per poll cycle (requests + replies): one read per value, the planner's
 *   grouping, and the least any grouping can do (exhaustive), with the planner/minimum ratio;
 *   the planned figure is also counted on a real link;
 * - poll-cycle time at 9600 baud 8N1 through a line that paces every byte like a UART
 *   (simulated meter ⇄ pty ⇄ pacing line ⇄ pty ⇄ bus), median of N cycles, beside the time the
 *   bytes alone need on the wire;
 * - the silence the bus leaves between the last byte of a reply and its next request, measured at
 *   the master's port (Modbus RTU asks for 3.5 character times, 3.65 ms at 9600 8N1).
 */
import { SerialPort } from "serialport";
import { interFrameMs, ModbusBus } from "../src/hw/meter/bus.js";
import {
  FIELD_NAMES,
  METER_MAPS,
  METER_MODELS,
  minimumWireBytes,
  planReads,
  REPLY_OVERHEAD_BYTES,
  REQUEST_BYTES,
  registerCount,
  wireBytes,
} from "../src/hw/meter/maps.js";
import { ModbusMeter } from "../src/hw/meter/modbus-meter.js";
import { systemClock } from "../src/hw/ports.js";
import { SerialLine } from "../src/sim/meter/line.js";
import { SimMeter } from "../src/sim/meter/sim-meter.js";
import { openPtyPair } from "../src/sim/pty.js";
import { median } from "./util.js";

export const name = "meter";

const BAUD = 9600;
const BITS_PER_CHAR = 10; // 8N1
const CYCLES = 9;

export async function run(): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = { baud: BAUD, cycles: CYCLES };
  const master = await openPtyPair();
  const slave = await openPtyPair();
  const line = await SerialLine.open({
    master: master.b,
    slave: slave.a,
    baudRate: BAUD,
    bitsPerChar: BITS_PER_CHAR,
  });
  try {
    for (const model of METER_MODELS) {
      const map = METER_MAPS[model];
      const plans = planReads(map);
      const naive = FIELD_NAMES.reduce(
        (n, f) => n + REQUEST_BYTES + REPLY_OVERHEAD_BYTES + 2 * registerCount(map.fields[f].type),
        0,
      );
      const planned = wireBytes(plans);
      const minimum = minimumWireBytes(map);

      const sim = new SimMeter({ model, energyWh: 1_000_000 });
      sim.setPower(7400);
      await sim.attach(slave.b, { baudRate: BAUD });
      // The master's port, timed: when the last byte came in, and the silence before each write.
      let lastRx = Number.NEGATIVE_INFINITY;
      const gaps: number[] = [];
      const bus = new ModbusBus({
        path: master.a,
        baudRate: BAUD,
        timeoutMs: 1000,
        retries: 0,
        openSerial: (st) => {
          const p = new SerialPort({ path: st.path, baudRate: st.baudRate, autoOpen: false });
          p.on("data", () => {
            lastRx = performance.now();
          });
          const write = p.write.bind(p);
          p.write = ((data: Buffer) => {
            if (Number.isFinite(lastRx)) gaps.push(performance.now() - lastRx);
            return write(data);
          }) as typeof p.write;
          return p;
        },
      });
      const meter = new ModbusMeter({ bus, model, unit: 1, clock: systemClock, ownsBus: true });
      try {
        await meter.read(); // open the port
        gaps.length = 0;
        const before = bus.counters();
        const times: number[] = [];
        for (let i = 0; i < CYCLES; i++) {
          const t0 = performance.now();
          await meter.read();
          times.push(performance.now() - t0);
        }
        const after = bus.counters();
        const measured = (after.bytesTx + after.bytesRx - before.bytesTx - before.bytesRx) / CYCLES;
        out[model] = {
          transactions: meter.plans.length,
          bytesRead: wireBytes(meter.plans),
          bytesNaive: naive,
          bytesPlanned: planned,
          bytesMinimum: minimum,
          plannedOverMinimum: Number((planned / minimum).toFixed(3)),
          bytesMeasured: measured,
          wireTimeMs: Number(((planned * BITS_PER_CHAR * 1000) / BAUD).toFixed(1)),
          cycleMsMedian: Number(median(times).toFixed(1)),
          interFrameMsRequired: Number(
            interFrameMs({ baudRate: BAUD, parity: "none", stopBits: 1, dataBits: 8 }).toFixed(2),
          ),
          gapBeforeRequestMsMin: Number(Math.min(...gaps).toFixed(2)),
          gapBeforeRequestMsMedian: Number(median(gaps).toFixed(2)),
        };
      } finally {
        await meter.close();
        await sim.detach();
      }
    }
  } finally {
    await line.close();
    await master.close();
    await slave.close();
  }
  return out;
}
