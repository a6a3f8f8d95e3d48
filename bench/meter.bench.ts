/**
 * Meter polling figures, per register map, at 9600 baud 8N1 (one character = 10 bits = 1.0417 ms,
 * the Modbus RTU inter-frame silence = 3.5 characters = 3.646 ms):
 * - bytes on the wire per poll cycle (requests + replies): one read per value, the byte planner's
 *   grouping (planReads), the least any grouping can do (exhaustive), and the reads the daemon
 *   makes (pollPlan, made distinct), also counted on the link;
 * - the wire-time minimum of one poll cycle: for each transaction its request and reply bytes
 *   plus the two silences the protocol requires, the one before the reply (a slave sees the end
 *   of a request only after 3.5 characters of silence: the least turnaround a meter can have; the
 *   simulated meter adds none of its own) and the one before the next request;
 * - the poll-cycle time of the daemon's own meter code (openModbusMeter: ModbusMeter, ModbusBus,
 *   modbus-serial) against the simulated meter through a line paced like a UART, half duplex
 *   (simulated meter ⇄ pty ⇄ SerialLine ⇄ pty ⇄ bus; src/sim/meter/line.ts): cycles back to back,
 *   median of N, and its ratio to the minimum (goal of issue 12: ≤ 1.1);
 * - the same cycle from a reference master (a bare SerialPort, same requests, same timer-kept
 *   silence) on the same chain, in turns with the daemon's code (3 blocks each), so that the
 *   chain's own latency (two socat ptys, the line, timers) and the machine's load show apart
 *   from the daemon's code;
 * - where a cycle's time goes, from the line's own schedule: the time the wire was busy (first
 *   request's first character to last reply's last stop bit), the silences the master left
 *   before its requests on the line, how late the line handed each reply's last byte over (its
 *   own timing error, never early), the silence before each request at the master's port, and
 *   the time from the last reply's stop bit to the read resolving.
 *
 *   npm run bench -- meter                       (PILED_BENCH_METER_CYCLES, default 31)
 */
import { loadavg } from "node:os";
import { SerialPort } from "serialport";
import { interFrameMs, type ModbusBus } from "../src/hw/meter/bus.js";
import {
  distinctReplies,
  FIELD_NAMES,
  METER_MAPS,
  METER_MODELS,
  type MeterModel,
  minimumWireBytes,
  planReads,
  REPLY_OVERHEAD_BYTES,
  REQUEST_BYTES,
  type ReadPlan,
  registerCount,
  wireBytes,
} from "../src/hw/meter/maps.js";
import { openModbusMeter } from "../src/hw/meter/modbus-meter.js";
import { readRequest } from "../src/hw/meter/rtu.js";
import { systemClock } from "../src/hw/ports.js";
import { type LineFrame, SerialLine } from "../src/sim/meter/line.js";
import { SimMeter } from "../src/sim/meter/sim-meter.js";
import { openPtyPair } from "../src/sim/pty.js";
import { median } from "./util.js";

export const name = "meter";

const BAUD = 9600;
const BITS_PER_CHAR = 10; // 8N1
const CHAR_MS = (BITS_PER_CHAR * 1000) / BAUD;
const SILENCE_MS = interFrameMs({ baudRate: BAUD, parity: "none", stopBits: 1, dataBits: 8 });
const CYCLES = Number(process.env["PILED_BENCH_METER_CYCLES"] ?? 33);
/** The daemon's master and the reference master take turns, this many blocks each. */
const ROUNDS = 3;

const r2 = (x: number) => Number(x.toFixed(2));

/** The least time one execution of `plans` takes on the wire, ms (bytes and the two silences). */
export function wireMinimumMs(plans: readonly ReadPlan[], charMs = CHAR_MS, silenceMs = SILENCE_MS): number {
  return wireBytes(plans) * charMs + 2 * plans.length * silenceMs;
}

interface CycleSample {
  cycleMs: number;
  wireBusyMs: number;
  requestSilencesMs: number[];
  replyLatenessMs: number[];
  tailMs: number;
}

/** One cycle's figures from the line's schedule; `prevEnd`: end of the frame before the cycle. */
function sampleOf(frames: LineFrame[], prevEnd: number, t0: number, t1: number): CycleSample {
  const first = frames[0]!;
  const last = frames[frames.length - 1]!;
  const requestSilencesMs: number[] = [];
  const replyLatenessMs: number[] = [];
  let end = prevEnd;
  for (const f of frames) {
    if (f.dir === "toSlave" && Number.isFinite(end)) requestSilencesMs.push(f.startAt - end);
    if (f.dir === "toMaster") replyLatenessMs.push(f.deliveredAt - f.endAt);
    end = f.endAt;
  }
  return {
    cycleMs: t1 - t0,
    wireBusyMs: last.endAt - first.startAt,
    requestSilencesMs,
    replyLatenessMs,
    tailMs: t1 - last.endAt,
  };
}

async function measureModel(
  model: MeterModel,
  line: SerialLine,
  masterPath: string,
  slavePath: string,
  cycles: number,
) {
  const sim = new SimMeter({ model, energyWh: 1_000_000 });
  sim.setPower(7400);
  await sim.attach(slavePath, { baudRate: BAUD });
  // The master's port, timed: when the last byte came in, and the silence before each write.
  let lastRx = Number.NEGATIVE_INFINITY;
  const portGaps: number[] = [];
  const meter = openModbusMeter({
    path: masterPath,
    baudRate: BAUD,
    timeoutMs: 1000,
    retries: 1,
    model,
    unit: 1,
    clock: systemClock,
    openSerial: (st) => {
      const p = new SerialPort({ path: st.path, baudRate: st.baudRate, autoOpen: false });
      p.on("data", () => {
        lastRx = performance.now();
      });
      const write = p.write.bind(p);
      p.write = ((data: Buffer) => {
        if (Number.isFinite(lastRx)) portGaps.push(performance.now() - lastRx);
        return write(data);
      }) as typeof p.write;
      return p;
    },
  });
  const bus = meter.bus as ModbusBus;
  try {
    await meter.read(); // open the port
    await meter.read();
    portGaps.length = 0;
    let prevEnd = line.frames().at(-1)?.endAt ?? Number.NaN;
    line.clearFrames();
    const before = bus.counters();
    const heldBefore = line.counters.heldToSlave;
    const samples: CycleSample[] = [];
    for (let i = 0; i < cycles; i++) {
      const t0 = performance.now();
      await meter.read();
      const t1 = performance.now();
      const frames = line.frames();
      line.clearFrames();
      samples.push(sampleOf(frames, prevEnd, t0, t1));
      prevEnd = frames.at(-1)?.endAt ?? Number.NaN;
    }
    const after = bus.counters();
    return {
      samples,
      portGaps,
      plans: meter.plans,
      bytesMeasured: (after.bytesTx + after.bytesRx - before.bytesTx - before.bytesRx) / cycles,
      retries: after.retries - before.retries,
      requestsHeldByLine: line.counters.heldToSlave - heldBefore,
    };
  } finally {
    await meter.close();
    await sim.detach();
  }
}

/**
 * The reference master: the same requests on the same chain (ptys, line, simulated meter) from a
 * bare SerialPort that takes each reply by its length and waits out the silence before each
 * request on a timer, as the bus does: the chain's own cost without modbus-serial, the bus's
 * queue, the link and the decoder, measured in the same run. (Polling for the silence on every
 * turn of the event loop was tried: on 2 shared cores it starves the socat relays and comes out
 * slower.) Cycle times, ms.
 */
async function referenceCycles(
  model: MeterModel,
  plans: readonly ReadPlan[],
  masterPath: string,
  slavePath: string,
  cycles: number,
  line: SerialLine,
): Promise<number[]> {
  const sim = new SimMeter({ model, energyWh: 1_000_000 });
  sim.setPower(7400);
  await sim.attach(slavePath, { baudRate: BAUD });
  const port = new SerialPort({ path: masterPath, baudRate: BAUD, autoOpen: false });
  await new Promise<void>((res, rej) => port.open((e) => (e ? rej(e) : res())));
  let want = 0;
  let got = 0;
  let lastRx = Number.NEGATIVE_INFINITY;
  let done: (() => void) | null = null;
  port.on("data", (c: Buffer) => {
    lastRx = performance.now();
    got += c.length;
    if (got >= want && done) done();
  });
  const transaction = async (p: ReadPlan) => {
    for (
      let left = lastRx + SILENCE_MS - performance.now();
      left > 0;
      left = lastRx + SILENCE_MS - performance.now()
    ) {
      await new Promise((r) => setTimeout(r, left));
    }
    want = 5 + 2 * p.count;
    got = 0;
    const reply = new Promise<void>((r) => {
      done = r;
    });
    port.write(readRequest(1, p.fc, p.start, p.count));
    await reply;
    done = null;
  };
  try {
    const times: number[] = [];
    for (let i = -2; i < cycles; i++) {
      const t0 = performance.now();
      for (const p of plans) await transaction(p);
      if (i >= 0) times.push(performance.now() - t0);
      line.clearFrames();
    }
    return times;
  } finally {
    await new Promise<void>((r) => port.close(() => r()));
    await sim.detach();
  }
}

type Measured = Awaited<ReturnType<typeof measureModel>>;

function merge(a: Measured, b: Measured): Measured {
  return {
    ...a,
    samples: [...a.samples, ...b.samples],
    portGaps: [...a.portGaps, ...b.portGaps],
    retries: a.retries + b.retries,
    requestsHeldByLine: a.requestsHeldByLine + b.requestsHeldByLine,
  };
}

function figures(model: MeterModel, m: Measured, referenceMs: number) {
  const map = METER_MAPS[model];
  const naive = FIELD_NAMES.reduce(
    (n, f) => n + REQUEST_BYTES + REPLY_OVERHEAD_BYTES + 2 * registerCount(map.fields[f].type),
    0,
  );
  const planned = wireBytes(planReads(map));
  const minimum = minimumWireBytes(map);
  const previous = distinctReplies(planReads(map));
  const wireMin = wireMinimumMs(m.plans);
  const cycle = median(m.samples.map((s) => s.cycleMs));
  const silences = m.samples.flatMap((s) => s.requestSilencesMs);
  return {
    transactions: m.plans.length,
    reads: m.plans.map((p) => `fc${p.fc} 0x${p.start.toString(16)}+${p.count}`),
    bytesRead: wireBytes(m.plans),
    bytesMeasured: m.bytesMeasured,
    bytesNaive: naive,
    bytesPlanned: planned,
    bytesMinimum: minimum,
    plannedOverMinimum: Number((planned / minimum).toFixed(3)),
    bytesOnlyMs: r2(wireBytes(m.plans) * CHAR_MS),
    wireMinimumMs: r2(wireMin),
    cycleMsMedian: r2(cycle),
    cycleMsMin: r2(Math.min(...m.samples.map((s) => s.cycleMs))),
    cycleMsMax: r2(Math.max(...m.samples.map((s) => s.cycleMs))),
    cycleOverWireMinimum: Number((cycle / wireMin).toFixed(3)),
    referenceMasterCycleMsMedian: r2(referenceMs),
    referenceOverWireMinimum: Number((referenceMs / wireMin).toFixed(3)),
    cycleOverReference: Number((cycle / referenceMs).toFixed(3)),
    lineBusyMsMedian: r2(median(m.samples.map((s) => s.wireBusyMs))),
    lineSilenceBeforeRequestMsMin: r2(Math.min(...silences)),
    lineSilenceBeforeRequestMsMedian: r2(median(silences)),
    lineReplyDeliveryLateMsMedian: r2(median(m.samples.flatMap((s) => s.replyLatenessMs))),
    lastStopBitToResultMsMedian: r2(median(m.samples.map((s) => s.tailMs))),
    portGapBeforeRequestMsMin: r2(Math.min(...m.portGaps)),
    portGapBeforeRequestMsMedian: r2(median(m.portGaps)),
    requestsHeldByLine: m.requestsHeldByLine,
    retries: m.retries,
    previousPlan: {
      transactions: previous.length,
      bytes: wireBytes(previous),
      wireMinimumMs: r2(wireMinimumMs(previous)),
    },
  };
}

export async function run(): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {
    baud: BAUD,
    bitsPerChar: BITS_PER_CHAR,
    charMs: Number(CHAR_MS.toFixed(4)),
    interFrameMs: Number(SILENCE_MS.toFixed(3)),
    cycles: ROUNDS * Math.ceil(CYCLES / ROUNDS),
    command: "npm run bench -- meter",
  };
  const master = await openPtyPair();
  const slave = await openPtyPair();
  const line = await SerialLine.open({
    master: master.b,
    slave: slave.a,
    baudRate: BAUD,
    bitsPerChar: BITS_PER_CHAR,
    keepFrames: 64,
  });
  try {
    for (const model of METER_MODELS) {
      const load = loadavg()[0]!;
      const per = Math.ceil(CYCLES / ROUNDS);
      let m: Measured | undefined;
      const ref: number[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        const x = await measureModel(model, line, master.a, slave.b, per);
        m = m ? merge(m, x) : x;
        ref.push(...(await referenceCycles(model, x.plans, master.a, slave.b, per, line)));
      }
      out[model] = { loadAverage1m: r2(load), ...figures(model, m!, median(ref)) };
    }
  } finally {
    await line.close();
    await master.close();
    await slave.close();
  }
  return out;
}
