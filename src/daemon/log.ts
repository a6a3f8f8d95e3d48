/**
 * Logging: pino JSON lines on stdout (journald adds time, unit and priority), one child logger
 * per component, and redaction of every field that could carry a secret, configured once here.
 */
import { type DestinationStream, type Logger, type LoggerOptions, pino } from "pino";
import { toHex } from "../protocol/bytes.js";

export type { Logger } from "pino";

export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";

/** Field names that never reach a log line, whatever object they sit in. */
export const SECRET_FIELDS = [
  "key",
  "keys",
  "verifySecret",
  "V",
  "proof",
  "deviceProof",
  "pileProof",
  "stopProof",
  "secret",
  "password",
  "hash",
  "secretHash",
] as const;

export const REDACTED = "[redacted]";

const SECRETS: ReadonlySet<string> = new Set(SECRET_FIELDS);
/** How deep below the logged object secret fields are looked for (pino's paths stopped at 5). */
const REDACT_DEPTH = 16;

/**
 * `v` with the value of every secret field replaced by REDACTED, in objects, arrays and errors,
 * and whatever sits deeper than REDACT_DEPTH replaced whole; the logged object is never changed
 * (what holds a secret is copied). `v` itself, nothing allocated, when it holds none: most lines. Values that
 * serialise themselves (toJSON: Buffer, Date) are left as they are.
 */
export function redactSecrets(v: unknown, depth = 0): unknown {
  if (typeof v !== "object" || v === null) return v;
  if (depth > REDACT_DEPTH) return REDACTED; // deeper than looked: nothing from there is shown
  if (Array.isArray(v)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < v.length; i++) {
      const r = redactSecrets(v[i], depth + 1);
      if (r === v[i]) continue;
      out ??= v.slice();
      out[i] = r;
    }
    return out ?? v;
  }
  if (ArrayBuffer.isView(v) || typeof (v as { toJSON?: unknown }).toJSON === "function") return v;
  const o = v as Record<string, unknown>;
  let out: Record<string, unknown> | undefined;
  for (const k of Object.keys(o)) {
    const r = SECRETS.has(k) ? REDACTED : redactSecrets(o[k], depth + 1);
    if (r === o[k]) continue;
    if (!out) {
      out = v instanceof Error ? { type: v.name, message: v.message, stack: v.stack } : {};
      Object.assign(out, o);
    }
    out[k] = r;
  }
  return out ?? v;
}

export interface LogOptions {
  level?: LogLevel;
  /** Defaults to stdout. Tests pass a stream that collects lines. */
  destination?: DestinationStream;
  /**
   * Called on each failed write of the default destination (stdout closed, EPIPE, …). A log that
   * cannot be written never ends the process; the default reports the first failure on stderr.
   */
  onWriteError?: (e: Error) => void;
}

/** Most bytes held for a stdout that does not drain; lines beyond it are dropped. */
const MAX_BUFFERED_LOG_BYTES = 4 * 1024 * 1024;

/** Reports the first failure of the log on stderr, once; later ones are only counted. */
export function logErrorReporter(): { onWriteError: (e: Error) => void; count: () => number } {
  let n = 0;
  return {
    onWriteError: (e) => {
      n++;
      if (n !== 1) return;
      // stderr may be as broken as stdout: its failure is an event, which must not end the process
      if (process.stderr.listenerCount("error") === 0) process.stderr.on("error", () => {});
      try {
        process.stderr.write(
          `piled: log destination failing (${(e as NodeJS.ErrnoException).code ?? e.message}); lines are dropped\n`,
        );
      } catch {
        // stderr gone as well: nothing left to tell
      }
    },
    count: () => n,
  };
}

export function createLogger(opts: LogOptions = {}): Logger {
  const options: LoggerOptions = {
    level: opts.level ?? "info",
    base: { name: "piled" },
    // One walk of the logged object for secret fields (redactSecrets): pino's own `redact`, with
    // a wildcard path per depth and field, cost ~15× the line itself.
    formatters: {
      log: (o) => redactSecrets(o) as Record<string, unknown>,
      bindings: (b) => redactSecrets(b) as Record<string, unknown>,
    },
    // Errors keep their `code`: that, not the message, is what an operator greps for.
    serializers: { err: pino.stdSerializers.err },
  };
  if (opts.destination) return redactingChildren(pino(options, opts.destination));
  const dest = pino.destination({ dest: 1, sync: false, maxLength: MAX_BUFFERED_LOG_BYTES });
  dest.on("error", opts.onWriteError ?? logErrorReporter().onWriteError);
  return redactingChildren(pino(options, dest));
}

/** A child's bindings skip pino's formatters: they are redacted as they are bound, for every descendant. */
function redactingChildren(root: Logger): Logger {
  const child = root.child;
  Object.defineProperty(root, "child", {
    value: function (
      this: Logger,
      bindings: Parameters<Logger["child"]>[0],
      o?: Parameters<Logger["child"]>[1],
    ) {
      return child.call(this, redactSecrets(bindings) as typeof bindings, o);
    },
  });
  return root;
}

/**
 * Writes out what the logger still buffers, synchronously: the last lines before a
 * `process.exit` (a fatal one above all) are otherwise lost. Never throws.
 */
export function flushLogSync(log: Logger): void {
  const dest = (log as unknown as Record<symbol, unknown>)[pino.symbols.streamSym] as
    | { flushSync?: () => void }
    | undefined;
  try {
    dest?.flushSync?.();
  } catch {
    // not open yet, or the destination is failing: nothing more can be done here
  }
}

export type Component =
  | "ble"
  | "meter"
  | "gpio"
  | "pile"
  | "store"
  | "console"
  | "control"
  | "daemon"
  | "notify";

/** The child logger of one component: every line it writes carries `component`. */
export function componentLogger(root: Logger, component: Component | string): Logger {
  return root.child({ component });
}

/** Lower-case hex of a frame, for traces. */
export function hex(bytes: Uint8Array): string {
  return toHex(bytes);
}

/** Where each message type carries a proof: [start, end) of the bytes a trace must not show. */
const PROOF_SPANS: ReadonlyMap<number, readonly [number, number]> = new Map([
  [0x02, [1, 33]], // PRESENT: deviceProof
  [0x03, [1, 33]], // STOP: stopProof
  [0x81, [17, 49]], // CHALLENGE: pileProof
]);

/** A whole message in hex with its proof, if it carries one, replaced by `*`. */
export function redactedHex(message: Uint8Array): string {
  const span = message.length > 0 ? PROOF_SPANS.get(message[0]!) : undefined;
  if (!span) return hex(message);
  const [a, b] = span;
  return (
    hex(message.subarray(0, a)) +
    "*".repeat(2 * Math.max(0, Math.min(b, message.length) - a)) +
    hex(message.subarray(Math.min(b, message.length)))
  );
}

/**
 * Logs one whole message at trace level with its direction ("rx" into the pile, "tx" out of it),
 * proofs redacted (keys and V are never in a frame). Costs nothing when trace is off.
 */
export function traceFrame(
  log: Logger,
  dir: "rx" | "tx",
  message: Uint8Array,
  fields: Record<string, unknown> = {},
): void {
  if (!log.isLevelEnabled("trace")) return;
  log.trace({ ...fields, dir, len: message.length, hex: redactedHex(message) }, "frame");
}

/** process.exit once the log is written out: the last line before a crash exit is kept. */
export function exitFlushed(log: Logger, code: number): never {
  flushLogSync(log);
  process.exit(code);
}
