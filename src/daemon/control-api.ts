/**
 * What a technician may ask of the running pile, whether at the serial console or through the
 * control socket (pilectl): the `PileControl` interface the daemon implements, its plain JSON
 * views, and ONE command table that both front ends dispatch through, so that a command parses,
 * runs, is audited and prints the same way everywhere.
 */
import type { PilotDetails } from "../hw/ports.js";
import { OCPP_SPECS, type OcppControl } from "./control-ocpp.js";
import { redactWord, redactWords } from "./redact.js";

/** Outcome of an action the pile may refuse. `code` is stable; `message` is for people. */
export type ControlResult = { ok: true; detail?: string } | { ok: false; code: string; message: string };

export interface StatusView {
  pileId: string;
  /** Protocol state: AVAILABLE, AUTHORIZING, PREPARING, CHARGING, FINISHING, FAULTED, UNAVAILABLE. */
  state: string;
  /** Unix ms when `state` was entered. */
  since: number;
  contactor: "open" | "closed" | "unknown";
  lock: "engaged" | "released" | "unknown";
  /** null = the pile cannot sense a vehicle. */
  vehiclePresent: boolean | null;
  ble: "up" | "down" | "disabled";
  meterFresh: boolean;
  /** Link-level fault counters (Modbus bus, BLE peripheral, GPIO reads, expired fragments). */
  links?: Record<string, number>;
  /** Latched fault codes. */
  faults: string[];
  /** Why an idle pile cannot take a session (technician, meter stale, radio down, store fault, disk low). */
  unavailableBecause: string[];
  /**
   * The store: free bytes on the state directory (null: not measured) and the "disk low" threshold,
   * a fault (a record that could not be written; no new codes until it is) and the records held.
   */
  store: {
    freeBytes: number | null;
    minFreeBytes: number;
    fault: string | null;
    faultSince: number | null;
    pending: number;
  };
  /**
   * Failed proofs over BLE (PROTOCOL.md §3): within the last 60 s, all connections; alarm = more
   * than 20 (a security event is under way); events raised since start and the last one, Unix ms.
   */
  security: { recentFailedProofs: number; alarm: boolean; events: number; lastEventAt: number | null };
  session: { codeId: string; startedAt: number; energyWh: number | null } | null;
  uptimeMs: number;
  version: string;
  /** Counts of bad input seen, by kind ("ble.badFragment", "console.overlong", …). */
  counters: Record<string, number>;
  /** Where a pilot MCU senses the vehicle: its state, permit, duty and counters. */
  pilot?: PilotDetails;
}

/** The pilot line of `status` (pilot-glue.ts builds the view). */
function pilotLine(p: PilotDetails): string {
  const duty = p.pwm ? `${(p.dutyPermille / 10).toFixed(1)} %` : "off (+12 V)";
  const c = Object.entries(p.counters)
    .map(([k, v]) => `${k}=${v}`)
    .join(" ");
  return [
    `pilot ${p.state}  permit ${p.permit}${p.why.length ? ` (off: ${p.why.join(",")})` : ""}  pwm ${duty}  diode ${p.diode}`,
    `pilot mcu fw ${p.firmware ?? "?"}  last reset ${p.lastReset ?? "?"}  resets ${p.resets}  ${c}`,
  ].join("\n");
}

export type MeterView =
  | { ok: true; energyImportWh: number; powerW: number; voltageV: number; currentA: number; ageMs: number }
  | { ok: false; code: string; message: string };

export interface SessionView {
  /** Hex of the session id (the carrier's receipt). */
  id: string;
  /** Hex of the code id (identifies a code; grants nothing). */
  codeId: string;
  carrier: "vehicle" | "mobile";
  deviceId: string;
  /** "active", "finished" or "interrupted" (the daemon stopped during the session). */
  status: string;
  startedAt: number;
  endedAt: number | null;
  meterStartWh: number | null;
  meterStopWh: number | null;
  /** Energy delivered, Wh. */
  energyWh: number;
  /**
   * Where energyWh comes from: "meter" (the meter's register; an interrupted session closed from
   * the register read at the next boot), "unknown" (the meter could not be read: the last
   * progress, a lower bound), null while active or for older records.
   */
  energySource: "meter" | "unknown" | null;
  reason: string | null;
  /** The faults that ended the session (e.g. WELD behind a TECHNICIAN stop); empty for most. */
  faults: string[];
}

/** How an ended session's energy is known, where it is not the plain meter difference at the end. */
function energyNote(s: SessionView): string {
  if (s.energySource === "unknown") return " (energy unknown: meter unreadable at boot)";
  if (s.energySource === "meter" && s.status === "interrupted") return " (closed from the meter)";
  return "";
}

export interface FaultView {
  code: string;
  since: number;
  latched: boolean;
  detail?: string;
}

/** A key as shown to people: never its bytes. */
export interface KeyView {
  keyId: number;
  file: string;
  /** Unix ms the key file was added. */
  added: number;
}

export interface TimeView {
  /** The board's clock, Unix ms. */
  board: number;
  /** Durable time floor (newest issuedAt accepted), Unix ms; 0 if none yet. */
  floor: number;
  /** The pile's estimate of now: max(board, floor). */
  now: number;
  skewMs: number;
}

export interface AuditEntry {
  /** "console", "pilectl", … */
  actor: string;
  action: string;
  /** Arguments safe to keep (key bytes already removed). */
  args?: string[];
  /** "ok" or the refusal / error code. */
  outcome: string;
  detail?: string;
  /** The control-socket client's uid and pid (SO_PEERCRED), when known. */
  peer?: { uid: number; pid: number };
}

export interface AuditView extends AuditEntry {
  at: number;
}

export interface PileControl {
  status(): StatusView;
  meter(): Promise<MeterView>;
  sessions(limit: number): SessionView[];
  faults(): FaultView[];
  clearFault(code: string | "all", actor: string): ControlResult | Promise<ControlResult>;
  stop(actor: string): Promise<ControlResult>;
  relayTest(actor: string): Promise<ControlResult>;
  /** Takes the pile out of service (false) or back in (true); a running session goes on. */
  setAvailable(available: boolean, actor: string): Promise<ControlResult>;
  keys: {
    list(): KeyView[];
    add(keyId: number, hex: string, actor: string): ControlResult;
    retire(keyId: number, actor: string): ControlResult;
  };
  time(): TimeView;
  log(limit: number): AuditView[];
  audit(entry: AuditEntry): void;
  /** Fault switches of a simulated plant; absent on real hardware. */
  sim?(action: string): CommandOutcome;
  // --- OCPP (control-ocpp.ts): absent or undefined when the station is off ---
  ocpp?(): OcppControl | undefined;
}

// ---------------------------------------------------------------------------------------------
// The command table

export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };

export type CommandOutcome =
  | { ok: true; result: unknown }
  | { ok: false; error: { code: string; message: string } };

export interface CommandContext {
  pile: PileControl;
  actor: string;
  /** Bad-input counts of the front end itself, merged into `status`. */
  counters?: () => Record<string, number>;
  /** Credentials of the client process (control socket), kept with every audited command. */
  peer?: { uid: number; pid: number };
}

type Parsed<A> = { ok: true; args: A } | { ok: false; message: string };

export interface CommandSpec<A> {
  usage: string;
  summary: string;
  parse(args: string[]): Parsed<A>;
  run(ctx: CommandContext, args: A): Promise<CommandOutcome> | CommandOutcome;
  /** The arguments as they may be kept in the audit log. */
  auditArgs?(args: string[]): string[];
  /** Whether a run with these arguments may change something (and is audited); default no. */
  mutates?(args: string[]): boolean;
  /** Human text of a successful result (no trailing newline needed). */
  format(result: unknown): string;
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

const fromResult = (r: ControlResult): CommandOutcome =>
  r.ok
    ? { ok: true, result: { detail: r.detail ?? "done" } }
    : { ok: false, error: { code: r.code, message: r.message } };

const ts = (ms: number | null): string => (ms === null ? "-" : new Date(ms).toISOString());
const kib = (n: number): string => `${Math.floor(n / 1024)} KiB`;

function storeLine(st: StatusView["store"]): string {
  const disk =
    st.freeBytes === null ? "free space unknown" : `${kib(st.freeBytes)} free (min ${kib(st.minFreeBytes)})`;
  const fault = st.fault === null ? "ok" : `FAULT since ${ts(st.faultSince ?? 0)}: ${st.fault}`;
  return `store ${fault}  held records ${st.pending}  disk ${disk}`;
}

const detailText = (r: unknown): string => String((r as { detail?: string }).detail ?? "done");

type KeysArgs = { op: "list" } | { op: "add"; keyId: number; hex: string } | { op: "retire"; keyId: number };

const SPECS = {
  status: {
    usage: "status",
    summary: "pile state, outputs, faults and bad-input counts",
    parse: none,
    run: (ctx) => {
      const s = ctx.pile.status();
      return { ok: true, result: { ...s, counters: { ...s.counters, ...(ctx.counters?.() ?? {}) } } };
    },
    format: (r) => {
      const s = r as StatusView;
      const lines = [
        `pile ${s.pileId}  state ${s.state} since ${ts(s.since)}`,
        `contactor ${s.contactor}  lock ${s.lock}  vehicle ${s.vehiclePresent === null ? "n/a" : s.vehiclePresent ? "present" : "absent"}`,
        `ble ${s.ble}  meter ${s.meterFresh ? "fresh" : "stale"}  faults ${s.faults.length ? s.faults.join(",") : "none"}`,
        ...(s.unavailableBecause.length ? [`unavailable because: ${s.unavailableBecause.join("; ")}`] : []),
        storeLine(s.store),
        `security ${s.security.alarm ? "ALARM" : "ok"}  failed proofs ${s.security.recentFailedProofs} in 60 s  events ${s.security.events}${s.security.lastEventAt === null ? "" : ` (last ${ts(s.security.lastEventAt)})`}`,
        s.session
          ? `session code ${s.session.codeId} since ${ts(s.session.startedAt)} energy ${s.session.energyWh ?? "-"} Wh`
          : "no session",
        `uptime ${Math.floor(s.uptimeMs / 1000)} s  version ${s.version}`,
      ];
      if (s.pilot) lines.splice(2, 0, pilotLine(s.pilot));
      const l = Object.entries(s.links ?? {});
      if (l.length) lines.push(`link faults: ${l.map(([k, v]) => `${k}=${v}`).join(" ")}`);
      const c = Object.entries(s.counters);
      if (c.length) lines.push(`bad input: ${c.map(([k, v]) => `${k}=${v}`).join(" ")}`);
      return lines.join("\n");
    },
  } satisfies CommandSpec<undefined>,
  meter: {
    usage: "meter",
    summary: "read the energy meter now",
    parse: none,
    run: async (ctx) => {
      const m = await ctx.pile.meter();
      return m.ok ? { ok: true, result: m } : { ok: false, error: { code: m.code, message: m.message } };
    },
    format: (r) => {
      const m = r as Extract<MeterView, { ok: true }>;
      return `energy ${m.energyImportWh} Wh  power ${m.powerW} W  ${m.voltageV} V  ${m.currentA} A  (age ${m.ageMs} ms)`;
    },
  } satisfies CommandSpec<undefined>,
  sessions: {
    usage: "sessions [N]",
    summary: "the last N sessions (default 10)",
    parse: count(10, 1000),
    run: (ctx, n) => ({ ok: true, result: ctx.pile.sessions(n) }),
    format: (r) => {
      const list = r as SessionView[];
      if (list.length === 0) return "no sessions";
      return list
        .map(
          (s) =>
            `${s.id.slice(0, 8)} ${ts(s.startedAt)} → ${ts(s.endedAt)} ${s.carrier} ${s.deviceId} code ${s.codeId.slice(0, 8)} ` +
            `${s.energyWh} Wh${energyNote(s)} ${s.status}${s.reason ? ` ${s.reason}` : ""}` +
            `${(s.faults ?? []).length > 0 ? ` fault ${s.faults.join(",")}` : ""}`,
        )
        .join("\n");
    },
  } satisfies CommandSpec<number>,
  faults: {
    usage: "faults",
    summary: "faults not yet cleared (LATCHED: holding the pile FAULTED now)",
    parse: none,
    run: (ctx) => ({ ok: true, result: ctx.pile.faults() }),
    format: (r) => {
      const list = r as FaultView[];
      if (list.length === 0) return "no faults";
      return list
        .map(
          (f) =>
            `${f.code} since ${ts(f.since)}${f.latched ? " LATCHED" : ""}${f.detail ? ` ${f.detail}` : ""}`,
        )
        .join("\n");
    },
  } satisfies CommandSpec<undefined>,
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
  } satisfies CommandSpec<string>,
  stop: {
    usage: "stop",
    summary: "stop the running session",
    mutates: () => true,
    parse: none,
    run: async (ctx) => fromResult(await ctx.pile.stop(ctx.actor)),
    format: detailText,
  } satisfies CommandSpec<undefined>,
  "relay-test": {
    usage: "relay-test",
    summary: "close and reopen the contactor with no vehicle plugged in, checking its feedback",
    mutates: () => true,
    parse: none,
    run: async (ctx) => fromResult(await ctx.pile.relayTest(ctx.actor)),
    format: detailText,
  } satisfies CommandSpec<undefined>,
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
  } satisfies CommandSpec<boolean>,
  keys: {
    usage: "keys [list|add ID HEX|retire ID]",
    summary: "list, add or retire pile keys (bytes are never shown)",
    mutates: (args) => !(args.length === 0 || (args.length === 1 && args[0] === "list")),
    parse: (args): Parsed<KeysArgs> => {
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
    },
    run: (ctx, a) => {
      if (a.op === "list") return { ok: true, result: ctx.pile.keys.list() };
      if (a.op === "add") return fromResult(ctx.pile.keys.add(a.keyId, a.hex, ctx.actor));
      return fromResult(ctx.pile.keys.retire(a.keyId, ctx.actor));
    },
    // Anything after `add ID` may be key material: it never reaches the audit log.
    auditArgs: (args) =>
      args[0] === "add" ? args.slice(0, 2).concat(args.length > 2 ? ["[redacted]"] : []) : args,
    format: (r) => {
      if (!Array.isArray(r)) return detailText(r);
      const list = r as KeyView[];
      if (list.length === 0) return "no keys";
      return list
        .map(
          (k) => `key ${k.keyId} (0x${k.keyId.toString(16).padStart(8, "0")}) ${k.file} added ${ts(k.added)}`,
        )
        .join("\n");
    },
  } satisfies CommandSpec<KeysArgs>,
  time: {
    usage: "time",
    summary: "board clock, time floor and skew",
    parse: none,
    run: (ctx) => ({ ok: true, result: ctx.pile.time() }),
    format: (r) => {
      const t = r as TimeView;
      return `board ${ts(t.board)}\nfloor ${t.floor ? ts(t.floor) : "-"}\nnow   ${ts(t.now)}\nskew  ${t.skewMs} ms`;
    },
  } satisfies CommandSpec<undefined>,
  log: {
    usage: "log [N]",
    summary: "the last N audit-log entries (default 20)",
    parse: count(20, 1000),
    run: (ctx, n) => ({ ok: true, result: ctx.pile.log(n) }),
    format: (r) => {
      const list = r as AuditView[];
      if (list.length === 0) return "log empty";
      return list
        .map(
          (e) =>
            `${ts(e.at)} ${e.actor}${e.peer ? `(uid ${e.peer.uid} pid ${e.peer.pid})` : ""} ${e.action}${e.args?.length ? ` ${e.args.join(" ")}` : ""} → ${e.outcome}${e.detail ? ` (${e.detail})` : ""}`,
        )
        .join("\n");
    },
  } satisfies CommandSpec<number>,
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
  } satisfies CommandSpec<string>,
  // --- OCPP ---
  ...OCPP_SPECS,
};

export type CommandName = keyof typeof SPECS;

/** Every command name, in help order. */
export const COMMAND_NAMES = Object.keys(SPECS) as CommandName[];

/** Names accepted for a command besides its own (pilectl's `meter-now`). */
const ALIASES: Record<string, CommandName> = { "meter-now": "meter" };

export function resolveCommand(name: string): CommandName | undefined {
  if (Object.hasOwn(SPECS, name)) return name as CommandName;
  return Object.hasOwn(ALIASES, name) ? ALIASES[name] : undefined;
}

export function commandHelp(): string {
  return COMMAND_NAMES.map((n) => `  ${SPECS[n].usage.padEnd(34)} ${SPECS[n].summary}`).join("\n");
}

/** Human text of a command's successful result. */
export function formatResult(name: CommandName, result: unknown): string {
  return SPECS[name].format(result);
}

/** The arguments of a command as the audit log may keep them: key-shaped material never. */
export function auditArgs(name: string, args: string[]): string[] {
  const c = resolveCommand(name);
  const spec = c === undefined ? undefined : (SPECS[c] as CommandSpec<unknown>);
  // An unknown command's words may be anything (a key pasted in the wrong place): keep none.
  if (c === undefined) return [];
  // The name takes part, so a key split between the name and the first argument is found too.
  const words = redactWords([name, ...args]).slice(1);
  return spec?.auditArgs ? redactWords(spec.auditArgs(words)) : words;
}

/**
 * Whether a command is audited: one that may change something, and every refusal of its words
 * (unknown command, bad usage). Read-only queries (status, a monitor's poll) are not.
 */
export function audited(name: string, args: string[], outcome: CommandOutcome): boolean {
  const c = resolveCommand(name);
  if (c === undefined) return true;
  if (!outcome.ok && outcome.error.code === "USAGE") return true;
  const spec = SPECS[c] as CommandSpec<unknown>;
  return spec.mutates?.(args) ?? false;
}

/**
 * Parses, runs and audits one command. Never throws: a PileControl that throws gives INTERNAL.
 * Error codes of its own: UNKNOWN_COMMAND, USAGE, INTERNAL; others come from the pile.
 */
export async function executeCommand(
  ctx: CommandContext,
  name: string,
  args: string[],
): Promise<CommandOutcome> {
  const c = resolveCommand(name);
  let outcome: CommandOutcome;
  if (c === undefined) {
    outcome = {
      ok: false,
      error: { code: "UNKNOWN_COMMAND", message: `unknown command '${redactWord(name.slice(0, 32))}'` },
    };
  } else {
    const spec = SPECS[c] as CommandSpec<unknown>;
    const p = spec.parse(args);
    if (!p.ok)
      outcome = { ok: false, error: { code: "USAGE", message: `${p.message} (usage: ${spec.usage})` } };
    else {
      try {
        outcome = await spec.run(ctx, p.args);
      } catch (e) {
        const code = (e as { code?: unknown }).code;
        outcome = {
          ok: false,
          error: {
            code: "INTERNAL",
            message: `the pile could not do it${typeof code === "string" ? ` (${code})` : ""}`,
          },
        };
      }
    }
  }
  // A refusal may quote its arguments back ("fault X is not latched"): never key material.
  if (!outcome.ok)
    outcome = { ok: false, error: { ...outcome.error, message: redactWord(outcome.error.message) } };
  if (!audited(name, args, outcome)) return outcome;
  const entry: AuditEntry = {
    actor: ctx.actor,
    action: c ?? "unknown",
    args: auditArgs(name, args),
    outcome: outcome.ok ? "ok" : outcome.error.code,
    ...(ctx.peer ? { peer: { uid: ctx.peer.uid, pid: ctx.peer.pid } } : {}),
  };
  try {
    ctx.pile.audit(entry);
  } catch {
    // An audit sink that fails must not turn a done action into a refused one; the pile logs it.
  }
  return outcome;
}
