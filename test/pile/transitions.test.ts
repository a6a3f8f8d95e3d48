/**
 * Walks the machine's table (src/pile/transitions.ts): for every phase and every input kind,
 * brings a core into that phase, feeds the input (each of its variants) and checks what the table
 * says: a refusal is the one written there and changes nothing; an input taken leaves the core in
 * one of the phases listed.
 */
import assert from "node:assert/strict";
import test from "node:test";
import {
  INPUT_KINDS,
  type InputKind,
  PHASES,
  type Phase,
  type PileEffect,
  TRANSITIONS,
} from "../../src/pile/index.js";
import { Carrier, type Feed, healthyBoot, issue, Rig } from "./rig.js";

interface World {
  rig: Rig;
  /** The carrier whose session is running (or being set up), if any. */
  carrier?: Carrier;
  /** The batch that asked for a code record, if one is pending. */
  recordFx?: PileEffect[];
}

const phaseOf = (rig: Rig): Phase => rig.core.snapshot().phase;

function session(upTo: "authorizing" | "locking" | "closing"): World {
  const rig = new Rig();
  rig.boot();
  const carrier = new Carrier(rig, "c1", issue());
  rig.feed({ type: "connected", connId: "c1" });
  carrier.hello();
  const recordFx = carrier.present();
  if (upTo === "authorizing") return { rig, carrier, recordFx };
  rig.ackRecord(recordFx);
  if (upTo === "closing") rig.feed({ type: "lockFeedback", engaged: true });
  return { rig, carrier };
}

/** A core in each phase, built only from inputs (asserted below). */
const BUILD: Record<Phase, () => World> = {
  unbooted: () => ({ rig: new Rig() }),
  booting: () => {
    const rig = new Rig();
    rig.feed({ type: "boot", feedback: { ...healthyBoot, contactorClosed: true }, floor: 0n });
    return { rig };
  },
  idle: () => {
    const rig = new Rig();
    rig.boot();
    return { rig };
  },
  authorizing: () => session("authorizing"),
  locking: () => session("locking"),
  closing: () => session("closing"),
  charging: () => {
    const rig = new Rig();
    rig.boot();
    return { rig, carrier: rig.startCharging().carrier };
  },
  opening: () => {
    const w = BUILD.charging();
    w.rig.feed({ type: "technician", command: "stop" });
    return w;
  },
  unlocking: () => {
    const w = BUILD.opening();
    w.rig.feed({ type: "contactorFeedback", closed: false });
    return w;
  },
  relayTest: () => {
    const rig = new Rig();
    rig.boot({ vehicle: false });
    rig.feed({ type: "technician", command: "relayTest" });
    return { rig };
  },
};

/** A fresh carrier on its own connection with a HELLO answered (HELLO changes no phase). */
function stranger(w: World): Carrier {
  const c = new Carrier(w.rig, "c9", issue());
  w.rig.feed({ type: "connected", connId: "c9" });
  c.hello();
  return c;
}

/** Each input kind's variants: a function feeding one, returning its effects. */
const FEED: Record<InputKind, ((w: World) => PileEffect[])[]> = {
  boot: [(w) => w.rig.feed({ type: "boot", feedback: healthyBoot, floor: 0n })],
  tick: [
    (w) => {
      const at = w.rig.core.nextDeadline();
      w.rig.mono = Math.max(w.rig.mono + 1, at ?? 0);
      return w.rig.feed({ type: "tick" });
    },
  ],
  connected: [(w) => w.rig.feed({ type: "connected", connId: "c9" })],
  disconnected: [(w) => w.rig.feed({ type: "disconnected", connId: w.carrier?.connId ?? "c9" })],
  fragmentError: [(w) => w.rig.feed({ type: "fragmentError", connId: "c9" })],
  HELLO: [(w) => new Carrier(w.rig, "c9", issue()).hello()],
  PRESENT: [(w) => stranger(w).present()],
  STOP: [(w) => (w.carrier ?? stranger(w)).stop()],
  badMessage: [(w) => w.rig.feed({ type: "message", connId: "c9", bytes: new Uint8Array([0xff, 0]) })],
  ...variants("contactorFeedback", [{ closed: true }, { closed: false }]),
  ...variants("lockFeedback", [{ engaged: true }, { engaged: false }]),
  ...variants("vehicle", [{ present: true }, { present: false }, { present: undefined }]),
  ...variants("pilot", [
    { state: "A" },
    { state: "B" },
    { state: "C" },
    { state: "D" },
    { state: "E" },
    { state: "F" },
    { state: "X" },
    { state: "B", diodeFailed: true },
    { state: "lost" },
    { state: "reset" },
  ]),
  ...variants("emergencyStop", [{ active: true }, { active: false }]),
  ...variants("inputHealth", [
    { line: "lockFeedback", readable: false },
    { line: "lockFeedback", readable: true },
  ]),
  meterReading: [(w) => w.rig.meter()],
  meterError: [(w) => w.rig.feed({ type: "meterError", code: "TIMEOUT" })],
  ...variants("radio", [{ up: false }, { up: true }]),
  ...variants("store", [{ problems: ["disk low"] }, { problems: [] }]),
  codeRecorded: [
    (w) => (w.recordFx ? w.rig.ackRecord(w.recordFx) : ack(w, true)),
    (w) => (w.recordFx ? w.rig.ackRecord(w.recordFx, false) : ack(w, false)),
  ],
  "technician.stop": [(w) => w.rig.feed({ type: "technician", command: "stop" })],
  "technician.clearFault": [(w) => w.rig.feed({ type: "technician", command: "clearFault" })],
  "technician.setAvailable": [
    (w) => w.rig.feed({ type: "technician", command: "setAvailable", available: false }),
  ],
  "technician.relayTest": [(w) => w.rig.feed({ type: "technician", command: "relayTest" })],
  "technician.setCurrentLimit": [
    (w) => w.rig.feed({ type: "technician", command: "setCurrentLimit", currentA: 10 }),
    (w) => w.rig.feed({ type: "technician", command: "setCurrentLimit", currentA: null }),
  ],
};

function ack(w: World, ok: boolean): PileEffect[] {
  return w.rig.feed({ type: "codeRecorded", codeId: new Uint8Array(16).fill(7), ok });
}

function variants<T extends Feed["type"]>(
  type: T,
  rest: Omit<Extract<Feed, { type: T }>, "type">[],
): Record<T, ((w: World) => PileEffect[])[]> {
  const fns = rest.map((r) => (w: World) => w.rig.feed({ type, ...r } as Feed));
  return { [type]: fns } as Record<T, ((w: World) => PileEffect[])[]>;
}

/** Refusals a handler itself gives (the plant's checks, an unknown record), not the table's. */
const HANDLER_REFUSALS = new Set(["BAD_INPUT", "UNSAFE", "NOT_FAULTED"]);

test("the table's refusals read as the core has always given them", () => {
  const t = TRANSITIONS;
  assert.deepEqual(t.unbooted.tick, { refuse: "NOT_BOOTED", detail: "feed boot first" });
  assert.deepEqual(t.idle.boot, { refuse: "ALREADY_BOOTED", detail: "boot fed twice" });
  assert.deepEqual(t.authorizing["technician.stop"], { refuse: "BUSY", detail: "session being set up" });
  assert.deepEqual(t.unlocking["technician.stop"], { refuse: "NO_SESSION", detail: "no session running" });
  assert.deepEqual(t.charging["technician.relayTest"], { refuse: "BUSY", detail: "pile is charging" });
  assert.deepEqual(t.booting["technician.clearFault"], {
    refuse: "BUSY",
    detail: "pile is booting",
    noFaultFirst: true,
  });
});

test("every phase is reachable by inputs alone", () => {
  for (const phase of PHASES) assert.equal(phaseOf(BUILD[phase]().rig), phase, phase);
});

test("the table has an entry for every phase and every input kind", () => {
  assert.deepEqual(Object.keys(TRANSITIONS).sort(), [...PHASES].sort());
  for (const phase of PHASES)
    assert.deepEqual(Object.keys(TRANSITIONS[phase]).sort(), [...INPUT_KINDS].sort());
});

for (const phase of PHASES) {
  test(`phase ${phase}: every input does what the table says`, () => {
    for (const kind of INPUT_KINDS) {
      const rule = TRANSITIONS[phase][kind];
      FEED[kind].forEach((feed, variant) => {
        const w = BUILD[phase]();
        const faulted = w.rig.core.snapshot().faults.length > 0;
        const fx = feed(w);
        const after = phaseOf(w.rig);
        const where = `${phase} × ${kind}#${variant} → ${after}`;
        const refusals = fx.flatMap((e) => (e.type === "rejected" ? [`${e.code}: ${e.detail}`] : []));
        const rejected = refusals.map((r) => r.slice(0, r.indexOf(":")));
        if ("refuse" in rule) {
          const want =
            rule.noFaultFirst && !faulted
              ? "NOT_FAULTED: no fault latched"
              : `${rule.refuse}: ${rule.detail}`;
          assert.ok(refusals.includes(want), `${where}: expected ${want}, got ${JSON.stringify(refusals)}`);
          assert.equal(after, phase, where);
          assert.ok(
            !fx.some((e) => e.type === "contactor" || e.type === "lock"),
            `${where}: an output moved`,
          );
        } else {
          assert.ok(rule.to.includes(after), `${where}: table allows ${rule.to.join(",")}`);
          for (const code of rejected) assert.ok(HANDLER_REFUSALS.has(code), `${where}: refused ${code}`);
        }
      });
    }
  });
}

test("each phase a taken input may lead to is reached by some walked pair", () => {
  const reached = new Map<Phase, Set<Phase>>();
  for (const phase of PHASES) {
    const seen = new Set<Phase>();
    for (const kind of INPUT_KINDS)
      for (const feed of FEED[kind]) {
        const w = BUILD[phase]();
        feed(w);
        seen.add(phaseOf(w.rig));
      }
    reached.set(phase, seen);
  }
  // Every phase but unbooted is left for another one by some input: no phase is a dead end.
  for (const phase of PHASES.filter((p) => p !== "unbooted" && p !== "idle"))
    assert.ok(
      [...(reached.get(phase) ?? [])].some((p) => p !== phase),
      `${phase} is never left`,
    );
  assert.ok(reached.get("unbooted")?.has("idle"), "boot reaches idle");
  assert.ok(reached.get("idle")?.has("authorizing"), "a PRESENT starts a session");
});

/** Cores whose vehicle a pilot MCU senses, in the phases its reports act on. */
const PILOT_BUILD: Partial<Record<Phase, () => World>> = {
  idle: () => {
    const rig = new Rig();
    rig.boot({ pilot: "B", vehicle: true });
    return { rig };
  },
  locking: () => {
    const rig = new Rig();
    rig.boot({ pilot: "B", vehicle: true });
    const carrier = new Carrier(rig, "c1", issue());
    rig.feed({ type: "connected", connId: "c1" });
    carrier.hello();
    rig.ackRecord(carrier.present());
    rig.feed({ type: "lockFeedback", engaged: true });
    return { rig, carrier };
  },
  closing: () => {
    const w = PILOT_BUILD.locking?.() as World;
    w.rig.feed({ type: "pilot", state: "C" });
    return w;
  },
  charging: () => {
    const w = PILOT_BUILD.closing?.() as World;
    w.rig.feed({ type: "contactorFeedback", closed: true });
    return w;
  },
  relayTest: () => {
    const rig = new Rig();
    rig.boot({ pilot: "A", vehicle: false });
    rig.feed({ type: "technician", command: "relayTest" });
    return { rig };
  },
};

test("pilot piles: each pilot report, in each phase it acts on, does what the table says", () => {
  const reached = new Set<string>();
  for (const [phase, build] of Object.entries(PILOT_BUILD) as [Phase, () => World][]) {
    assert.equal(phaseOf(build().rig), phase, `pilot world ${phase}`);
    const rule = TRANSITIONS[phase].pilot;
    assert.ok("to" in rule, phase);
    FEED.pilot.forEach((feed, variant) => {
      const w = build();
      const fx = feed(w);
      const after = phaseOf(w.rig);
      reached.add(`${phase}→${after}`);
      assert.ok(rule.to.includes(after), `${phase} × pilot#${variant} → ${after}`);
      assert.ok(!fx.some((e) => e.type === "rejected"), `${phase} × pilot#${variant} refused`);
    });
  }
  // C closes from locking; B stops charging; a fault stops a closing session, which waits in
  // opening: its closing was never confirmed, so the relay may still pass through closed.
  for (const edge of ["locking→closing", "charging→opening", "closing→opening", "relayTest→relayTest"])
    assert.ok(reached.has(edge), `${edge} walked (${[...reached].join(" ")})`);
});
