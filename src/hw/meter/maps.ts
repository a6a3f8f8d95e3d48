/**
 * Energy-meter register maps as data and the reply decoder (the read planner: plan.ts, re-exported here). Pure: no I/O, no
 * timers, never throws on a reply; a bad or "not available" value comes back as a typed result.
 *
 * Sources of the addresses (checked against public drivers and manufacturer tables):
 * - Eastron SDM630 / SDM120 (input registers, FC04, IEEE-754 float32, high word first):
 *   Eastron "SDM630 Modbus protocol" and "SDM120 Modbus protocol" input-register tables; the same
 *   addresses in merlokk/SmartHome `lib/eastron.h` (SDM220T/SDM630 defines) and ilseh/Oppleo
 *   `src/nl/oppleo/utils/modbus/SDM120.py`: L1 voltage 0x0000, L1 current 0x0006, phase-1 power
 *   0x000C (the SDM120's only power), total system power 0x0034, import active energy 0x0048 kWh.
 * - ABB B23 (holding registers, FC03, big-endian words): ABB "B21/B23/B24 Modbus communication"
 *   (2CMC485003M0201) and NilsW122/esphome_abb_b23 `abb_b23_meter_registers.h`: voltage L1 0x5B00
 *   u32 0.1 V, current L1 0x5B0C u32 0.01 A; total active power 0x5B14 s32 0.01 W and active import
 *   energy 0x5000 u64 0.01 kWh (as in the Victron dbus-modbus-client ABB driver). "Not available"
 *   is all ones for unsigned types and 0x7FFF… for signed ones (as in openWB's B23 module).
 * - Carlo Gavazzi EM340 (FC04, INT32 with the least significant word first): Carlo Gavazzi
 *   "EM24/EM340 communication protocol" table: V L1-N 0x0000 ×0.1 V, A L1 0x000C ×0.001 A,
 *   W sys 0x0028 ×0.1 W, kWh(+) TOT 0x0034 ×0.1 kWh (the em340d daemon config uses the same).
 */

export {
  DEFAULT_MAX_GAP,
  distinctReplies,
  MAX_REGISTERS_PER_READ,
  minimumWireBytes,
  type PlanOptions,
  type PollPlanOptions,
  planReads,
  pollPlan,
  REPLY_OVERHEAD_BYTES,
  REQUEST_BYTES,
  type ReadPlan,
  TRANSACTION_SILENCE_CHARS,
  wireBytes,
} from "./plan.js";

import type { ReadPlan } from "./plan.js";

export type MeterModel = "sdm630" | "sdm120" | "abb-b23" | "em340";
export const METER_MODELS: readonly MeterModel[] = ["sdm630", "sdm120", "abb-b23", "em340"];

export type RegisterType = "float32" | "int32" | "uint32" | "int64" | "uint64";
/** "msw": the most significant 16-bit word comes first (big-endian); "lsw": least significant first. */
export type WordOrder = "msw" | "lsw";
export type FunctionCode = 3 | 4;
export type FieldName = "voltageV" | "currentA" | "powerW" | "energyImportWh";
export const FIELD_NAMES: readonly FieldName[] = ["voltageV", "currentA", "powerW", "energyImportWh"];

export interface FieldSpec {
  fc: FunctionCode;
  /** Zero-based register address (protocol address, not the 3xxxx/4xxxx label). */
  address: number;
  type: RegisterType;
  wordOrder: WordOrder;
  /**
   * Reported value = raw × mul / div, in the unit of MeterReading (V, A, W, Wh). A rational scale
   * keeps 2301 × 0.1 V an exact 230.1 instead of 230.10000000000002.
   */
  mul: number;
  div: number;
  /** Raw integer pattern the meter sends for "not available" (integers only; float NaN always is). */
  notAvailable?: bigint;
}

export interface MeterMap {
  model: MeterModel;
  fields: Readonly<Record<FieldName, FieldSpec>>;
}

const WORDS: Record<RegisterType, number> = { float32: 2, int32: 2, uint32: 2, int64: 4, uint64: 4 };

export function registerCount(type: RegisterType): number {
  return WORDS[type];
}

const U32_NA = 0xffff_ffffn;
const S32_NA = 0x7fff_ffffn;
const U64_NA = 0xffff_ffff_ffff_ffffn;

function sdmFloat(address: number, mul = 1): FieldSpec {
  return { fc: 4, address, type: "float32", wordOrder: "msw", mul, div: 1 };
}

export const METER_MAPS: Readonly<Record<MeterModel, MeterMap>> = {
  sdm630: {
    model: "sdm630",
    fields: {
      voltageV: sdmFloat(0x0000),
      currentA: sdmFloat(0x0006),
      powerW: sdmFloat(0x0034),
      energyImportWh: sdmFloat(0x0048, 1000),
    },
  },
  sdm120: {
    model: "sdm120",
    fields: {
      voltageV: sdmFloat(0x0000),
      currentA: sdmFloat(0x0006),
      powerW: sdmFloat(0x000c),
      energyImportWh: sdmFloat(0x0048, 1000),
    },
  },
  "abb-b23": {
    model: "abb-b23",
    fields: {
      voltageV: {
        fc: 3,
        address: 0x5b00,
        type: "uint32",
        wordOrder: "msw",
        mul: 1,
        div: 10,
        notAvailable: U32_NA,
      },
      currentA: {
        fc: 3,
        address: 0x5b0c,
        type: "uint32",
        wordOrder: "msw",
        mul: 1,
        div: 100,
        notAvailable: U32_NA,
      },
      powerW: {
        fc: 3,
        address: 0x5b14,
        type: "int32",
        wordOrder: "msw",
        mul: 1,
        div: 100,
        notAvailable: S32_NA,
      },
      energyImportWh: {
        fc: 3,
        address: 0x5000,
        type: "uint64",
        wordOrder: "msw",
        mul: 10,
        div: 1,
        notAvailable: U64_NA,
      },
    },
  },
  em340: {
    model: "em340",
    fields: {
      voltageV: {
        fc: 4,
        address: 0x0000,
        type: "int32",
        wordOrder: "lsw",
        mul: 1,
        div: 10,
        notAvailable: S32_NA,
      },
      currentA: {
        fc: 4,
        address: 0x000c,
        type: "int32",
        wordOrder: "lsw",
        mul: 1,
        div: 1000,
        notAvailable: S32_NA,
      },
      powerW: {
        fc: 4,
        address: 0x0028,
        type: "int32",
        wordOrder: "lsw",
        mul: 1,
        div: 10,
        notAvailable: S32_NA,
      },
      energyImportWh: {
        fc: 4,
        address: 0x0034,
        type: "int32",
        wordOrder: "lsw",
        mul: 100,
        div: 1,
        notAvailable: S32_NA,
      },
    },
  },
};

export function isMeterModel(s: string): s is MeterModel {
  return (METER_MODELS as readonly string[]).includes(s);
}

// ---------------------------------------------------------------------------------------------
// Wire cost and planning

export type DecodeResult =
  | { ok: true; values: Record<FieldName, number> }
  | { ok: false; code: "NOT_AVAILABLE" | "BAD_REPLY"; field?: FieldName; message: string };

export type FieldValue = { ok: true; value: number } | { ok: false; code: "NOT_AVAILABLE" | "BAD_REPLY" };

/** The registers of one field in most-significant-first order. */
function orderedWords(words: readonly number[], order: WordOrder): number[] {
  return order === "msw" ? [...words] : [...words].reverse();
}

/** Decodes one field from its registers (16-bit values, in wire order). Never throws. */
export function decodeField(spec: FieldSpec, words: readonly number[]): FieldValue {
  const n = registerCount(spec.type);
  if (words.length !== n || words.some((w) => !Number.isInteger(w) || w < 0 || w > 0xffff)) {
    return { ok: false, code: "BAD_REPLY" };
  }
  const msw = orderedWords(words, spec.wordOrder);
  const buf = Buffer.alloc(2 * n);
  for (const [i, w] of msw.entries()) buf.writeUInt16BE(w, 2 * i);
  let value: number;
  if (spec.type === "float32") {
    value = buf.readFloatBE(0);
    if (!Number.isFinite(value)) return { ok: false, code: "NOT_AVAILABLE" };
  } else {
    const raw = n === 2 ? BigInt(buf.readUInt32BE(0)) : buf.readBigUInt64BE(0);
    if (spec.notAvailable !== undefined && raw === spec.notAvailable)
      return { ok: false, code: "NOT_AVAILABLE" };
    const signed =
      spec.type === "int32"
        ? BigInt(buf.readInt32BE(0))
        : spec.type === "int64"
          ? buf.readBigInt64BE(0)
          : raw;
    value = Number(signed);
  }
  return { ok: true, value: (value * spec.mul) / spec.div };
}

/**
 * Decodes the replies of `plans` (replies[i] holds the registers of plans[i]) into the four values.
 * Never throws; a short reply is BAD_REPLY, a sentinel or a non-finite float NOT_AVAILABLE.
 */
export function decodeReading(
  map: MeterMap,
  plans: readonly ReadPlan[],
  replies: readonly (readonly number[])[],
): DecodeResult {
  const values: Partial<Record<FieldName, number>> = {};
  if (replies.length !== plans.length) {
    return {
      ok: false,
      code: "BAD_REPLY",
      message: `expected ${plans.length} replies, got ${replies.length}`,
    };
  }
  for (const [i, plan] of plans.entries()) {
    const regs = replies[i]!;
    if (regs.length !== plan.count) {
      return {
        ok: false,
        code: "BAD_REPLY",
        message: `read ${i}: expected ${plan.count} registers, got ${regs.length}`,
      };
    }
    for (const name of plan.fields) {
      const spec = map.fields[name];
      const off = spec.address - plan.start;
      const r = decodeField(spec, regs.slice(off, off + registerCount(spec.type)));
      if (!r.ok) return { ok: false, code: r.code, field: name, message: `${map.model} ${name}: ${r.code}` };
      values[name] = r.value;
    }
  }
  for (const name of FIELD_NAMES) {
    if (values[name] === undefined)
      return { ok: false, code: "BAD_REPLY", field: name, message: `${name} not planned` };
  }
  return { ok: true, values: values as Record<FieldName, number> };
}

/**
 * The registers (wire order) that make a meter report `value` for this field: the inverse of
 * decodeField, for simulators and tests. Integers round to the nearest raw step and saturate
 * short of the sentinel.
 */
export function encodeField(spec: FieldSpec, value: number): number[] {
  const n = registerCount(spec.type);
  const buf = Buffer.alloc(2 * n);
  const scaled = (value * spec.div) / spec.mul;
  if (spec.type === "float32") {
    buf.writeFloatBE(scaled, 0);
  } else {
    const signed = spec.type === "int32" || spec.type === "int64";
    const bits = BigInt(16 * n);
    const max = signed ? (1n << (bits - 1n)) - 2n : (1n << bits) - 2n;
    const min = signed ? -(1n << (bits - 1n)) : 0n;
    let raw = BigInt(Math.round(Number.isFinite(scaled) ? scaled : 0));
    if (raw > max) raw = max;
    if (raw < min) raw = min;
    if (n === 2) buf.writeUInt32BE(Number(BigInt.asUintN(32, raw)), 0);
    else buf.writeBigUInt64BE(BigInt.asUintN(64, raw), 0);
  }
  const msw: number[] = [];
  for (let i = 0; i < n; i++) msw.push(buf.readUInt16BE(2 * i));
  return spec.wordOrder === "msw" ? msw : msw.reverse();
}

/** The registers (wire order) of the field's "not available" sentinel (NaN for floats). */
export function encodeNotAvailable(spec: FieldSpec): number[] {
  if (spec.type === "float32" || spec.notAvailable === undefined) return encodeField(spec, Number.NaN);
  const n = registerCount(spec.type);
  const msw: number[] = [];
  for (let i = n - 1; i >= 0; i--) msw.push(Number((spec.notAvailable >> BigInt(16 * i)) & 0xffffn));
  return spec.wordOrder === "msw" ? msw : msw.reverse();
}
