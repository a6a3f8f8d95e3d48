/**
 * The one redaction of key-shaped material in the words of a command, used before anything of a
 * command is audited, logged, echoed or kept (console history). Key-shaped: a long run of hex
 * digits, or of the base64 / base64url alphabet with mixed character classes, in one word or
 * split across adjacent words, in any letter case. Pure; over-redaction is preferred to a leak.
 */

export const REDACTED_WORD = "[redacted]";

/** A hex run this long (8 bytes) is never a legitimate argument (key ids are at most 10 digits). */
const HEX_RUN = 16;
/** A mixed-class base64 run this long is taken as key material. */
const B64_RUN = 20;
/** Shortest word taken as a piece of a key split across words. */
const PIECE = 4;

const HEX_RE = new RegExp(`[0-9a-fA-F]{${HEX_RUN},}`, "g");
const B64_RE = new RegExp(`[A-Za-z0-9+/_=-]{${B64_RUN},}`, "g");
const ALL_HEX = /^(?:0x)?[0-9a-fA-F]+$/;
const ALL_B64 = /^[A-Za-z0-9+/_=-]+$/;

/** Number of the classes upper, lower, digit present (base64 of random bytes has all three). */
function classes(s: string): number {
  return Number(/[A-Z]/.test(s)) + Number(/[a-z]/.test(s)) + Number(/[0-9]/.test(s));
}

const mixed = (s: string): boolean => classes(s) >= 2 || /[+/]/.test(s);

/** One word with its key-shaped runs replaced. */
export function redactWord(w: string): string {
  return w
    .replace(HEX_RE, REDACTED_WORD)
    .replace(B64_RE, (run) => (run.includes(REDACTED_WORD) || !mixed(run) ? run : REDACTED_WORD));
}

type Piece = "hex" | "b64" | null;

function pieceKind(w: string): Piece {
  if (w.length < PIECE) return null;
  if (ALL_HEX.test(w)) return "hex";
  if (ALL_B64.test(w) && mixed(w)) return "b64";
  return null;
}

/**
 * Words with every key-shaped part replaced by "[redacted]": runs inside a word, and adjacent
 * words that are each a piece of hex (or of mixed base64) and together are as long as a run.
 */
export function redactWords(words: readonly string[]): string[] {
  const out = words.map(redactWord);
  let i = 0;
  while (i < out.length) {
    const k = pieceKind(out[i]!);
    if (k === null) {
      i++;
      continue;
    }
    let j = i;
    let len = 0;
    let b64 = false;
    while (j < out.length) {
      const kj = pieceKind(out[j]!);
      if (kj === null) break;
      if (kj === "b64") b64 = true;
      len += out[j]!.replace(/^0x/, "").length;
      j++;
    }
    if (j - i > 1 && len >= (b64 ? B64_RUN : HEX_RUN)) for (let m = i; m < j; m++) out[m] = REDACTED_WORD;
    i = j;
  }
  return out;
}

/** Whether any word carries key-shaped material. */
export function carriesKey(words: readonly string[]): boolean {
  const r = redactWords(words);
  return r.some((w, i) => w !== words[i]);
}

/** A line of free text, split on white space, redacted and joined with single spaces. */
export function redactText(s: string): string {
  const words = s.split(/\s+/).filter((w) => w.length > 0);
  return redactWords(words).join(" ");
}
