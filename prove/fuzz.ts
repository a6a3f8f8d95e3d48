/**
 * `npm run prove -- fuzz [--n N] [--seed N]`: generated and mutated inputs against
 *   - the pile core in process (prove/core-fuzz.ts): N cases;
 *   - config files through the daemon's loader (loadConfig on a file) and key files through
 *     readKeyFile: N each;
 *   - console bytes and lines through the console's interpreter (ConsoleInterpreter.feed): N;
 *   - Modbus replies from a hostile slave on a pty against the meter bus (ModbusMeter): a sample;
 *   - control-socket requests against a running built daemon: a sample;
 * and a sample of Control writes over the emulated radio to the built daemon (prove/wire-fuzz.ts).
 * Invariants: nothing throws or crashes, nothing unlocks without a valid proof and code, no
 * output moves, every input is answered or counted.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { ConfigError, loadConfig } from "../src/daemon/config.js";
import { ConsoleInterpreter } from "../src/daemon/console/interpreter.js";
import { simPileConfig } from "../src/daemon/sim-config.js";
import { readKeyFile } from "../src/sdk/keyfile.js";
import { type FuzzTally, fuzzCore, mutate, newTally } from "./core-fuzz.js";
import { fuzzMeter } from "./meter-fuzz.js";
import { fuzzWire } from "./wire-fuzz.js";

export interface FuzzSummary {
  seed: number;
  n: number;
  surfaces: Record<string, Omit<FuzzTally, "violations">>;
  violations: string[];
}

const textMut = fc.array(
  fc.oneof(
    fc.record({ op: fc.constant("flip" as const), at: fc.nat(2000), bit: fc.nat(7) }),
    fc.record({ op: fc.constant("cut" as const), at: fc.nat(2000) }),
    fc.record({ op: fc.constant("add" as const), bytes: fc.uint8Array({ maxLength: 20 }) }),
    fc.record({ op: fc.constant("set" as const), at: fc.nat(2000), v: fc.nat(255) }),
  ),
  { minLength: 1, maxLength: 4 },
);

/** Generated JSON values spliced into a valid config at a random path, or mutated text. */
function fuzzConfig(n: number, seed: number, dir: string, t: FuzzTally): void {
  const base = simPileConfig({ pileId: "FUZZ-1", dir });
  const text = new TextEncoder().encode(JSON.stringify(base, null, 2));
  const file = join(dir, "piled.json");
  const keys = Object.keys(base);
  const arb = fc.oneof(
    textMut.map((m) => ({ bytes: mutate(text, m) })),
    fc.record({ key: fc.constantFrom(...keys, "extra"), value: fc.jsonValue() }).map(({ key, value }) => ({
      bytes: new TextEncoder().encode(JSON.stringify({ ...base, [key]: value })),
    })),
  );
  writeFileSync(file, text);
  if (!loadConfig(file).ok)
    t.violations.push("config: the unmutated file is refused (the fuzz base is wrong)");
  run(n, seed, arb, t, "config", ({ bytes }) => {
    writeFileSync(file, bytes);
    const r = loadConfig(file);
    t.inputs++;
    if (r.ok) t.answered++;
    else if (r.error instanceof ConfigError && typeof r.error.code === "string") t.counted++;
    else t.violations.push(`config: an error that is not a ConfigError: ${String(r.error)}`);
  });
}

function fuzzKeyFile(n: number, seed: number, dir: string, t: FuzzTally): void {
  const key = Buffer.alloc(32, 7).toString("hex");
  const good = new TextEncoder().encode(JSON.stringify({ keyId: 3, key }));
  const file = join(dir, "key-3.json");
  const arb = fc.oneof(
    textMut.map((m) => mutate(good, m)),
    fc.jsonValue().map((v) => new TextEncoder().encode(JSON.stringify(v))),
    fc
      .record({ keyId: fc.jsonValue(), key: fc.oneof(fc.string(), fc.jsonValue()) })
      .map((v) => new TextEncoder().encode(JSON.stringify(v))),
  );
  writeFileSync(file, good, { mode: 0o600 });
  if (!readKeyFile(file).ok)
    t.violations.push("key file: the unmutated file is refused (the fuzz base is wrong)");
  run(n, seed, arb, t, "key file", (bytes) => {
    writeFileSync(file, bytes, { mode: 0o600 });
    const r = readKeyFile(file);
    t.inputs++;
    if (r.ok) {
      t.answered++;
      if (r.value.key.length !== 32) t.violations.push(`key file: accepted a ${r.value.key.length}-byte key`);
    } else t.counted++;
  });
}

/** Console bytes with no valid login: a command must never run. */
function fuzzConsole(n: number, seed: number, t: FuzzTally): void {
  const words = [
    "status",
    "stop",
    "clear-fault WELD",
    "unlock",
    "help",
    "\x1b[A",
    "\x03",
    "\x7f",
    "\r\n",
    "login",
  ];
  const arb = fc.array(
    fc.oneof(
      fc.uint8Array({ maxLength: 80 }),
      fc.constantFrom(...words).map((w) => new TextEncoder().encode(w)),
      fc.string({ unit: "grapheme", maxLength: 40 }).map((s) => new TextEncoder().encode(`${s}\r`)),
    ),
    { minLength: 1, maxLength: 8 },
  );
  let now = 0;
  const clock = { now: () => now, monotonic: () => now };
  run(n, seed, arb, t, "console", (chunks) => {
    const c = new ConsoleInterpreter({
      clock,
      lockoutAfter: 3,
      lockoutMs: 1000,
      idleLogoutMs: 60_000,
      pileId: "FUZZ-1",
    });
    c.start();
    for (const b of chunks) {
      now += 7;
      t.inputs++;
      const step = c.feed(b);
      let answered = step.output.length > 0;
      for (const a of step.actions) {
        if (a.kind === "command") t.violations.push(`console: command ${a.name} ran without a login`);
        if (a.kind === "verify") answered = c.loginResult(false).output.length > 0 || answered;
      }
      if (answered) t.answered++;
      else t.counted++;
    }
  });
}

function run<T>(
  n: number,
  seed: number,
  arb: fc.Arbitrary<T>,
  t: FuzzTally,
  what: string,
  body: (x: T) => void,
): void {
  try {
    fc.assert(
      fc.property(arb, (x) => {
        t.cases++;
        const before = t.violations.length;
        body(x);
        return t.violations.length === before;
      }),
      { numRuns: n, seed, endOnFailure: true },
    );
  } catch (e) {
    t.violations.push(
      `${what}: ${(e instanceof Error ? e.message : String(e)).split("\n").slice(0, 6).join(" | ")}`,
    );
  }
}

export interface FuzzOptions {
  seed: number;
  n: number;
  log?: (l: string) => void;
  /** Sample sizes over real links; default n/500 and n/1000. */
  meterSample?: number;
  socketSample?: number;
  radioSample?: number;
  /** Self-test: one case with a valid proof and code goes into the core's fuzz. */
  plantValid?: boolean;
}

export async function runFuzz(o: FuzzOptions): Promise<FuzzSummary> {
  const log = o.log ?? (() => undefined);
  const dir = mkdtempSync(join(tmpdir(), "piled-fuzz-"));
  const surfaces: Record<string, FuzzTally> = {};
  const surface = async (name: string, f: (t: FuzzTally) => void | Promise<void>) => {
    const t = newTally();
    const t0 = performance.now();
    try {
      await f(t);
    } catch (e) {
      t.violations.push(`${name}: ${e instanceof Error ? e.message : String(e)}`);
    }
    surfaces[name] = t;
    log(
      `fuzz ${name}: ${t.cases} cases, ${t.inputs} inputs, ${t.violations.length} violations, ${Math.round(performance.now() - t0)} ms`,
    );
  };
  try {
    await surface("core", async (t) => {
      if (o.plantValid) (await import("./core-fuzz.js")).runCase([], t, { plantValid: true });
      fuzzCore(o.n, o.seed, t);
    });
    await surface("config", (t) => fuzzConfig(o.n, o.seed, dir, t));
    await surface("keyfile", (t) => fuzzKeyFile(o.n, o.seed, dir, t));
    await surface("console", (t) => fuzzConsole(o.n, o.seed, t));
    await surface("meter", (t) => fuzzMeter(o.meterSample ?? Math.max(20, Math.floor(o.n / 500)), o.seed, t));
    await surface("wire", (t) =>
      fuzzWire(
        {
          socket: o.socketSample ?? Math.max(50, Math.floor(o.n / 100)),
          radio: o.radioSample ?? Math.max(10, Math.floor(o.n / 1000)),
          seed: o.seed,
        },
        t,
      ),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const violations = Object.values(surfaces).flatMap((t) => t.violations);
  const counts = Object.fromEntries(
    Object.entries(surfaces).map(([k, { violations: v, ...rest }]) => [
      k,
      { ...rest, violationCount: v.length },
    ]),
  );
  return { seed: o.seed, n: o.n, surfaces: counts, violations: violations.slice(0, 50) };
}
