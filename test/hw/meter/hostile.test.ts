/**
 * Field report 7, "a meter that answers twice is read wrong", the pure tier: the reply matching of
 * the bus (byte count, silence before a request) over an in-memory port, the read sizes of every
 * register map, and the plausibility filter.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { interFrameMs, ModbusBus } from "../../../src/hw/meter/bus.js";
import { distinctReplies, METER_MAPS, METER_MODELS, planReads } from "../../../src/hw/meter/maps.js";
import { ModbusMeter } from "../../../src/hw/meter/modbus-meter.js";
import {
  checkReading,
  METER_LIMITS,
  PlausibilityFilter,
  ratedMaxPowerW,
} from "../../../src/hw/meter/plausibility.js";
import { matchReply, readRequest } from "../../../src/hw/meter/rtu.js";
import { MeterError, type MeterReading } from "../../../src/hw/ports.js";
import { SimMeter } from "../../../src/sim/meter/sim-meter.js";
import { waitFor } from "../../helpers/poll.js";
import { FakeSerial } from "./fake-serial.js";

const tick = () => new Promise((r) => setImmediate(r));
const until = async (cond: () => boolean): Promise<void> => {
  await waitFor("the condition", cond, { everyMs: 0, timeoutMs: 5000 });
};

function reading(p: Partial<MeterReading>): MeterReading {
  return { voltageV: 230, currentA: 10, powerW: 6900, energyImportWh: 1_000_000, takenAt: 0, ...p };
}

test("field report: every read of a poll is told apart by function and byte count, on every map", () => {
  for (const model of METER_MODELS) {
    const map = METER_MAPS[model];
    const plans = distinctReplies(planReads(map));
    const keys = plans.map((p) => `${p.fc}/${p.count}`);
    assert.equal(new Set(keys).size, keys.length, `${model}: ${keys.join(" ")}`);
    // Same fields, same starts; a read only grows at its end.
    assert.deepEqual(
      plans.map((p) => [p.fc, p.start, p.fields]),
      planReads(map).map((p) => [p.fc, p.start, p.fields]),
    );
    for (const p of plans) assert.ok(p.count <= 125);
  }
  assert.deepEqual(
    distinctReplies(planReads(METER_MAPS.sdm630)).map((p) => p.count),
    [8, 2, 4],
  );
  assert.deepEqual(
    distinctReplies(planReads(METER_MAPS.em340)).map((p) => p.count),
    [2, 4, 6, 8],
  );
});

test("field report: a reply of our unit and function but another byte count is a stray, not our reply", () => {
  const req = readRequest(1, 4, 0x48, 4);
  assert.equal(req.readUInt16BE(4), 4);
  const reply4 = Buffer.from([1, 4, 4, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(matchReply(reply4, 1, 4, 8), { length: 9, stray: true });
  assert.deepEqual(matchReply(reply4, 1, 4, 4), { length: 9, stray: false });
  assert.deepEqual(matchReply(Buffer.from([1, 0x84, 2, 0, 0]), 1, 4, 8), { length: 5, stray: false });
  assert.equal(matchReply(reply4, 2, 4, 4), null);
  assert.equal(matchReply(Buffer.from([1]), 1, 4, 4), undefined);
});

test("field report: the SDM630 power reply repeated during the energy request is skipped, energy is right", async () => {
  const clock = { now: () => 0, monotonic: () => 0 };
  const sim = new SimMeter({ model: "sdm630", clock, energyWh: 1_000_000 });
  sim.setPower(7360);
  const ports: FakeSerial[] = [];
  const bus = new ModbusBus({
    path: "/dev/fake",
    timeoutMs: 5000,
    retries: 0,
    sleep: async () => {},
    openSerial: () => {
      const p = new FakeSerial(sim);
      p.autoReply = false;
      ports.push(p);
      return p;
    },
  });
  const meter = new ModbusMeter({ bus, model: "sdm630", unit: 1, clock, ownsBus: true });
  try {
    const r = meter.read();
    await until(() => ports[0]?.written.length === 1);
    const port = ports[0]!;
    port.deliver(); // voltage + current
    await until(() => port.written.length === 2);
    const powerReply = port.pending[0]!;
    port.deliver(); // power
    await until(() => port.written.length === 3);
    port.deliver(powerReply); // the power reply again, now while the energy request is out
    await tick();
    port.deliver(); // energy
    const got = await r;
    assert.ok(Math.abs(got.powerW - 7360) < 0.01);
    assert.ok(Math.abs(got.energyImportWh - 1_000_000) < 1, `energy ${got.energyImportWh}`);
    assert.equal(bus.counters().strayFrames, 1);
  } finally {
    await meter.close();
  }
});

test("field report: the next request waits 3.5 character times of silence, and what came meanwhile is thrown away", async () => {
  assert.ok(
    Math.abs(interFrameMs({ baudRate: 9600, parity: "none", stopBits: 1, dataBits: 8 }) - 3.6458) < 0.001,
  );
  assert.ok(
    Math.abs(interFrameMs({ baudRate: 9600, parity: "even", stopBits: 1, dataBits: 8 }) - 4.0104) < 0.001,
  );
  assert.equal(interFrameMs({ baudRate: 115_200, parity: "none", stopBits: 1, dataBits: 8 }), 1.75);
  const clock = { now: () => 0, monotonic: () => 0 };
  const sim = new SimMeter({ model: "sdm630", clock, energyWh: 1000 });
  let t = 0;
  const events: string[] = [];
  const ports: FakeSerial[] = [];
  let repeat: Buffer | undefined;
  const bus = new ModbusBus({
    path: "/dev/fake",
    timeoutMs: 5000,
    retries: 0,
    now: () => t,
    sleep: async (ms) => {
      events.push(`sleep ${ms.toFixed(2)}`);
      // A repeat of the last reply comes in during the wait: the silence starts again.
      t += ms / 2;
      if (repeat) {
        ports[0]!.deliver(repeat);
        repeat = undefined;
      }
      t += ms / 2;
    },
    openSerial: () => {
      const p = new FakeSerial(sim);
      p.autoReply = false;
      const write = p.write.bind(p);
      p.write = (d: Buffer) => {
        events.push(`write at ${t.toFixed(2)}`);
        return write(d);
      };
      ports.push(p);
      return p;
    },
  });
  try {
    const a = bus.readRegisters(1, 4, 0, 2);
    await until(() => ports[0]?.written.length === 1);
    repeat = ports[0]!.pending[0];
    ports[0]!.deliver();
    await a;
    const b = bus.readRegisters(1, 4, 0x48, 4);
    await until(() => ports[0]!.written.length === 2);
    ports[0]!.deliver();
    const regs = await b;
    assert.equal(regs.length, 4);
    assert.deepEqual(events, ["write at 0.00", "sleep 3.65", "sleep 1.82", "write at 5.47"]);
    assert.ok(bus.counters().rxDiscarded >= 9, "the repeat was thrown away");
  } finally {
    await bus.close();
  }
});

for (const model of METER_MODELS) {
  const map = METER_MAPS[model];
  const limits = METER_LIMITS[model];
  const rated = ratedMaxPowerW(limits);

  test(`field report: ${model} plausibility: ranges, backwards energy, energy faster than power and time`, () => {
    const ok = reading({});
    assert.deepEqual(checkReading(map, limits, undefined, ok), { ok: true });
    for (const bad of [
      reading({ energyImportWh: -5000 }),
      reading({ voltageV: 1.5e-33 }),
      reading({ voltageV: 5000 }),
      reading({ currentA: limits.maxCurrentA * 2 }),
      reading({ powerW: rated * 2 }),
      reading({ powerW: -rated * 2 }),
      reading({ energyImportWh: Number.NaN }),
      reading({ energyImportWh: 1e15 }),
    ]) {
      assert.equal(checkReading(map, limits, undefined, bad).ok, false, JSON.stringify(bad));
    }
    const last = reading({ takenAt: 0, powerW: 7360 });
    // One second at 7.36 kW is 2 Wh: the SDM630 power reply read as energy is 6.36 MWh more.
    assert.equal(
      checkReading(map, limits, last, reading({ takenAt: 1000, energyImportWh: 7_360_000 })).ok,
      false,
    );
    assert.equal(
      checkReading(map, limits, last, reading({ takenAt: 1000, energyImportWh: 999_000 })).ok,
      false,
    );
    // An hour at 7.36 kW is fine; at the rated maximum for an hour too, with the power read so.
    assert.equal(
      checkReading(map, limits, last, reading({ takenAt: 3_600_000, energyImportWh: 1_007_360 })).ok,
      true,
    );
    assert.equal(
      checkReading(map, limits, last, reading({ takenAt: 3_600_000, energyImportWh: 1_000_000 + 2 * rated }))
        .ok,
      false,
      "twice the rated maximum",
    );
    // Unchanged energy, or one resolution step within a second, is accepted.
    assert.equal(checkReading(map, limits, last, reading({ takenAt: 1000 })).ok, true);
    const step = map.fields.energyImportWh.type === "float32" ? 1 : map.fields.energyImportWh.mul;
    assert.equal(
      checkReading(map, limits, last, reading({ takenAt: 1000, energyImportWh: 1e6 + step })).ok,
      true,
    );
  });
}

test("field report: the filter keeps the last accepted reading; a refused one changes nothing", () => {
  const f = new PlausibilityFilter(METER_MAPS.sdm630);
  assert.equal(f.judge(reading({ takenAt: 0 })).ok, true);
  assert.equal(f.judge(reading({ takenAt: 1000, energyImportWh: 7_360_000 })).ok, false);
  assert.equal(f.lastAccepted?.energyImportWh, 1_000_000);
  assert.equal(f.judge(reading({ takenAt: 2000, energyImportWh: 1_000_004 })).ok, true);
  assert.equal(f.judge(reading({ takenAt: 3000, energyImportWh: 1_000_000 })).ok, false, "backwards");
  assert.equal(f.lastAccepted?.energyImportWh, 1_000_004);
});

test("field report: the Meter adapter refuses an implausible reading with MeterError IMPLAUSIBLE", async () => {
  const clock = { now: () => 0, monotonic: () => 0 };
  const sim = new SimMeter({ model: "sdm630", clock, energyWh: -5000 });
  const bus = new ModbusBus({
    path: "/dev/fake",
    sleep: async () => {},
    openSerial: () => new FakeSerial(sim),
  });
  const meter = new ModbusMeter({ bus, model: "sdm630", unit: 1, clock, ownsBus: true });
  try {
    await assert.rejects(meter.read(), (e: unknown) => e instanceof MeterError && e.code === "IMPLAUSIBLE");
  } finally {
    await meter.close();
  }
});
