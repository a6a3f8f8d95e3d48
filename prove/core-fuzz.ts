/**
 * In-process fuzzing of the pile core (src/pile, its public API only) with fast-check: Control
 * fragments and messages, charging codes inside otherwise well-formed exchanges, technician
 * commands and whole malformed inputs. Each case runs on a fresh booted core; the checks:
 *   - handle() never throws;
 *   - no `recordCode` (the only way to a session), no contactor closing and no lock engaging,
 *     since no case carries a valid proof with a valid code (a relay test asked for in a
 *     well-formed technician command is the one exemption for the contactor);
 *   - every message is answered on its connection or counted (silent drops are counted).
 */
import { randomBytes } from "node:crypto";
import fc from "fast-check";
import {
  defaultPileCoreConfig,
  type LedgerView,
  PileCore,
  type PileEffect,
  type PileInput,
} from "../src/pile/index.js";
import { FINAL, fragment, Reassembler } from "../src/protocol/fragments.js";
import {
  type CodeClaims,
  deriveVerifySecret,
  deviceProof,
  encodeMessage,
  KeyRing,
  sealCode,
  stopProof,
  toHex,
} from "../src/protocol/index.js";
import { nodeSuite } from "../src/protocol/node-suite.js";

const PILE_ID = "FUZZ-1";
const KEY_ID = 7;
const KEY = new Uint8Array(32).map((_, i) => i * 13 + 5);
const T0 = 1_717_200_000_000;

export interface FuzzTally {
  cases: number;
  inputs: number;
  answered: number;
  counted: number;
  violations: string[];
}

export const newTally = (): FuzzTally => ({ cases: 0, inputs: 0, answered: 0, counted: 0, violations: [] });

class Ledger implements LedgerView {
  used = new Set<string>();
  isUsed(id: Uint8Array): boolean {
    return this.used.has(toHex(id));
  }
}

interface Code {
  code: Uint8Array;
  codeId: Uint8Array;
  v: Uint8Array;
}

function issue(over: Partial<CodeClaims> = {}): Code {
  const ring = new KeyRing(nodeSuite);
  const entry = ring.add(KEY_ID, KEY);
  const claims: CodeClaims = {
    issuedAt: BigInt(T0),
    validFor: 3600,
    maxEnergyWh: 0,
    maxDurationS: 0,
    carrier: "vehicle",
    deviceId: "VIN-FUZZ",
    pileId: PILE_ID,
    ...over,
  };
  const codeId = new Uint8Array(randomBytes(16));
  const sealed = sealCode(nodeSuite, entry, codeId, new Uint8Array(randomBytes(12)), claims);
  if (!sealed.ok) throw new Error(`issue: ${sealed.error}`);
  return { code: sealed.value, codeId, v: deriveVerifySecret(nodeSuite, entry.key, codeId) };
}

/** A fresh core, booted healthy with a meter reading, one carrier connected as "c1". */
class Bench {
  readonly core: PileCore;
  mono = 1000;
  wall = T0 + 60_000;
  constructor() {
    const ring = new KeyRing(nodeSuite);
    ring.add(KEY_ID, KEY);
    this.core = new PileCore(
      { ...defaultPileCoreConfig, pileId: PILE_ID },
      { suite: nodeSuite, keys: ring, ledger: new Ledger(), random: (n) => new Uint8Array(randomBytes(n)) },
    );
    this.feed({
      type: "boot",
      feedback: { contactorClosed: false, lockEngaged: false, vehicle: true, emergencyStop: false },
      floor: 0n,
    } as PileInput);
    this.feed({ type: "lockFeedback", engaged: false } as PileInput);
    this.feed({
      type: "meterReading",
      reading: { energyImportWh: 1000, powerW: 0, takenAt: this.mono },
    } as PileInput);
    this.feed({ type: "connected", connId: "c1" } as PileInput);
  }
  feed(input: Omit<PileInput, "mono" | "wall"> | Record<string, unknown>): PileEffect[] {
    this.mono += 3;
    this.wall += 3;
    return this.core.handle({ mono: this.mono, wall: this.wall, ...input } as PileInput);
  }
}

/** The kinds of one fuzz step. */
export type Step =
  | { kind: "bytes"; bytes: Uint8Array }
  | { kind: "mutatedHello"; muts: Mut[] }
  | { kind: "mutatedPresent"; part: "proof" | "code" | "whole"; muts: Mut[] }
  | { kind: "mutatedStop"; muts: Mut[] }
  | { kind: "fragments"; frags: Uint8Array[] }
  | { kind: "technician"; cmd: unknown }
  | { kind: "input"; input: unknown }
  | { kind: "tick"; ms: number };

export type Mut =
  | { op: "flip"; at: number; bit: number }
  | { op: "cut"; at: number }
  | { op: "add"; bytes: Uint8Array }
  | { op: "set"; at: number; v: number };

const mut: fc.Arbitrary<Mut> = fc.oneof(
  fc.record({ op: fc.constant("flip" as const), at: fc.nat(400), bit: fc.nat(7) }),
  fc.record({ op: fc.constant("cut" as const), at: fc.nat(400) }),
  fc.record({ op: fc.constant("add" as const), bytes: fc.uint8Array({ maxLength: 40 }) }),
  fc.record({ op: fc.constant("set" as const), at: fc.nat(400), v: fc.nat(255) }),
);

export function mutate(b: Uint8Array, muts: Mut[]): Uint8Array {
  let x = b.slice();
  for (const m of muts) {
    if (x.length === 0 && m.op !== "add") continue;
    if (m.op === "flip") x[m.at % x.length]! ^= 1 << m.bit;
    else if (m.op === "set") x[m.at % x.length] = m.v;
    else if (m.op === "cut") x = x.slice(0, m.at % x.length);
    else x = new Uint8Array([...x, ...m.bytes]);
  }
  return x;
}

const muts = fc.array(mut, { minLength: 1, maxLength: 4 });
const techCmd = fc.oneof(
  fc.constantFrom({ command: "stop" }, { command: "clearFault" }, { command: "relayTest" }),
  fc.record({ command: fc.constant("setAvailable"), available: fc.anything() }),
  fc.record({ command: fc.oneof(fc.string(), fc.anything()) }),
  fc.anything(),
);
const inputTypes = [
  "tick",
  "connected",
  "message",
  "fragmentError",
  "disconnected",
  "contactorFeedback",
  "meterReading",
  "codeRecorded",
  "boot",
  "vehicle",
  "radio",
  "x",
];

export const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant("bytes" as const), bytes: fc.uint8Array({ maxLength: 300 }) }),
  fc.record({ kind: fc.constant("mutatedHello" as const), muts }),
  fc.record({
    kind: fc.constant("mutatedPresent" as const),
    part: fc.constantFrom("proof" as const, "code" as const, "whole" as const),
    muts,
  }),
  fc.record({ kind: fc.constant("mutatedStop" as const), muts }),
  fc.record({
    kind: fc.constant("fragments" as const),
    frags: fc.array(fc.uint8Array({ maxLength: 60 }), { maxLength: 6 }),
  }),
  fc.record({ kind: fc.constant("technician" as const), cmd: techCmd }),
  fc.record({
    kind: fc.constant("input" as const),
    input: fc.oneof(
      fc.anything(),
      fc.dictionary(
        fc.constantFrom("type", "connId", "bytes", "closed", "codeId", "ok", "mono"),
        fc.oneof(fc.constantFrom(...inputTypes), fc.anything()),
      ),
    ),
  }),
  fc.record({ kind: fc.constant("tick" as const), ms: fc.nat(5000) }),
);

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/** Runs one case (a few steps on a fresh core) and records what it broke in `t`. */
export function runCase(steps: Step[], t: FuzzTally, opts: { plantValid?: boolean } = {}): void {
  t.cases++;
  const b = new Bench();
  const code = issue();
  const clientNonce = new Uint8Array(randomBytes(16));
  let pileNonce: Uint8Array = new Uint8Array(16);
  let relayTestAsked = false;
  const hello = encodeMessage({ type: "HELLO", version: 1, keyId: KEY_ID, codeId: code.codeId, clientNonce });
  const doHello = () => {
    for (const e of b.feed({ type: "message", connId: "c1", bytes: hello }))
      if (e.type === "send" && e.message.type === "CHALLENGE") pileNonce = e.message.pileNonce;
  };
  const check = (fx: PileEffect[], what: string, message: boolean) => {
    t.inputs++;
    // a message is answered on its connection; any other input by an effect (a `rejected` at least)
    const answered = message ? fx.some((e) => e.type === "send" && e.connId === "c1") : fx.length > 0;
    if (answered) t.answered++;
    else t.counted++;
    for (const e of fx) {
      if (e.type === "recordCode")
        t.violations.push(`${what}: recordCode ${hex(e.codeId)} without a valid proof and code`);
      if (e.type === "lock" && e.engaged) t.violations.push(`${what}: lock engaged`);
      if (e.type === "contactor" && e.closed && !relayTestAsked)
        t.violations.push(`${what}: contactor closed`);
    }
  };
  const guarded = (what: string, message: boolean, input: Record<string, unknown>) => {
    try {
      check(b.feed(input), what, message);
    } catch (e) {
      t.violations.push(`${what}: handle() threw ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  const msg = (what: string, bytes: Uint8Array) =>
    guarded(what, true, { type: "message", connId: "c1", bytes });
  if (opts.plantValid) {
    doHello();
    const proof = deviceProof(nodeSuite, code.v, code.codeId, pileNonce, clientNonce);
    msg("planted valid PRESENT", encodeMessage({ type: "PRESENT", deviceProof: proof, code: code.code }));
  }
  for (const s of steps) {
    switch (s.kind) {
      case "bytes":
        msg("random message", s.bytes);
        break;
      case "mutatedHello": {
        const m = mutate(hello, s.muts);
        if (hex(m) !== hex(hello)) msg("mutated HELLO", m);
        break;
      }
      case "mutatedPresent": {
        doHello();
        const proof = deviceProof(nodeSuite, code.v, code.codeId, pileNonce, clientNonce);
        const good = encodeMessage({ type: "PRESENT", deviceProof: proof, code: code.code });
        let bytes: Uint8Array;
        if (s.part === "whole") bytes = mutate(good, s.muts);
        else {
          // a field mutated in place, the message still well formed (the encoder checks sizes)
          const fit = (x: Uint8Array, n: number) => Uint8Array.from({ length: n }, (_, i) => x[i] ?? 0);
          const p = s.part === "proof" ? fit(mutate(proof, s.muts), proof.length) : proof;
          const c = s.part === "code" ? mutate(code.code, s.muts) : code.code;
          try {
            bytes = encodeMessage({ type: "PRESENT", deviceProof: p, code: c });
          } catch {
            bytes = mutate(good, s.muts); // a code length the encoder refuses: the raw bytes then
          }
        }
        if (hex(bytes) !== hex(good)) msg(`PRESENT with a mutated ${s.part}`, bytes);
        break;
      }
      case "mutatedStop": {
        const good = encodeMessage({
          type: "STOP",
          stopProof: stopProof(nodeSuite, code.v, code.codeId, pileNonce),
        });
        msg("mutated STOP", mutate(good, s.muts));
        break;
      }
      case "fragments": {
        const r = new Reassembler(64);
        for (const f of s.frags) {
          for (const out of r.push(f, b.mono)) {
            if (out.kind === "message") msg("reassembled fragments", out.message);
            else if (out.kind === "error")
              guarded("fragment error", true, { type: "fragmentError", connId: "c1" });
            else {
              t.inputs++; // a partial or dropped fragment: counted by the reassembler's outcome
              t.counted++;
            }
          }
        }
        // and a genuine HELLO cut into fragments with one flipped, through the same path
        const frags = fragment(hello, 23);
        const last = frags[frags.length - 1]!;
        last[0] = last[0]! & ~FINAL;
        for (const f of frags)
          for (const out of r.push(f, b.mono)) if (out.kind === "message") msg("fragments", out.message);
        break;
      }
      case "technician": {
        const c = s.cmd as { command?: unknown };
        if (c && typeof c === "object" && c.command === "relayTest") relayTestAsked = true;
        guarded("technician command", false, {
          ...(typeof c === "object" && c !== null ? c : { command: c }),
          type: "technician",
        });
        break;
      }
      case "input":
        guarded(
          "malformed input",
          false,
          (typeof s.input === "object" && s.input !== null ? s.input : { type: s.input }) as Record<
            string,
            unknown
          >,
        );
        break;
      case "tick":
        b.mono += s.ms;
        guarded("tick", false, { type: "tick" });
        break;
    }
  }
}

/** n cases of 1–4 steps; fast-check's seed makes the run repeatable. */
export function fuzzCore(n: number, seed: number, t: FuzzTally): void {
  try {
    fc.assert(
      fc.property(fc.array(stepArb, { minLength: 1, maxLength: 4 }), (steps) => {
        const before = t.violations.length;
        runCase(steps, t);
        return t.violations.length === before;
      }),
      { numRuns: n, seed, endOnFailure: true },
    );
  } catch (e) {
    t.violations.push(
      `fast-check: ${(e instanceof Error ? e.message : String(e)).split("\n").slice(0, 6).join(" | ")}`,
    );
  }
}
