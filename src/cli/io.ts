/** Shared plumbing of pilectl commands: output, exit codes, option parsing, typed errors. */
import { type ParseArgsConfig, parseArgs } from "node:util";

export const EXIT_OK = 0;
/** The command ran and the answer is "no" (a rejected code, a meter that does not answer). */
export const EXIT_REJECTED = 1;
/** Usage, file or configuration error. */
export const EXIT_USAGE = 2;

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

export const nodeIo: CliIo = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
};

export class CliError extends Error {
  override readonly name = "CliError";
  constructor(
    message: string,
    readonly exitCode: number = EXIT_USAGE,
  ) {
    super(message);
  }
}

/** node:util parseArgs, strict, with its errors turned into usage errors. */
export function parseOptions<T extends ParseArgsConfig["options"]>(
  args: string[],
  options: T,
  allowPositionals = false,
): { values: Record<string, string | boolean | string[] | boolean[] | undefined>; positionals: string[] } {
  try {
    const r = parseArgs({ args, options, strict: true, allowPositionals });
    return {
      values: r.values as Record<string, string | boolean | string[] | boolean[] | undefined>,
      positionals: r.positionals,
    };
  } catch (e) {
    throw new CliError(e instanceof Error ? e.message : String(e));
  }
}

/** A whole number option within [min, max]; `fallback` when absent. */
export function intOption(
  values: Record<string, unknown>,
  name: string,
  min: number,
  max: number,
  fallback?: number,
): number {
  const raw = values[name];
  if (raw === undefined) {
    if (fallback === undefined) throw new CliError(`--${name} is required`);
    return fallback;
  }
  if (typeof raw !== "string" || !/^\d+$/.test(raw)) throw new CliError(`--${name} must be a whole number`);
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min || n > max)
    throw new CliError(`--${name} must be between ${min} and ${max}`);
  return n;
}

export function stringOption(values: Record<string, unknown>, name: string): string {
  const raw = values[name];
  if (typeof raw !== "string" || raw.length === 0) throw new CliError(`--${name} is required`);
  return raw;
}

export function printJson(io: CliIo, value: unknown): void {
  io.out(`${JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? v.toString() : v))}\n`);
}
