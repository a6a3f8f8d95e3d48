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

/** How deep below the logged object a secret field is still found (pino paths have no `**`). */
const REDACT_DEPTH = 5;

/** `key`, `*.key`, `*.*.key`, … for every secret field. */
export function redactPaths(): string[] {
  const out: string[] = [];
  for (const f of SECRET_FIELDS) {
    for (let d = 0; d <= REDACT_DEPTH; d++) out.push(`${"*.".repeat(d)}${f}`);
  }
  return out;
}

export const REDACTED = "[redacted]";

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
    redact: { paths: redactPaths(), censor: REDACTED },
    // Errors keep their `code`: that, not the message, is what an operator greps for.
    serializers: { err: pino.stdSerializers.err },
  };
  if (opts.destination) return pino(options, opts.destination);
  const dest = pino.destination({ dest: 1, sync: false, maxLength: MAX_BUFFERED_LOG_BYTES });
  dest.on("error", opts.onWriteError ?? logErrorReporter().onWriteError);
  return pino(options, dest);
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
