import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import {
  DEFAULT_MAX_GAP,
  decodeField,
  decodeReading,
  distinctReplies,
  encodeField,
  encodeNotAvailable,
  FIELD_NAMES,
  type FieldSpec,
  METER_MAPS,
  METER_MODELS,
  type MeterMap,
  minimumWireBytes,
  planReads,
  pollPlan,
  registerCount,
  TRANSACTION_SILENCE_CHARS,
  wireBytes,
} from "../../../src/hw/meter/maps.js";
import { crc16, crcOk, readRequest, replyLength } from "../../../src/hw/meter/rtu.js";

test("the default gap is the break-even of 2 bytes per register against a 13-byte transaction", () => {
  assert.equal(DEFAULT_MAX_GAP, 6);
});

test("plans for the four maps are the expected fewest transactions", () => {
  const shape = (m: MeterMap) => planReads(m).map((p) => [p.fc, p.start, p.count, p.fields.join(",")]);
  assert.deepEqual(shape(METER_MAPS.sdm630), [
    [4, 0x00, 8, "voltageV,currentA"],
    [4, 0x34, 2, "powerW"],
    [4, 0x48, 2, "energyImportWh"],
  ]);
  assert.deepEqual(shape(METER_MAPS.sdm120), [
    [4, 0x00, 14, "voltageV,currentA,powerW"],
    [4, 0x48, 2, "energyImportWh"],
  ]);
  assert.deepEqual(shape(METER_MAPS["abb-b23"]), [
    [3, 0x5000, 4, "energyImportWh"],
    [3, 0x5b00, 2, "voltageV"],
    [3, 0x5b0c, 10, "currentA,powerW"],
  ]);
  assert.deepEqual(shape(METER_MAPS.em340), [
    [4, 0x00, 2, "voltageV"],
    [4, 0x0c, 2, "currentA"],
    [4, 0x28, 2, "powerW"],
    [4, 0x34, 2, "energyImportWh"],
  ]);
});

test("the planner's wire bytes equal the exhaustive minimum for every map", () => {
  for (const model of METER_MODELS) {
    const m = METER_MAPS[model];
    assert.equal(wireBytes(planReads(m)), minimumWireBytes(m), model);
  }
  assert.equal(wireBytes(planReads(METER_MAPS.sdm630)), 63);
});

test("gap and length limits are honoured: maxGap 0 never reads over a gap; maxCount caps a read", () => {
  assert.equal(planReads(METER_MAPS.sdm120, { maxGap: 0 }).length, 4);
  assert.equal(planReads(METER_MAPS.sdm120, { maxGap: 100 }).length, 1);
  for (const p of planReads(METER_MAPS.sdm120, { maxGap: 100, maxCount: 10 })) assert.ok(p.count <= 10);
});

test("planner property: every field covered once, reads within limits, bytes never above the minimum", () => {
  const field = fc.record({
    fc: fc.constantFrom(3 as const, 4 as const),
    address: fc.integer({ min: 0, max: 400 }),
    type: fc.constantFrom("float32" as const, "int32" as const, "uint64" as const),
  });
  fc.assert(
    fc.property(fc.tuple(field, field, field, field), (fs) => {
      const fields = Object.fromEntries(
        FIELD_NAMES.map((n, i) => [n, { ...fs[i]!, wordOrder: "msw", mul: 1, div: 1 } satisfies FieldSpec]),
      ) as MeterMap["fields"];
      const map: MeterMap = { model: "sdm630", fields };
      const plans = planReads(map);
      const seen = plans.flatMap((p) => p.fields).sort();
      assert.deepEqual(seen, [...FIELD_NAMES].sort());
      for (const p of plans) {
        assert.ok(p.count <= 125);
        for (const n of p.fields) {
          const f = fields[n];
          assert.equal(f.fc, p.fc);
          assert.ok(f.address >= p.start && f.address + registerCount(f.type) <= p.start + p.count);
        }
      }
      assert.ok(wireBytes(plans) <= minimumWireBytes(map));
    }),
    { numRuns: 300 },
  );
});

test("decode of known register images: SDM float32, high word first", () => {
  const m = METER_MAPS.sdm630;
  // 230.5 V = 0x43668000, 12345.678 kWh ≈ 0x4640E6B7
  assert.deepEqual(decodeField(m.fields.voltageV, [0x4366, 0x8000]), { ok: true, value: 230.5 });
  const e = decodeField(m.fields.energyImportWh, [0x4640, 0xe6b7]);
  assert.ok(e.ok && Math.abs(e.value - 12345678) < 1);
  // NaN and infinities are "not available"
  assert.deepEqual(decodeField(m.fields.voltageV, [0x7fc0, 0x0000]), { ok: false, code: "NOT_AVAILABLE" });
  assert.deepEqual(decodeField(m.fields.voltageV, [0x7f80, 0x0000]), { ok: false, code: "NOT_AVAILABLE" });
});

test("decode of known register images: ABB B23 scaled integers, big-endian words, sentinels", () => {
  const f = METER_MAPS["abb-b23"].fields;
  assert.deepEqual(decodeField(f.voltageV, [0x0000, 0x08fd]), { ok: true, value: 230.1 }); // 2301 × 0.1
  assert.deepEqual(decodeField(f.currentA, [0x0000, 0x0cbc]), { ok: true, value: 32.6 }); // 3260 × 0.01
  assert.deepEqual(decodeField(f.powerW, [0xffff, 0xfc18]), { ok: true, value: -10 }); // −1000 × 0.01
  assert.deepEqual(decodeField(f.energyImportWh, [0x0000, 0x0001, 0x0000, 0x0002]), {
    ok: true,
    value: (2 ** 32 + 2) * 10,
  });
  assert.deepEqual(decodeField(f.energyImportWh, [0xffff, 0xffff, 0xffff, 0xffff]), {
    ok: false,
    code: "NOT_AVAILABLE",
  });
  assert.deepEqual(decodeField(f.powerW, [0x7fff, 0xffff]), { ok: false, code: "NOT_AVAILABLE" });
  assert.deepEqual(decodeField(f.voltageV, [0xffff, 0xffff]), { ok: false, code: "NOT_AVAILABLE" });
});

test("decode of known register images: EM340 INT32 least significant word first", () => {
  const f = METER_MAPS.em340.fields;
  assert.deepEqual(decodeField(f.voltageV, [0x08fd, 0x0000]), { ok: true, value: 230.1 });
  assert.deepEqual(decodeField(f.currentA, [0x86a0, 0x0001]), { ok: true, value: 100 }); // 100000 × 0.001
  assert.deepEqual(decodeField(f.powerW, [0xfc18, 0xffff]), { ok: true, value: -100 }); // −1000 × 0.1
  assert.deepEqual(decodeField(f.energyImportWh, [0x3039, 0x0000]), { ok: true, value: 1234500 }); // 12345 × 0.1 kWh
  // The same words in the other order are a different number: the order matters.
  assert.notDeepEqual(decodeField(f.voltageV, [0x0000, 0x08fd]), { ok: true, value: 230.1 });
});

test("decodeField never throws on bad input: wrong length or out-of-range words are BAD_REPLY", () => {
  const f = METER_MAPS.sdm630.fields.voltageV;
  assert.deepEqual(decodeField(f, [1]), { ok: false, code: "BAD_REPLY" });
  assert.deepEqual(decodeField(f, [1, 2, 3]), { ok: false, code: "BAD_REPLY" });
  assert.deepEqual(decodeField(f, [0x10000, 0]), { ok: false, code: "BAD_REPLY" });
  assert.deepEqual(decodeField(f, [-1, 0]), { ok: false, code: "BAD_REPLY" });
});

test("encode → decode round trip for every field of every map", () => {
  const samples = { voltageV: 231.7, currentA: 16.25, powerW: 11040, energyImportWh: 98765400 };
  for (const model of METER_MODELS) {
    const m = METER_MAPS[model];
    for (const n of FIELD_NAMES) {
      const r = decodeField(m.fields[n], encodeField(m.fields[n], samples[n]));
      assert.ok(r.ok, `${model} ${n}`);
      const step =
        m.fields[n].type === "float32" ? Math.abs(samples[n]) * 1e-6 : m.fields[n].mul / m.fields[n].div;
      assert.ok(Math.abs(r.value - samples[n]) <= step, `${model} ${n}: ${r.value}`);
      assert.deepEqual(
        decodeField(m.fields[n], encodeNotAvailable(m.fields[n])).ok,
        false,
        `${model} ${n} NA`,
      );
    }
  }
});

test("decodeReading assembles the four values from the planned replies, and reports the failing field", () => {
  const m = METER_MAPS["abb-b23"];
  const plans = planReads(m);
  const values = { voltageV: 229.9, currentA: 31.99, powerW: 22068.5, energyImportWh: 5_000_010 };
  const image = (broken?: "energyImportWh") =>
    plans.map((p) => {
      const regs = new Array<number>(p.count).fill(0);
      for (const n of p.fields) {
        const f = m.fields[n];
        const words = n === broken ? encodeNotAvailable(f) : encodeField(f, values[n]);
        words.forEach((w, i) => {
          regs[f.address - p.start + i] = w;
        });
      }
      return regs;
    });
  assert.deepEqual(decodeReading(m, plans, image()), { ok: true, values });
  const na = decodeReading(m, plans, image("energyImportWh"));
  assert.equal(na.ok, false);
  assert.ok(!na.ok && na.code === "NOT_AVAILABLE" && na.field === "energyImportWh");
  const short = decodeReading(
    m,
    plans,
    image().map((r) => r.slice(1)),
  );
  assert.ok(!short.ok && short.code === "BAD_REPLY");
  const missing = decodeReading(m, plans, image().slice(1));
  assert.ok(!missing.ok && missing.code === "BAD_REPLY");
});

test("RTU framing: CRC of the classic example, request layout, reply length", () => {
  // 01 04 00 00 00 02 → CRC 71 CB (the well-known SDM voltage read)
  assert.equal(readRequest(1, 4, 0, 2).toString("hex"), "01040000000271cb");
  // 01 03 00 00 00 0A → C5 CD (low byte first on the wire)
  assert.equal(crc16(Buffer.from("01030000000a", "hex")), 0xcdc5);
  assert.ok(crcOk(readRequest(7, 3, 0x5b00, 2)));
  assert.equal(replyLength(Buffer.from([1]), 1, 4), undefined);
  assert.equal(replyLength(Buffer.from([1, 4]), 1, 4), undefined);
  assert.equal(replyLength(Buffer.from([1, 4, 4]), 1, 4), 9);
  assert.equal(replyLength(Buffer.from([1, 0x84]), 1, 4), 5);
  assert.equal(replyLength(Buffer.from([2, 4]), 1, 4), null);
  assert.equal(replyLength(Buffer.from([1, 3]), 1, 4), null);
});

/** Character times of a poll on the line: its bytes and the two silences of each transaction. */
const lineChars = (plans: Parameters<typeof wireBytes>[0]) =>
  wireBytes(plans) + TRANSACTION_SILENCE_CHARS * plans.length;

test("poll plan: the reads the meter makes, least time on the line with the silences, replies told apart", () => {
  const shape = (m: MeterMap) => pollPlan(m).map((p) => [p.fc, p.start, p.count, p.fields.join(",")]);
  assert.equal(TRANSACTION_SILENCE_CHARS, 7);
  assert.deepEqual(shape(METER_MAPS.sdm630), [
    [4, 0x00, 8, "voltageV,currentA"],
    [4, 0x34, 2, "powerW"],
    [4, 0x48, 4, "energyImportWh"],
  ]);
  assert.deepEqual(shape(METER_MAPS.sdm120), [
    [4, 0x00, 14, "voltageV,currentA,powerW"],
    [4, 0x48, 2, "energyImportWh"],
  ]);
  // A tie on the line (71 bytes in 3 reads, 78 in 2: 92 character times each) goes to fewer reads.
  assert.deepEqual(shape(METER_MAPS["abb-b23"]), [
    [3, 0x5000, 4, "energyImportWh"],
    [3, 0x5b00, 22, "voltageV,currentA,powerW"],
  ]);
  // Four distinct reads of 2, 4, 6, 8 registers (92 bytes) against two of 14 and 16 (86 bytes).
  assert.deepEqual(shape(METER_MAPS.em340), [
    [4, 0x00, 14, "voltageV,currentA"],
    [4, 0x28, 16, "powerW,energyImportWh"],
  ]);
  assert.equal(lineChars(distinctReplies(planReads(METER_MAPS.em340))), 120);
  assert.equal(lineChars(pollPlan(METER_MAPS.em340)), 100);
});

test("poll plan property: fields covered once, replies distinct, never slower on the line than the byte plan", () => {
  const field = fc.record({
    fc: fc.constantFrom(3 as const, 4 as const),
    address: fc.integer({ min: 0, max: 400 }),
    type: fc.constantFrom("float32" as const, "int32" as const, "uint64" as const),
  });
  fc.assert(
    fc.property(fc.tuple(field, field, field, field), fc.integer({ min: 0, max: 40 }), (fs, silenceChars) => {
      const fields = Object.fromEntries(
        FIELD_NAMES.map((n, i) => [n, { ...fs[i]!, wordOrder: "msw", mul: 1, div: 1 } satisfies FieldSpec]),
      ) as MeterMap["fields"];
      const map: MeterMap = { model: "sdm630", fields };
      const plans = pollPlan(map, { silenceChars });
      assert.deepEqual(plans.flatMap((p) => p.fields).sort(), [...FIELD_NAMES].sort());
      const keys = plans.map((p) => `${p.fc}/${p.count}`);
      assert.equal(new Set(keys).size, keys.length);
      for (const p of plans) {
        assert.ok(p.count <= 125);
        for (const n of p.fields) {
          const f = fields[n];
          assert.equal(f.fc, p.fc);
          assert.ok(f.address >= p.start && f.address + registerCount(f.type) <= p.start + p.count);
        }
      }
      const cost = (ps: typeof plans) => wireBytes(ps) + silenceChars * ps.length;
      assert.ok(cost(plans) <= cost(distinctReplies(planReads(map))));
    }),
    { numRuns: 300 },
  );
});
