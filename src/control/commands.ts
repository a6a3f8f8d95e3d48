/**
 * Dispatch through the command table (table.ts): name resolution, help, formatting, the audit
 * rule, and `executeCommand`, which parses, runs and audits one command for either front end.
 */
import { redactWord, redactWords } from "./redact.js";
import { type CommandContext, type CommandName, TABLE } from "./table.js";
import type { AuditEntry, CommandOutcome } from "./views.js";

/** Every command name, in help order. */
export const COMMAND_NAMES = Object.keys(TABLE) as CommandName[];

/** Names accepted for a command besides its own (pilectl's `meter-now`). */
const ALIASES: Record<string, CommandName> = { "meter-now": "meter" };

export function resolveCommand(name: string): CommandName | undefined {
  if (Object.hasOwn(TABLE, name)) return name as CommandName;
  return Object.hasOwn(ALIASES, name) ? ALIASES[name] : undefined;
}

export function commandHelp(): string {
  return COMMAND_NAMES.map((n) => `  ${TABLE[n].usage.padEnd(34)} ${TABLE[n].summary}`).join("\n");
}

/** Human text of a command's successful result. */
export function formatResult(name: CommandName, result: unknown): string {
  return TABLE[name].format(result);
}

/** The arguments of a command as the audit log may keep them: key-shaped material never. */
export function auditArgs(name: string, args: string[]): string[] {
  const c = resolveCommand(name);
  const spec = c === undefined ? undefined : TABLE[c];
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
  const spec = TABLE[c];
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
    const spec = TABLE[c];
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
