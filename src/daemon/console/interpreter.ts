/**
 * The technician console's interpreter: bytes from the terminal in, text for the terminal and
 * actions for the daemon out. Pure apart from the injected clock: no timers, no I/O, no crypto;
 * the link adapter (service.ts) performs the actions and feeds their results back.
 *
 * This is the session's logic (login, lockout, idle logout, commands); the keystrokes are the
 * line editor's (line-editor.ts), which gives it whole lines.
 */

import { type AuditEntry, carriesKey, commandHelp, resolveCommand } from "../../control/index.js";
import type { Clock } from "../../hw/ports.js";
import { LineEditor, NL, type Taint } from "./line-editor.js";

export interface InterpreterOptions {
  clock: Clock;
  /** Failed logins in a row before a lockout. */
  lockoutAfter: number;
  /** First lockout; each further one (without a good login between) doubles, up to maxLockoutMs. */
  lockoutMs: number;
  maxLockoutMs?: number;
  idleLogoutMs: number;
  /** Longest accepted line, in characters. */
  maxLine?: number;
  pileId?: string;
}

export type ConsoleAction =
  /** Check the typed secret against the stored hash, then call loginResult(). */
  | { kind: "verify"; secret: string }
  /** Run a command of the shared table, then call commandDone(). */
  | { kind: "command"; name: string; args: string[] }
  | { kind: "audit"; entry: AuditEntry };

export interface Step {
  output: string;
  actions: ConsoleAction[];
}

export type CommandReply = { ok: true; text: string } | { ok: false; code: string; message: string };

type Mode = "login" | "verifying" | "shell" | "busy";

const ACTOR = "console";
const PENDING_MAX = 4096;

export const COUNTER_NAMES = ["overlong", "binary", "unknown", "badLogin", "lockout"] as const;
export type ConsoleCounters = Record<(typeof COUNTER_NAMES)[number], number>;

const crlf = (s: string): string => s.replace(/\r?\n/g, NL);

export class ConsoleInterpreter {
  private readonly opts: Required<Omit<InterpreterOptions, "pileId">> & { pileId: string };
  private mode: Mode = "login";
  private readonly editor: LineEditor;
  private failures = 0;
  private lockouts = 0;
  private lockedUntil = 0;
  private lastInput: number;
  private pending: Uint8Array[] = [];
  private pendingLen = 0;
  private readonly count: ConsoleCounters = { overlong: 0, binary: 0, unknown: 0, badLogin: 0, lockout: 0 };
  private out = "";
  private actions: ConsoleAction[] = [];

  constructor(opts: InterpreterOptions) {
    this.opts = { maxLine: 256, maxLockoutMs: 86_400_000, pileId: "", ...opts };
    this.lastInput = opts.clock.monotonic();
    this.editor = new LineEditor(this.opts.maxLine, {
      emit: (t) => this.emit(t),
      masked: () => this.mode === "login",
      accepting: () => !(this.mode === "login" && this.lockedUntil > this.opts.clock.monotonic()),
      historyOn: () => this.mode === "shell",
      enter: (text, taint) => this.enter(text, taint),
      cancel: () => this.prompt(),
      eof: () => {
        if (this.mode !== "shell") return;
        this.emit(NL);
        this.logout("ok");
      },
    });
  }

  /** Banner and first prompt. */
  start(): Step {
    this.emit(`piled technician console${this.opts.pileId ? ` (pile ${this.opts.pileId})` : ""}${NL}`);
    this.prompt();
    return this.flush();
  }

  /** Bad-input counts, by kind, prefixed for the status view ("console.binary"). */
  counters(): Record<string, number> {
    const r: Record<string, number> = {};
    for (const k of COUNTER_NAMES) r[`console.${k}`] = this.count[k];
    return r;
  }

  get loggedIn(): boolean {
    return this.mode === "shell" || this.mode === "busy";
  }

  /** Bytes from the terminal. */
  feed(bytes: Uint8Array): Step {
    const now = this.opts.clock.monotonic();
    if (this.waiting()) {
      this.queue(bytes);
      return this.flush();
    }
    if (this.idleExpired(now)) {
      // The keystrokes that woke an idle console were meant for the shell: they must not be
      // taken as a secret at the login prompt (and count towards a lockout).
      this.logout("IDLE");
      return this.flush();
    }
    this.lastInput = now;
    for (let i = 0; i < bytes.length; i++) {
      this.editor.byte(bytes[i]!);
      if (this.waiting()) {
        this.queue(bytes.subarray(i + 1));
        break;
      }
    }
    return this.flush();
  }

  /** Time passes: idle logout. Call every second or so. */
  tick(): Step {
    if (this.idleExpired(this.opts.clock.monotonic())) this.logout("IDLE");
    return this.flush();
  }

  /** Result of a `verify` action. */
  loginResult(ok: boolean): Step {
    if (this.mode !== "verifying") return this.flush();
    const now = this.opts.clock.monotonic();
    this.lastInput = now;
    if (ok) {
      this.failures = 0;
      this.lockouts = 0;
      this.mode = "shell";
      this.audit("login", "ok");
      this.emit(`logged in; type help for commands${NL}`);
    } else {
      this.failures++;
      this.count.badLogin++;
      this.mode = "login";
      if (this.failures >= this.opts.lockoutAfter) {
        const ms = Math.min(this.opts.lockoutMs * 2 ** this.lockouts, this.opts.maxLockoutMs);
        this.lockouts++;
        this.failures = 0;
        this.lockedUntil = now + ms;
        this.count.lockout++;
        this.audit("login", "BAD_SECRET");
        this.audit("lockout", "LOCKED_OUT", `${Math.ceil(ms / 1000)} s`);
        this.emit(`login incorrect; locked out for ${Math.ceil(ms / 1000)} s${NL}`);
      } else {
        this.audit("login", "BAD_SECRET");
        this.emit(`login incorrect${NL}`);
      }
    }
    this.prompt();
    this.drain();
    return this.flush();
  }

  /** Result of a `command` action. */
  commandDone(reply: CommandReply): Step {
    if (this.mode !== "busy") return this.flush();
    this.lastInput = this.opts.clock.monotonic();
    this.mode = "shell";
    if (reply.ok) this.emit(reply.text ? `${crlf(reply.text)}${NL}` : "");
    else this.emit(`error ${reply.code}: ${crlf(reply.message)}${NL}`);
    this.prompt();
    this.drain();
    return this.flush();
  }

  // -------------------------------------------------------------------------------------------

  /** A login check or a command is running: keystrokes wait. */
  private waiting(): boolean {
    return this.mode === "verifying" || this.mode === "busy";
  }

  private flush(): Step {
    const s = { output: this.out, actions: this.actions };
    this.out = "";
    this.actions = [];
    return s;
  }

  private emit(s: string): void {
    this.out += s;
  }

  private audit(action: string, outcome: string, detail?: string): void {
    const entry: AuditEntry = { actor: ACTOR, action, outcome };
    if (detail !== undefined) entry.detail = detail;
    this.actions.push({ kind: "audit", entry });
  }

  private prompt(): void {
    this.emit(this.mode === "shell" ? "piled> " : "secret: ");
  }

  private queue(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    const room = PENDING_MAX - this.pendingLen;
    if (room <= 0) return;
    const b = bytes.subarray(0, room);
    this.pending.push(Uint8Array.from(b));
    this.pendingLen += b.length;
  }

  /** Replays keystrokes typed while a command or login check ran. */
  private drain(): void {
    while (this.pending.length > 0 && !this.waiting()) {
      const b = this.pending.shift()!;
      this.pendingLen -= b.length;
      for (let i = 0; i < b.length; i++) {
        this.editor.byte(b[i]!);
        if (this.waiting()) {
          const rest = b.subarray(i + 1);
          if (rest.length) {
            this.pending.unshift(rest);
            this.pendingLen += rest.length;
          }
          return;
        }
      }
    }
  }

  private idleExpired(now: number): boolean {
    if (this.mode === "shell") return now - this.lastInput >= this.opts.idleLogoutMs;
    if (this.mode === "login" && this.editor.dirty && now - this.lastInput >= this.opts.idleLogoutMs) {
      // A half-typed secret left at the prompt is forgotten, silently.
      this.editor.reset();
      this.lastInput = now;
    }
    return false;
  }

  private logout(reason: "ok" | "IDLE"): void {
    this.mode = "login";
    this.editor.reset();
    this.pending = [];
    this.pendingLen = 0;
    this.audit("logout", reason);
    this.emit(reason === "IDLE" ? `${NL}idle: logged out${NL}` : `logged out${NL}`);
    this.prompt();
  }

  /** A whole line from the editor. */
  private enter(text: string, taint: Taint): void {
    if (taint) {
      this.count[taint]++;
      this.emit(
        taint === "overlong"
          ? `error: line longer than ${this.opts.maxLine} characters, ignored${NL}`
          : `error: binary data or invalid UTF-8 on the line, ignored${NL}`,
      );
      this.prompt();
      return;
    }
    if (this.mode === "login") this.enterSecret(text);
    else this.enterCommand(text);
  }

  private enterSecret(secret: string): void {
    const now = this.opts.clock.monotonic();
    if (this.lockedUntil > now) {
      this.emit(`locked out; try again in ${Math.ceil((this.lockedUntil - now) / 1000)} s${NL}`);
      this.prompt();
      return;
    }
    if (secret.length === 0) {
      this.prompt();
      return;
    }
    this.mode = "verifying";
    this.actions.push({ kind: "verify", secret });
  }

  private enterCommand(text: string): void {
    const words = text
      .trim()
      .split(/\s+/)
      .filter((w) => w.length > 0);
    const [name, ...args] = words;
    if (name === undefined) {
      this.prompt();
      return;
    }
    const known = resolveCommand(name) !== undefined || ["help", "logout", "exit"].includes(name);
    // A line carrying key material, or that is no command (a secret, a key pasted in the
    // wrong place), is not kept, even in memory.
    const keep = known && !(name === "keys" && args[0] === "add") && !carriesKey(words);
    this.editor.record(text.trim(), keep);
    if (name === "help" && args.length === 0) {
      this.emit(
        `${crlf(commandHelp())}${NL}  ${"help".padEnd(34)} this list${NL}  ${"logout".padEnd(34)} end the session (also Ctrl-D)${NL}`,
      );
      this.prompt();
      return;
    }
    if (name === "logout" || name === "exit") {
      this.logout("ok");
      return;
    }
    if (resolveCommand(name) === undefined || name === "meter-now") {
      this.count.unknown++;
      this.audit("unknown", "UNKNOWN_COMMAND");
      // The word is not repeated: it may be the secret or a key typed at the wrong prompt.
      this.emit(`unknown command; help lists the commands${NL}`);
      this.prompt();
      return;
    }
    this.mode = "busy";
    this.actions.push({ kind: "command", name, args });
  }
}
