/**
 * ONE command table that both front ends (the serial console, the control socket) dispatch
 * through, so that a command parses, runs, is audited and prints the same way everywhere. Each
 * entry is typed by its arguments and its result: what `run` gives is what `format` prints.
 */

import {
  type Detail,
  detailText,
  faultsText,
  keysText,
  logText,
  meterText,
  sessionsText,
  statusText,
  timeText,
} from "./format.js";
import { OCPP_SPECS } from "./ocpp.js";
import type {
  AuditView,
  CommandOutcome,
  ControlResult,
  FaultView,
  KeyView,
  MeterView,
  PileControl,
  SessionView,
  StatusView,
  TimeView,
} from "./views.js";

export interface CommandContext {
  pile: PileControl;
  actor: string;
  /** Bad-input counts of the front end itself, merged into `status`. */
  counters?: () => Record<string, number>;
  /** Credentials of the client process (control socket), kept with every audited command. */
  peer?: { uid: number; pid: number };
}

export type Parsed<A> = { ok: true; args: A } | { ok: false; message: string };

/** A command taking arguments A and giving a result R. */
export interface CommandSpec<A, R> {
  usage: string;
  summary: string;
  parse(args: string[]): Parsed<A>;
  run(ctx: CommandContext, args: A): Promise<CommandOutcome<R>> | CommandOutcome<R>;
  /** The arguments as they may be kept in the audit log. */
  auditArgs?(args: string[]): string[];
  /** Whether a run with these arguments may change something (and is audited); default no. */
  mutates?(args: string[]): boolean;
  /** Human text of a successful result (no trailing newline needed). */
  format(result: R): string;
}

const none = (args: string[]): Parsed<undefined> =>
  args.length === 0 ? { ok: true, args: undefined } : { ok: false, message: "takes no arguments" };

const count =
  (dflt: number, max: number) =>
  (args: string[]): Parsed<number> => {
    if (args.length === 0) return { ok: true, args: dflt };
    const [a, ...rest] = args;
    if (rest.length > 0 || a === undefined || !/^\d{1,6}$/.test(a) || Number(a) < 1 || Number(a) > max)
      return { ok: false, message: `N must be a whole number 1..${max}` };
    return { ok: true, args: Number(a) };
  };

/** A key id: decimal or 0x-hex, 0..2^32-1. */
export function parseKeyId(s: string): number | undefined {
  const n = /^0x[0-9a-fA-F]{1,8}$/.test(s)
    ? Number.parseInt(s.slice(2), 16)
    : /^\d{1,10}$/.test(s)
      ? Number(s)
      : NaN;
  return Number.isSafeInteger(n) && n >= 0 && n <= 0xffffffff ? n : undefined;
}

const fromResult = (r: ControlResult): CommandOutcome<Detail> =>
  r.ok
    ? { ok: true, result: { detail: r.detail ?? "done" } }
    : { ok: false, error: { code: r.code, message: r.message } };

type KeysArgs = { op: "list" } | { op: "add"; keyId: number; hex: string } | { op: "retire"; keyId: number };

function parseKeys(args: string[]): Parsed<KeysArgs> {
  const [op = "list", a, b, ...rest] = args;
  if (rest.length > 0) return { ok: false, message: "too many arguments" };
  if (op === "list" && a === undefined) return { ok: true, args: { op: "list" } };
  const keyId = a === undefined ? undefined : parseKeyId(a);
  if (op === "add") {
    if (keyId === undefined) return { ok: false, message: "ID must be a key id 0..4294967295" };
    if (b === undefined || !/^[0-9a-fA-F]{64}$/.test(b))
      return { ok: false, message: "HEX must be 64 hex digits" };
    return { ok: true, args: { op: "add", keyId, hex: b.toLowerCase() } };
  }
  if (op === "retire" && b === undefined) {
    if (keyId === undefined) return { ok: false, message: "ID must be a key id 0..4294967295" };
    return { ok: true, args: { op: "retire", keyId } };
  }
  return { ok: false, message: "usage: keys [list|add ID HEX|retire ID]" };
}

/** Every command, in help order. */
export const SPECS = {
  status: {
    usage: "status",
    summary: "pile state, outputs, faults and bad-input counts",
    parse: none,
    run: (ctx) => {
      const s = ctx.pile.status();
      return { ok: true, result: { ...s, counters: { ...s.counters, ...(ctx.counters?.() ?? {}) } } };
    },
    format: statusText,
  } satisfies CommandSpec<undefined, StatusView>,
  meter: {
    usage: "meter",
    summary: "read the energy meter now",
    parse: none,
    run: async (ctx) => {
      const m = await ctx.pile.meter();
      return m.ok ? { ok: true, result: m } : { ok: false, error: { code: m.code, message: m.message } };
    },
    format: meterText,
  } satisfies CommandSpec<undefined, Extract<MeterView, { ok: true }>>,
  sessions: {
    usage: "sessions [N]",
    summary: "the last N sessions (default 10)",
    parse: count(10, 1000),
    run: (ctx, n) => ({ ok: true, result: ctx.pile.sessions(n) }),
    format: sessionsText,
  } satisfies CommandSpec<number, SessionView[]>,
  faults: {
    usage: "faults",
    summary: "faults not yet cleared (LATCHED: holding the pile FAULTED now)",
    parse: none,
    run: (ctx) => ({ ok: true, result: ctx.pile.faults() }),
    format: faultsText,
  } satisfies CommandSpec<undefined, FaultView[]>,
  "clear-fault": {
    usage: "clear-fault CODE|all",
    summary: "after inspection: clears every latched fault, once the feedbacks read safe",
    mutates: () => true,
    parse: (args) =>
      args.length === 1 && /^[A-Za-z0-9_.-]{1,64}$/.test(args[0]!)
        ? { ok: true, args: args[0]! }
        : { ok: false, message: "give one fault code, or all" },
    run: async (ctx, code) => fromResult(await ctx.pile.clearFault(code, ctx.actor)),
    format: detailText,
  } satisfies CommandSpec<string, Detail>,
  stop: {
    usage: "stop",
    summary: "stop the running session",
    mutates: () => true,
    parse: none,
    run: async (ctx) => fromResult(await ctx.pile.stop(ctx.actor)),
    format: detailText,
  } satisfies CommandSpec<undefined, Detail>,
  "relay-test": {
    usage: "relay-test",
    summary: "close and reopen the contactor with no vehicle plugged in, checking its feedback",
    mutates: () => true,
    parse: none,
    run: async (ctx) => fromResult(await ctx.pile.relayTest(ctx.actor)),
    format: detailText,
  } satisfies CommandSpec<undefined, Detail>,
  available: {
    usage: "available on|off",
    summary: "put the pile in service (on) or out of it (off: no new session; a running one goes on)",
    mutates: () => true,
    parse: (args) =>
      args.length === 1 && (args[0] === "on" || args[0] === "off")
        ? { ok: true, args: args[0] === "on" }
        : { ok: false, message: "give on or off" },
    run: async (ctx, on) => fromResult(await ctx.pile.setAvailable(on, ctx.actor)),
    format: detailText,
  } satisfies CommandSpec<boolean, Detail>,
  "current-limit": {
    usage: "current-limit A|off",
    summary:
      "cap the current the pilot offers the vehicle (6–80 A; off lifts the cap); a session follows at once",
    mutates: () => true,
    parse: (args) => {
      const a = args[0] ?? "";
      if (args.length === 1 && a === "off") return { ok: true, args: null };
      return args.length === 1 && /^\d{1,2}$/.test(a) && Number(a) >= 6 && Number(a) <= 80
        ? { ok: true, args: Number(a) }
        : { ok: false, message: "give a whole number of amperes 6..80, or off" };
    },
    run: async (ctx, a) => fromResult(await ctx.pile.setCurrentLimit(a, ctx.actor)),
    format: detailText,
  } satisfies CommandSpec<number | null, Detail>,
  keys: {
    usage: "keys [list|add ID HEX|retire ID]",
    summary: "list, add or retire pile keys (bytes are never shown)",
    mutates: (args) => !(args.length === 0 || (args.length === 1 && args[0] === "list")),
    parse: parseKeys,
    run: (ctx, a): CommandOutcome<KeyView[] | Detail> => {
      if (a.op === "list") return { ok: true, result: ctx.pile.keys.list() };
      if (a.op === "add") return fromResult(ctx.pile.keys.add(a.keyId, a.hex, ctx.actor));
      return fromResult(ctx.pile.keys.retire(a.keyId, ctx.actor));
    },
    // Anything after `add ID` may be key material: it never reaches the audit log.
    auditArgs: (args) =>
      args[0] === "add" ? args.slice(0, 2).concat(args.length > 2 ? ["[redacted]"] : []) : args,
    format: keysText,
  } satisfies CommandSpec<KeysArgs, KeyView[] | Detail>,
  time: {
    usage: "time",
    summary: "board clock, time floor and skew",
    parse: none,
    run: (ctx) => ({ ok: true, result: ctx.pile.time() }),
    format: timeText,
  } satisfies CommandSpec<undefined, TimeView>,
  log: {
    usage: "log [N]",
    summary: "the last N audit-log entries (default 20)",
    parse: count(20, 1000),
    run: (ctx, n) => ({ ok: true, result: ctx.pile.log(n) }),
    format: logText,
  } satisfies CommandSpec<number, AuditView[]>,
  sim: {
    usage: "sim ACTION",
    summary:
      "simulated plant only: plug-in, plug-out, weld, estop-press, meter-silent, vehicle-c, diode-break, mcu-freeze, clear, state, …",
    mutates: () => true,
    parse: (args: string[]) =>
      args.length === 1 && /^[a-z-]{1,32}$/.test(args[0]!)
        ? { ok: true as const, args: args[0]! }
        : { ok: false as const, message: "takes one action" },
    run: (ctx, action) =>
      ctx.pile.sim
        ? ctx.pile.sim(action)
        : { ok: false, error: { code: "NOT_SIMULATED", message: "this pile's plant is not simulated" } },
    format: (r) => JSON.stringify(r),
  } satisfies CommandSpec<string, unknown>,
  // --- OCPP ---
  ...OCPP_SPECS,
};

export type CommandName = keyof typeof SPECS;

/**
 * The table by name, each command's argument and result types erased for dispatch: what parse
 * gives goes to its own run, and what run gives to its own format (no cast: the specs assign).
 */
// biome-ignore lint/suspicious/noExplicitAny: a spec's argument type is only known to its own parse.
export const TABLE: Readonly<Record<CommandName, CommandSpec<any, unknown>>> = SPECS;
