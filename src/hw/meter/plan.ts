/**
 * The read planner of the energy-meter register maps (maps.ts): which register spans to read
 * in which requests, and what they cost on the wire. Pure.
 */
import { FIELD_NAMES, type FieldName, type FunctionCode, type MeterMap, registerCount } from "./maps.js";

/** Bytes of an FC03/FC04 request frame: unit, fc, address (2), count (2), CRC (2). */
export const REQUEST_BYTES = 8;
/** Bytes of a reply frame besides its registers: unit, fc, byte count, CRC (2). */
export const REPLY_OVERHEAD_BYTES = 5;
/** A Modbus read returns at most 125 registers. */
export const MAX_REGISTERS_PER_READ = 125;

/**
 * The widest gap of unwanted registers worth reading over: bridging a gap of g registers costs
 * 2g bytes, a separate transaction costs REQUEST_BYTES + REPLY_OVERHEAD_BYTES = 13; so bridge
 * while 2g < 13, i.e. g ≤ 6.
 */
export const DEFAULT_MAX_GAP = Math.floor((REQUEST_BYTES + REPLY_OVERHEAD_BYTES - 1) / 2);

export interface ReadPlan {
  fc: FunctionCode;
  start: number;
  count: number;
  fields: FieldName[];
}

export interface PlanOptions {
  /** Largest number of unwanted registers to read over rather than open a new transaction. */
  maxGap?: number;
  maxCount?: number;
  /** Fields to read (default: all four). */
  fields?: readonly FieldName[];
}

interface Span {
  name: FieldName;
  fc: FunctionCode;
  start: number;
  end: number; // exclusive
}

function spans(map: MeterMap, names: readonly FieldName[]): Span[] {
  return names
    .map((name) => {
      const f = map.fields[name];
      return { name, fc: f.fc, start: f.address, end: f.address + registerCount(f.type) };
    })
    .sort((a, b) => a.fc - b.fc || a.start - b.start || a.end - b.end);
}

/**
 * Groups the fields into the fewest contiguous read transactions: per function code, fields in
 * address order, merged while the gap between them is at most `maxGap` and the read stays within
 * `maxCount` registers. With a length limit that never binds, each gap is an independent choice
 * (bridge for 2g bytes or split for 13), so this greedy pass is also the byte-optimal plan for
 * maxGap = DEFAULT_MAX_GAP.
 */
export function planReads(map: MeterMap, opts: PlanOptions = {}): ReadPlan[] {
  const maxGap = opts.maxGap ?? DEFAULT_MAX_GAP;
  const maxCount = opts.maxCount ?? MAX_REGISTERS_PER_READ;
  const plans: ReadPlan[] = [];
  let cur: ReadPlan | undefined;
  for (const s of spans(map, opts.fields ?? FIELD_NAMES)) {
    if (cur && cur.fc === s.fc) {
      const curEnd = cur.start + cur.count;
      const gap = s.start - curEnd;
      const newEnd = Math.max(curEnd, s.end);
      if (gap <= maxGap && newEnd - cur.start <= maxCount) {
        cur.count = newEnd - cur.start;
        cur.fields.push(s.name);
        continue;
      }
    }
    cur = { fc: s.fc, start: s.start, count: s.end - s.start, fields: [s.name] };
    plans.push(cur);
  }
  return plans;
}

/**
 * Makes every read of a poll tell its reply apart: a Modbus RTU reply carries no address and no
 * transaction id, only unit, function and byte count, so two reads of the same function and size
 * (the SDM630's power and energy, the EM340's four fields) would take each other's replies when a
 * meter or an adapter repeats or delays one. Each read that shares its function and size with an
 * earlier one is extended at its end by whole 32-bit steps until its size is unique; the decoder
 * only looks at its own fields' offsets, so the extra registers are read and ignored.
 */
export function distinctReplies(plans: readonly ReadPlan[], maxCount = MAX_REGISTERS_PER_READ): ReadPlan[] {
  const used = new Map<FunctionCode, Set<number>>();
  return plans.map((p) => {
    const sizes = used.get(p.fc) ?? new Set<number>();
    used.set(p.fc, sizes);
    let count = p.count;
    while (sizes.has(count) && count + 2 <= maxCount) count += 2;
    sizes.add(count);
    return { ...p, count, fields: [...p.fields] };
  });
}

/** Request + reply bytes on the wire for one execution of the plans. */
export function wireBytes(plans: readonly ReadPlan[]): number {
  return plans.reduce((n, p) => n + REQUEST_BYTES + REPLY_OVERHEAD_BYTES + 2 * p.count, 0);
}

/**
 * The least bytes on the wire any grouping of the fields can achieve, by exhaustive dynamic
 * programming over the address-ordered fields (an independent check of planReads).
 */
export function minimumWireBytes(map: MeterMap, fields: readonly FieldName[] = FIELD_NAMES): number {
  const all = spans(map, fields);
  let total = 0;
  for (const fc of [3, 4] as const) {
    const s = all.filter((x) => x.fc === fc);
    // best[i] = least bytes to read s[0..i-1]
    const best: number[] = [0];
    for (let i = 1; i <= s.length; i++) {
      let b = Number.POSITIVE_INFINITY;
      for (let j = 0; j < i; j++) {
        const start = s[j]!.start;
        let end = 0;
        for (let k = j; k < i; k++) end = Math.max(end, s[k]!.end);
        if (end - start > MAX_REGISTERS_PER_READ) continue;
        b = Math.min(b, best[j]! + REQUEST_BYTES + REPLY_OVERHEAD_BYTES + 2 * (end - start));
      }
      best.push(b);
    }
    total += best[s.length]!;
  }
  return total;
}

/**
 * Character times a transaction costs on the line beyond its bytes: the silence after the request
 * (a slave sees the end of a request only by 3.5 characters of silence, so it cannot answer
 * sooner) and the silence after the reply (the master's wait before its next request).
 */
export const TRANSACTION_SILENCE_CHARS = 7;

export interface PollPlanOptions extends PlanOptions {
  /** Character times of silence each transaction adds (default TRANSACTION_SILENCE_CHARS). */
  silenceChars?: number;
}

/** Every split of the address-ordered spans of one function code into contiguous reads. */
function groupings(s: readonly Span[], maxGap: number, maxCount: number): ReadPlan[][] {
  const out: ReadPlan[][] = [];
  if (s.length === 0) return [[]];
  for (let cuts = 0; cuts < 1 << (s.length - 1); cuts++) {
    const plans: ReadPlan[] = [];
    let ok = true;
    for (let i = 0; i < s.length && ok; i++) {
      const x = s[i]!;
      const cur = plans[plans.length - 1];
      if (i > 0 && !(cuts & (1 << (i - 1))) && cur) {
        const curEnd = cur.start + cur.count;
        const newEnd = Math.max(curEnd, x.end);
        ok = x.start - curEnd <= maxGap && newEnd - cur.start <= maxCount;
        cur.count = newEnd - cur.start;
        cur.fields.push(x.name);
      } else {
        plans.push({ fc: x.fc, start: x.start, count: x.end - x.start, fields: [x.name] });
      }
    }
    if (ok) out.push(plans);
  }
  return out;
}

/**
 * The reads of one poll: of every grouping of the fields into contiguous reads, made distinct
 * (distinctReplies), the one that takes the least time on the line, i.e. the fewest character
 * times counting its bytes and `silenceChars` per transaction; ties go to fewer transactions,
 * then fewer bytes. Exhaustive (2^(n-1) groupings per function code, n ≤ 4 fields). Unlike
 * planReads, which minimises bytes before the reads are made distinct, this counts the registers
 * distinctReplies adds: the EM340's four reads of 2 registers (made 2, 4, 6 and 8) become two of
 * 14 and 16, fewer bytes and two transactions fewer.
 */
export function pollPlan(map: MeterMap, opts: PollPlanOptions = {}): ReadPlan[] {
  const maxGap = opts.maxGap ?? Number.POSITIVE_INFINITY;
  const maxCount = opts.maxCount ?? MAX_REGISTERS_PER_READ;
  const silenceChars = opts.silenceChars ?? TRANSACTION_SILENCE_CHARS;
  const all = spans(map, opts.fields ?? FIELD_NAMES);
  let best: { plans: ReadPlan[]; cost: number; bytes: number } | undefined;
  for (const g3 of groupings(
    all.filter((x) => x.fc === 3),
    maxGap,
    maxCount,
  )) {
    for (const g4 of groupings(
      all.filter((x) => x.fc === 4),
      maxGap,
      maxCount,
    )) {
      const plans = distinctReplies([...g3, ...g4], maxCount);
      const bytes = wireBytes(plans);
      const cost = bytes + silenceChars * plans.length;
      const better =
        !best ||
        cost < best.cost ||
        (cost === best.cost &&
          (plans.length < best.plans.length || (plans.length === best.plans.length && bytes < best.bytes)));
      if (better) best = { plans, cost, bytes };
    }
  }
  return best?.plans ?? [];
}

// ---------------------------------------------------------------------------------------------
// Decoding and encoding
