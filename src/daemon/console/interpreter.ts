/**
 * The technician console's interpreter: bytes from the terminal in, text for the terminal and
 * actions for the daemon out. Pure apart from the injected clock: no timers, no I/O, no crypto;
 * the link adapter (service.ts) performs the actions and feeds their results back.
 *
 * Line editing is done here, byte by byte, rather than by a line parser on the port
 * (@serialport/parser-delimiter): a terminal sends keystrokes, not lines, and backspace, Ctrl-U,
 * Ctrl-C, the secret's masked echo and escape sequences all act before any delimiter arrives.
 */

import { type AuditEntry, carriesKey, commandHelp, resolveCommand } from "../../control/index.js";
import type { Clock } from "../../hw/ports.js";

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
type Taint = "overlong" | "binary" | null;
type Esc = "none" | "esc" | "csi" | "ss3";

const ACTOR = "console";
const NL = "\r\n";
const HISTORY = 20;
const PENDING_MAX = 4096;

export const COUNTER_NAMES = ["overlong", "binary", "unknown", "badLogin", "lockout"] as const;
export type ConsoleCounters = Record<(typeof COUNTER_NAMES)[number], number>;

const crlf = (s: string): string => s.replace(/\r?\n/g, NL);

export class ConsoleInterpreter {
  private readonly opts: Required<Omit<InterpreterOptions, "pileId">> & { pileId: string };
  private mode: Mode = "login";
  private line: string[] = [];
  private shown = 0;
  private taint: Taint = null;
  private esc: Esc = "none";
  private lastCR = false;
  // UTF-8 decoding of the byte stream.
  private need = 0;
  private cp = 0;
  private min = 0;
  private failures = 0;
  private lockouts = 0;
  private lockedUntil = 0;
  private lastInput: number;
  private pending: Uint8Array[] = [];
  private pendingLen = 0;
  private history: string[] = [];
  private histIdx = 0;
  private readonly count: ConsoleCounters = { overlong: 0, binary: 0, unknown: 0, badLogin: 0, lockout: 0 };
  private out = "";
  private actions: ConsoleAction[] = [];

  constructor(opts: InterpreterOptions) {
    this.opts = { maxLine: 256, maxLockoutMs: 86_400_000, pileId: "", ...opts };
    this.lastInput = opts.clock.monotonic();
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
      this.byte(bytes[i]!);
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
        this.byte(b[i]!);
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
    if (
      this.mode === "login" &&
      (this.line.length > 0 || this.taint) &&
      now - this.lastInput >= this.opts.idleLogoutMs
    ) {
      // A half-typed secret left at the prompt is forgotten, silently.
      this.resetLine();
      this.lastInput = now;
    }
    return false;
  }

  private logout(reason: "ok" | "IDLE"): void {
    this.mode = "login";
    this.resetLine();
    this.pending = [];
    this.pendingLen = 0;
    this.audit("logout", reason);
    this.emit(reason === "IDLE" ? `${NL}idle: logged out${NL}` : `logged out${NL}`);
    this.prompt();
  }

  private resetLine(): void {
    this.line = [];
    this.shown = 0;
    this.taint = null;
    this.histIdx = this.history.length;
  }

  private setTaint(t: Exclude<Taint, null>): void {
    if (this.taint === null) this.taint = t;
  }

  private byte(b: number): void {
    // Escape sequences: consumed whole; up/down walk the history.
    if (this.esc !== "none") {
      this.escByte(b);
      return;
    }
    // Continuation of a multi-byte UTF-8 character.
    if (this.need > 0) {
      if ((b & 0xc0) !== 0x80) {
        this.need = 0;
        this.setTaint("binary");
        this.byte(b);
        return;
      }
      this.cp = (this.cp << 6) | (b & 0x3f);
      if (--this.need === 0) {
        const cp = this.cp;
        if (cp < this.min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp <= 0x9f))
          this.setTaint("binary");
        else this.printable(String.fromCodePoint(cp));
      }
      return;
    }
    const wasCR = this.lastCR;
    this.lastCR = b === 0x0d;
    if (b >= 0x20 && b < 0x7f) {
      this.printable(String.fromCharCode(b));
      return;
    }
    if (b >= 0xc2 && b <= 0xf4) {
      this.need = b >= 0xf0 ? 3 : b >= 0xe0 ? 2 : 1;
      this.min = b >= 0xf0 ? 0x10000 : b >= 0xe0 ? 0x800 : 0x80;
      this.cp = b & (b >= 0xf0 ? 0x07 : b >= 0xe0 ? 0x0f : 0x1f);
      return;
    }
    switch (b) {
      case 0x0d:
        this.enter();
        return;
      case 0x0a:
        if (!wasCR) this.enter();
        return;
      case 0x08:
      case 0x7f:
        this.backspace();
        return;
      case 0x15: // Ctrl-U: kill the line
        this.emit("\b \b".repeat(this.shown));
        this.resetLine();
        return;
      case 0x03: // Ctrl-C: cancel the line
        this.emit(`^C${NL}`);
        this.resetLine();
        this.prompt();
        return;
      case 0x04: // Ctrl-D: logout, on an empty line
        if (this.mode === "shell" && this.line.length === 0 && !this.taint) {
          this.emit(NL);
          this.logout("ok");
        }
        return;
      case 0x09: // Tab: no completion; ignored
        return;
      case 0x1b:
        this.esc = "esc";
        return;
      default:
        // Other C0 controls, 0x80..0xC1, 0xF5..0xFF: not text.
        this.setTaint("binary");
    }
  }

  private escByte(b: number): void {
    if (this.esc === "esc") {
      this.esc = b === 0x5b ? "csi" : b === 0x4f ? "ss3" : "none";
      return;
    }
    if (this.esc === "ss3") {
      this.esc = "none";
      this.arrow(b);
      return;
    }
    // CSI: parameters and intermediates 0x20..0x3F, then one final byte 0x40..0x7E.
    if (b >= 0x20 && b <= 0x3f) return;
    this.esc = "none";
    if (b >= 0x40 && b <= 0x7e) this.arrow(b);
    else this.setTaint("binary");
  }

  private arrow(final: number): void {
    if (this.mode !== "shell" || this.taint) return;
    if (final === 0x41 && this.histIdx > 0) this.showLine(this.history[--this.histIdx]!);
    else if (final === 0x42 && this.histIdx < this.history.length) {
      this.histIdx++;
      this.showLine(this.history[this.histIdx] ?? "");
    }
  }

  private showLine(s: string): void {
    this.emit("\b \b".repeat(this.shown));
    this.line = Array.from(s);
    this.shown = this.line.length;
    this.emit(s);
  }

  private printable(ch: string): void {
    if (this.taint) return;
    if (this.line.length >= this.opts.maxLine) {
      this.setTaint("overlong");
      return;
    }
    if (this.mode === "login" && this.lockedUntil > this.opts.clock.monotonic()) return;
    this.line.push(ch);
    this.shown++;
    this.emit(this.mode === "login" ? "*" : ch);
  }

  private backspace(): void {
    if (this.taint || this.line.length === 0) return;
    this.line.pop();
    this.shown--;
    this.emit("\b \b");
  }

  private enter(): void {
    this.emit(NL);
    const taint = this.taint;
    const text = this.line.join("");
    this.resetLine();
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
    if (known && !(name === "keys" && args[0] === "add") && !carriesKey(words)) {
      // A line carrying key material, or that is no command (a secret, a key pasted in the
      // wrong place), is not kept, even in memory.
      this.history.push(text.trim());
      if (this.history.length > HISTORY) this.history.shift();
    }
    this.histIdx = this.history.length;
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
