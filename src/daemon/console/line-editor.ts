/**
 * The console's line editor: terminal bytes in, one line at a time out. Decodes UTF-8, consumes
 * escape sequences (up/down walk the history), echoes (masked for a secret), and handles
 * backspace, Ctrl-U, Ctrl-C and Ctrl-D; a line with binary data or longer than the limit is
 * tainted and given to the session as such. What a line means is the session's (interpreter.ts).
 *
 * Line editing is done here, byte by byte, rather than by a line parser on the port
 * (@serialport/parser-delimiter): a terminal sends keystrokes, not lines, and backspace, Ctrl-U,
 * Ctrl-C, the secret's masked echo and escape sequences all act before any delimiter arrives.
 */

export type Taint = "overlong" | "binary" | null;
type Esc = "none" | "esc" | "csi" | "ss3";

export const NL = "\r\n";
const HISTORY = 20;

/** What the editor asks of the session it serves. */
export interface EditorHost {
  emit(s: string): void;
  /** Whether typed characters echo as `*` (a secret is being typed). */
  masked(): boolean;
  /** Whether typed characters are taken now (not during a login lockout). */
  accepting(): boolean;
  /** Whether up/down may walk the history (the shell). */
  historyOn(): boolean;
  /** A line ended (Enter): its text, and its taint if it is not to be taken. */
  enter(text: string, taint: Taint): void;
  /** Ctrl-C: the line was cancelled (its echo ended with ^C). */
  cancel(): void;
  /** Ctrl-D on an empty line. */
  eof(): void;
}

export class LineEditor {
  private line: string[] = [];
  private shown = 0;
  private taint: Taint = null;
  private esc: Esc = "none";
  private lastCR = false;
  // UTF-8 decoding of the byte stream.
  private need = 0;
  private cp = 0;
  private min = 0;
  private history: string[] = [];
  private histIdx = 0;

  constructor(
    private readonly maxLine: number,
    private readonly host: EditorHost,
  ) {}

  /** Something is typed on the line (or it is tainted). */
  get dirty(): boolean {
    return this.line.length > 0 || this.taint !== null;
  }

  /** Forgets the line being typed. */
  reset(): void {
    this.line = [];
    this.shown = 0;
    this.taint = null;
    this.histIdx = this.history.length;
  }

  /** After a command line: keeps it in the history when `keep`; the walk starts again from the end. */
  record(text: string, keep: boolean): void {
    if (keep) {
      this.history.push(text);
      if (this.history.length > HISTORY) this.history.shift();
    }
    this.histIdx = this.history.length;
  }

  private setTaint(t: Exclude<Taint, null>): void {
    if (this.taint === null) this.taint = t;
  }

  byte(b: number): void {
    // Escape sequences: consumed whole; up/down walk the history.
    if (this.esc !== "none") {
      this.escByte(b);
      return;
    }
    // Continuation of a multi-byte UTF-8 character.
    if (this.need > 0) {
      this.continuation(b);
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
    this.control(b, wasCR);
  }

  private continuation(b: number): void {
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
  }

  private control(b: number, wasCR: boolean): void {
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
        this.host.emit("\b \b".repeat(this.shown));
        this.reset();
        return;
      case 0x03: // Ctrl-C: cancel the line
        this.host.emit(`^C${NL}`);
        this.reset();
        this.host.cancel();
        return;
      case 0x04: // Ctrl-D: logout, on an empty line
        if (this.line.length === 0 && !this.taint) this.host.eof();
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
    if (!this.host.historyOn() || this.taint) return;
    if (final === 0x41 && this.histIdx > 0) this.showLine(this.history[--this.histIdx]!);
    else if (final === 0x42 && this.histIdx < this.history.length) {
      this.histIdx++;
      this.showLine(this.history[this.histIdx] ?? "");
    }
  }

  private showLine(s: string): void {
    this.host.emit("\b \b".repeat(this.shown));
    this.line = Array.from(s);
    this.shown = this.line.length;
    this.host.emit(s);
  }

  private printable(ch: string): void {
    if (this.taint) return;
    if (this.line.length >= this.maxLine) {
      this.setTaint("overlong");
      return;
    }
    if (!this.host.accepting()) return;
    this.line.push(ch);
    this.shown++;
    this.host.emit(this.host.masked() ? "*" : ch);
  }

  private backspace(): void {
    if (this.taint || this.line.length === 0) return;
    this.line.pop();
    this.shown--;
    this.host.emit("\b \b");
  }

  private enter(): void {
    this.host.emit(NL);
    const taint = this.taint;
    const text = this.line.join("");
    this.reset();
    this.host.enter(text, taint);
  }
}
