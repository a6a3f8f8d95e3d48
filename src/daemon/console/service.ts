/**
 * The console on a link: feeds the link's bytes to the interpreter, writes its output, performs
 * its actions (secret check, commands of the shared table, audit entries) and ticks it for the
 * idle logout. Everything that decides lives in interpreter.ts.
 */
import type { Logger } from "pino";
import { executeCommand, formatResult, type PileControl, resolveCommand } from "../../control/index.js";
import { type Clock, type ConsoleLink, systemClock } from "../../hw/ports.js";
import { type ConsoleAction, ConsoleInterpreter, type Step } from "./interpreter.js";
import { verifySecret } from "./secret.js";

export interface ConsoleServiceOptions {
  link: ConsoleLink;
  pile: PileControl;
  /** The scrypt hash string of the technician secret. */
  secretHash: string;
  lockoutAfter: number;
  lockoutMs: number;
  idleLogoutMs: number;
  pileId?: string;
  clock?: Clock;
  log?: Logger;
  /** How often the idle logout is checked; default 1000 ms. */
  tickMs?: number;
  /** Secret check; defaults to scrypt verification against secretHash. */
  verify?: (secret: string) => Promise<boolean>;
}

export interface ConsoleService {
  /** Bad-input counts of the console ("console.binary", …). */
  counters(): Record<string, number>;
  /** Resolves when every action started so far has finished (tests, shutdown). */
  idle(): Promise<void>;
  close(): Promise<void>;
}

/** Performs the interpreter's actions: audit entries now, the secret check and commands in turn. */
function performer(
  o: ConsoleServiceOptions,
  interp: ConsoleInterpreter,
  verify: (secret: string) => Promise<boolean>,
  later: (work: () => Promise<Step>) => void,
): (a: ConsoleAction) => void {
  return (a: ConsoleAction): void => {
    switch (a.kind) {
      case "audit":
        try {
          o.pile.audit(a.entry);
        } catch (e) {
          o.log?.error({ err: e }, "console audit failed");
        }
        if (a.entry.action === "lockout")
          o.log?.warn({ outcome: a.entry.outcome, detail: a.entry.detail }, "console lockout");
        return;
      case "verify": {
        const secret = a.secret;
        later(async () => interp.loginResult(await verify(secret).catch(() => false)));
        return;
      }
      case "command":
        later(async () => {
          const r = await executeCommand(
            { pile: o.pile, actor: "console", counters: () => interp.counters() },
            a.name,
            a.args,
          );
          const name = resolveCommand(a.name);
          return interp.commandDone(
            r.ok
              ? { ok: true, text: name ? formatResult(name, r.result) : "" }
              : { ok: false, code: r.error.code, message: r.error.message },
          );
        });
        return;
    }
  };
}

export function startConsole(o: ConsoleServiceOptions): ConsoleService {
  const clock = o.clock ?? systemClock;
  const interp = new ConsoleInterpreter({
    clock,
    lockoutAfter: o.lockoutAfter,
    lockoutMs: o.lockoutMs,
    idleLogoutMs: o.idleLogoutMs,
    ...(o.pileId !== undefined ? { pileId: o.pileId } : {}),
  });
  const verify = o.verify ?? ((s: string) => verifySecret(o.secretHash, s));
  let closed = false;
  let chain: Promise<void> = Promise.resolve();
  let errors = 0;

  // An error in the console (a link write that throws, a step that cannot be made) is counted
  // and logged once; it never reaches the process, where it would end a charging session.
  const failed = (e: unknown): void => {
    errors++;
    if (errors === 1) o.log?.error({ err: e instanceof Error ? e.message : String(e) }, "console error");
  };
  const guarded = (step: () => Step): void => {
    try {
      apply(step());
    } catch (e) {
      failed(e);
    }
  };

  // The actions run even when the output cannot be written: the interpreter already counts on
  // them (a command it dispatched must finish, or it would wait for it forever).
  const apply = (step: Step): void => {
    if (closed) return;
    if (step.output) {
      try {
        o.link.write(step.output);
      } catch (e) {
        failed(e);
      }
    }
    for (const a of step.actions) perform(a);
  };

  const later = (work: () => Promise<Step>): void => {
    chain = chain.then(async () => {
      try {
        apply(await work());
      } catch (e) {
        failed(e);
      }
    });
  };

  const perform = performer(o, interp, verify, later);

  const unsubscribe = o.link.onData((chunk) => guarded(() => interp.feed(chunk)));
  const timer = setInterval(() => guarded(() => interp.tick()), o.tickMs ?? 1000);
  timer.unref();
  guarded(() => interp.start());

  return {
    counters: () => ({ ...interp.counters(), "console.errors": errors }),
    idle: async () => {
      let seen: Promise<void> | undefined;
      while (seen !== chain) {
        seen = chain;
        await chain;
      }
    },
    close: async () => {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      unsubscribe();
      await chain;
      await o.link.close();
    },
  };
}
