/**
 * The daemon's configuration: ONE zod schema that is both the TypeScript type and the validator.
 *
 * The file is plain JSON (RFC 8259): no comments, no trailing commas. Every field has a range, and
 * every field that can sensibly have one has a default, so a minimal file names only what differs
 * per pile (`pileId`, the GPIO lines, the meter port). Unknown keys are rejected at every level so
 * that a typo ("contactr") never passes silently; every problem is reported at once, each with its
 * path in the file (`meter.baud: must be one of …`). Relative paths are relative to the folder
 * of the config file.
 */

import { dirname, resolve } from "node:path";
import { z } from "zod";
import { OCPP_DEFAULTS, OcppConfigSchema } from "../ocpp/config.js";
import {
  deadlineFields,
  lockSafeStateSchema,
  parsePileCoreConfig,
  pileIdSchema,
  skewMsSchema,
  statusIntervalMsSchema,
} from "../pile/config.js";
import { err, ok, type Result } from "../protocol/bytes.js";
import { readSmallFile } from "../sdk/files.js";
import { siteSchema } from "../site/config.js";
import {
  absPath,
  auditSchema,
  baud,
  consoleSchema,
  controlSocketSchema,
  ms,
  storeSchema,
} from "./config-sections.js";

export {
  auditSchema,
  consoleSchema,
  controlSocketSchema,
  SCRYPT_HASH_RE,
  STANDARD_BAUDS,
  storeSchema,
} from "./config-sections.js";

/** One GPIO line: a chip label (as in /sys/class/gpio/gpiochip*\/label) plus an offset. */
const gpioLineFields = {
  chip: z.string().min(1).max(64),
  line: z.int().min(0).max(1023),
  activeLow: z.boolean().default(false),
};

/** An output line (a relay coil): a debounce would mean nothing there and is refused. */
export const gpioOutputSchema = z.strictObject(gpioLineFields);

/** An input line: the level must hold `debounceMs` before a change is reported. */
export const gpioLineSchema = z.strictObject({
  ...gpioLineFields,
  debounceMs: z.int().min(0).max(1000).optional(),
});

export const gpioSchema = z.strictObject({
  driver: z.enum(["sysfs", "sim"]).default("sysfs"),
  contactor: gpioOutputSchema,
  lock: gpioOutputSchema,
  contactorFeedback: gpioLineSchema,
  lockFeedback: gpioLineSchema,
  plugPresent: gpioLineSchema.optional(),
  emergencyStop: gpioLineSchema.optional(),
  /**
   * Watched inputs are read again this often (a missed edge or a failed read shows within one
   * period; a read that fails is a FEEDBACK_UNREADABLE fault). 0 turns it off.
   */
  resampleMs: z.union([z.literal(0), z.int().min(20).max(10_000)]).default(200),
});

export const meterSchema = z.strictObject({
  driver: z.enum(["modbus", "sim"]).default("modbus"),
  port: absPath.default("/dev/piled-meter"),
  model: z.enum(["sdm630", "sdm120", "abb-b23", "em340"]),
  unit: z.int().min(1).max(247).default(1),
  baud: baud.default(9600),
  parity: z.enum(["none", "even", "odd"]).default("none"),
  stopBits: z.union([z.literal(1), z.literal(2)]).default(1),
  dataBits: z.union([z.literal(7), z.literal(8)]).default(8),
  timeoutMs: ms(50, 10_000, 500),
  pollIntervalMs: ms(100, 60_000, 1000),
  /**
   * Poll interval while the pile is idle with its contactor open and reading open (no energy
   * flows): at least `pollIntervalMs`, at most a third of `deadlines.meterStaleMs` (the reading
   * stays fresh through one failed poll). A pile leaving idle polls at `pollIntervalMs` at once.
   */
  idlePollIntervalMs: ms(100, 60_000, 1500),
  retries: z.int().min(0).max(10).default(2),
});

/**
 * How the pile senses the vehicle: the plug-present GPIO (`gpio.plugPresent`, or none at all),
 * or the control-pilot MCU on a UART (firmware-bridge/PROTOCOL.md). `sim`: run the pilot
 * firmware in the libsimavr harness (firmware-bridge/build) and take its pty as the port; only
 * with the simulated plant (`gpio.driver: "sim"`).
 */
export const vehicleSchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("gpio") }),
  z.strictObject({
    kind: z.literal("pilot-mcu"),
    port: absPath.default("/dev/piled-pilot"),
    baud: baud.default(115200),
    /** The board's heartbeat to the MCU. */
    heartbeatMs: ms(20, 1000, 100),
    /** No valid line from the MCU for this long = MCU lost (a PILOT_MCU fault). */
    silenceMs: ms(100, 10_000, 1000),
    /** The MCU drops its permit when the board's heartbeat is older than this. */
    heartbeatLimitMs: ms(50, 10_000, 500),
    /** The most current the PWM advertises (IEC 61851-1: 6–80 A). */
    maxCurrentA: z.number().min(6).max(80).default(32),
    sim: z.boolean().default(false),
  }),
]);

const bleControllerSchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("hci"), device: z.int().min(0).max(15).default(0) }),
  z.strictObject({
    kind: z.literal("uart"),
    path: absPath,
    baud: z.int().min(9600).max(4_000_000).default(1_000_000),
  }),
]);

export const bleSchema = z.strictObject({
  enabled: z.boolean().default(true),
  controller: bleControllerSchema.default({ kind: "hci", device: 0 }),
});

/** The pile core's own deadline fields (src/pile/config.ts): one range and default each. */
export const deadlinesSchema = z.strictObject(deadlineFields);

export const configSchema = z.strictObject({
  pileId: pileIdSchema,
  keyDir: absPath.default("/etc/piled/keys"),
  /** Holds the SQLite file (piled.db) and the one-daemon lock (piled.lock, piled.pid). */
  stateDir: absPath.default("/var/lib/piled"),
  /** Tolerance on code time windows (PROTOCOL.md §3 `skew`). */
  clockSkewMs: skewMsSchema,
  gpio: gpioSchema,
  vehicle: vehicleSchema.default({ kind: "gpio" }),
  lockSafeState: lockSafeStateSchema,
  meter: meterSchema,
  ble: bleSchema.default({ enabled: true, controller: { kind: "hci", device: 0 } }),
  console: consoleSchema.default({
    enabled: false,
    port: "/dev/piled-console",
    baud: 115200,
    lockoutAfter: 5,
    lockoutMs: 60_000,
    idleLogoutMs: 300_000,
  }),
  controlSocket: controlSocketSchema.default({ path: "/run/piled/control.sock", mode: "0660" }),
  audit: auditSchema.default({ maxRows: 10_000 }),
  store: storeSchema.default({ minFreeBytes: 1_048_576, retryMs: 2000 }),
  deadlines: deadlinesSchema.default(() => deadlinesSchema.parse({})),
  statusIntervalMs: statusIntervalMsSchema,
  /** The dashboard (with its metrics endpoint) and the MQTT bridge (src/site/config.ts); all off by default. */
  site: siteSchema.default(() => siteSchema.parse({})),
  logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  /** The link to an OCPP 2.0.1 central system (src/ocpp/config.ts); off by default. */
  ocpp: OcppConfigSchema.default(OCPP_DEFAULTS),
});

/** Across sections: a pilot MCU is the one vehicle sense; its simulator needs the simulated plant. */
const checkedConfigSchema = configSchema.superRefine((c, ctx) => {
  if (c.vehicle.kind !== "pilot-mcu") return;
  if (c.gpio.plugPresent !== undefined)
    ctx.addIssue({
      code: "custom",
      path: ["gpio", "plugPresent"],
      message: "a pile with a pilot MCU senses the vehicle through it: no plugPresent line",
    });
  if (c.vehicle.sim && c.gpio.driver !== "sim")
    ctx.addIssue({ code: "custom", path: ["vehicle", "sim"], message: 'only with gpio.driver "sim"' });
});

/** The validated configuration, defaults filled in. */
export type Config = z.infer<typeof configSchema>;
/** What a config file may contain (defaults optional). */
export type ConfigInput = z.input<typeof configSchema>;

export type ConfigErrorCode = "NOT_FOUND" | "PARSE" | "INVALID";

export interface ConfigIssue {
  /** Dotted path in the file ("meter.baud", "gpio.contactor.line"); "" for the whole file. */
  path: string;
  message: string;
}

export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(
    readonly code: ConfigErrorCode,
    readonly issues: ConfigIssue[],
    readonly file?: string,
  ) {
    super(
      `${file ?? "config"}: ${issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join("; ")}`,
    );
  }
}

function issueMessage(i: z.core.$ZodIssue): string {
  switch (i.code) {
    case "invalid_value":
      return `must be one of ${i.values.map((v) => JSON.stringify(v)).join(", ")}`;
    case "invalid_union": {
      // A union of literals (baud, stopBits): list the literals.
      const lits = i.errors.flatMap((e) => e.flatMap((x) => (x.code === "invalid_value" ? x.values : [])));
      if (lits.length > 0 && lits.length === i.errors.length)
        return `must be one of ${lits.map((v) => JSON.stringify(v)).join(", ")}`;
      return i.message;
    }
    case "invalid_type":
      return i.input === undefined
        ? `required (${i.expected})`
        : `must be ${i.expected === "int" ? "a whole number" : `a ${i.expected}`}`;
    case "too_small":
      return `must be at least ${String(i.minimum)}${i.origin === "string" ? " characters" : ""}`;
    case "too_big":
      return `must be at most ${String(i.maximum)}${i.origin === "string" ? " characters" : ""}`;
    default:
      return i.message;
  }
}

/** Validates an already-parsed value; every issue at once. Never throws. */
export function validateConfig(value: unknown, file?: string): Result<Config, ConfigError> {
  const r = checkedConfigSchema.safeParse(value, { reportInput: true });
  if (r.success) return ok(r.data);
  const issues: ConfigIssue[] = r.error.issues.flatMap((i) => {
    const path = i.path.map((p) => String(p));
    // One issue per unknown key, at the key's own path, so each typo is named where it is.
    if (i.code === "unrecognized_keys")
      return i.keys.map((k) => ({ path: [...path, k].join("."), message: "unknown key" }));
    return [{ path: path.join("."), message: issueMessage(i) }];
  });
  return err(new ConfigError("INVALID", issues, file));
}

/**
 * The paths of object keys given twice in a JSON text already known to be valid JSON
 * (JSON.parse keeps the last one silently). A small scanner: strings, objects, arrays; every
 * other token is skipped.
 */
export function duplicateKeys(text: string): string[] {
  const dups: string[] = [];
  let i = 0;
  const ws = (): void => {
    while (i < text.length && " \t\n\r".includes(text[i]!)) i++;
  };
  const str = (): string => {
    const start = i;
    i++;
    while (text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const value = (path: string[]): void => {
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      const seen = new Set<string>();
      ws();
      if (text[i] === "}") {
        i++;
        return;
      }
      for (;;) {
        ws();
        const k = str();
        if (seen.has(k)) dups.push([...path, k].join("."));
        seen.add(k);
        ws();
        i++; // ':'
        value([...path, k]);
        ws();
        if (text[i++] === "}") return;
      }
    } else if (c === "[") {
      i++;
      ws();
      if (text[i] === "]") {
        i++;
        return;
      }
      for (let n = 0; ; n++) {
        value([...path, String(n)]);
        ws();
        if (text[i++] === "]") return;
      }
    } else if (c === '"') str();
    else while (i < text.length && !",]} \t\n\r".includes(text[i]!)) i++;
  };
  value([]);
  return dups;
}

const parseFail = (path: string, message: string) =>
  err(new ConfigError("PARSE", [{ path: "", message }], path));

/**
 * Reads and validates a comment-free JSON config file: a regular file of at most 64 KiB, UTF-8
 * without a byte order mark, no key given twice. Never throws; touches nothing else.
 */
export function loadConfig(path: string): Result<Config, ConfigError> {
  const read = readSmallFile(path, { what: "configuration" });
  if (!read.ok) {
    if (read.error.code === "NOT_FOUND")
      return err(new ConfigError("NOT_FOUND", [{ path: "", message: "no such file" }], path));
    return parseFail(path, read.error.message);
  }
  const text = read.value;
  if (text.startsWith("\uFEFF"))
    return parseFail(path, "starts with a byte order mark (BOM): save it as UTF-8 without BOM");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return parseFail(
      path,
      `not valid JSON (comments are not allowed): ${e instanceof Error ? e.message : String(e)}`,
    );
  }
  const dups = duplicateKeys(text);
  if (dups.length > 0)
    return err(
      new ConfigError(
        "PARSE",
        dups.map((d) => ({ path: d, message: "given twice (only one may be)" })),
        path,
      ),
    );
  const r = validateConfig(value, path);
  return r.ok ? ok(resolvePaths(r.value, dirname(resolve(path)))) : r;
}

/** Every path field made absolute against `base` (the config file's folder). */
export function resolvePaths(c: Config, base: string): Config {
  const abs = (p: string): string => resolve(base, p);
  const out: Config = structuredClone(c);
  out.keyDir = abs(c.keyDir);
  out.stateDir = abs(c.stateDir);
  out.meter.port = abs(c.meter.port);
  out.console.port = abs(c.console.port);
  if (c.console.secretHashFile !== undefined) out.console.secretHashFile = abs(c.console.secretHashFile);
  out.controlSocket.path = abs(c.controlSocket.path);
  if (out.vehicle.kind === "pilot-mcu" && c.vehicle.kind === "pilot-mcu")
    out.vehicle.port = abs(c.vehicle.port);
  if (c.ocpp.passwordFile !== undefined) out.ocpp.passwordFile = abs(c.ocpp.passwordFile);
  if (c.ocpp.caFile !== undefined) out.ocpp.caFile = abs(c.ocpp.caFile);
  if (c.ocpp.certFile !== undefined) out.ocpp.certFile = abs(c.ocpp.certFile);
  if (c.ocpp.keyFile !== undefined) out.ocpp.keyFile = abs(c.ocpp.keyFile);
  if (out.ble.controller.kind === "uart" && c.ble.controller.kind === "uart")
    out.ble.controller.path = abs(c.ble.controller.path);
  return out;
}

/** The SQLite file inside stateDir. */
export const databasePath = (c: Config): string => `${c.stateDir}/piled.db`;

/** The control socket's mode as a number (0660 → 0o660). */
export const socketMode = (c: Config): number => Number.parseInt(c.controlSocket.mode, 8);

/**
 * The pile core's config, straight from the shared schema: the daemon's fields are the core's
 * (src/pile/config.ts), only renamed where the file says more (`clockSkewMs` is `skewMs`).
 */
export const pileCoreConfigOf = (
  c: Config,
  progressIntervalMs?: number,
): ReturnType<typeof parsePileCoreConfig> =>
  parsePileCoreConfig({
    pileId: c.pileId,
    skewMs: c.clockSkewMs,
    ...c.deadlines,
    statusIntervalMs: c.statusIntervalMs,
    lockSafeState: c.lockSafeState,
    ...(progressIntervalMs !== undefined ? { progressIntervalMs } : {}),
    ...(c.vehicle.kind === "pilot-mcu" ? { pilotMaxCurrentA: c.vehicle.maxCurrentA } : {}),
  });
