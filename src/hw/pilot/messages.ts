/** The pilot bridge's messages (firmware-bridge/PROTOCOL.md): MCU lines parsed into types. */

export type PilotState = "A" | "B" | "C" | "D" | "E" | "F" | "X";
export type ResetCause = "POR" | "EXT" | "BOR" | "WDT" | "UNK";
export type PermitKind = "off" | "charge" | "test";
export type DiodeCheck = "unknown" | "ok" | "fail";
export type PermitReason = "state" | "pwm" | "diode" | "heartbeat";

export interface McuHello {
  fw: string;
  cause: ResetCause;
  permit: boolean;
  heartbeatLimitMs: number;
}

export interface PilotStatus {
  state: PilotState;
  permit: PermitKind;
  diode: DiodeCheck;
  pwm: boolean;
  /** Duty in per mille; 1000 with the PWM off (steady +12 V). */
  dutyPermille: number;
  /** Advertised current in deci-amps; 0 with the PWM off. */
  currentDeciA: number;
  /** Why the permit is off (empty when granted). */
  why: PermitReason[];
}

export interface McuCounters {
  ok: number;
  bad: number;
  gap: number;
  txDrop: number;
  uptimeMs: number;
}

export type McuMessage =
  | { kind: "hello"; hello: McuHello }
  | { kind: "state"; status: PilotStatus }
  | { kind: "counters"; counters: McuCounters }
  | { kind: "ack"; seq: number; error: string | null };

const STATES = new Set(["A", "B", "C", "D", "E", "F", "X"]);
const CAUSES = new Set(["POR", "EXT", "BOR", "WDT", "UNK"]);
const DIODE: Record<string, DiodeCheck> = { unk: "unknown", ok: "ok", bad: "fail" };
const WHY: Record<string, PermitReason> = { st: "state", pwm: "pwm", dio: "diode", hb: "heartbeat" };

function fields(words: string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const w of words) {
    const i = w.indexOf("=");
    if (i > 0) m.set(w.slice(0, i), w.slice(i + 1));
  }
  return m;
}

function num(f: Map<string, string>, k: string): number {
  const v = f.get(k);
  if (v === undefined || !/^\d{1,10}$/.test(v)) throw new Error(`field ${k}`);
  return Number(v);
}

function str(f: Map<string, string>, k: string, allowed?: Set<string>): string {
  const v = f.get(k);
  if (v === undefined || (allowed && !allowed.has(v))) throw new Error(`field ${k}`);
  return v;
}

function parseState(f: Map<string, string>): PilotStatus {
  const permit = num(f, "permit");
  const diode = DIODE[str(f, "diode")];
  const whyText = str(f, "why");
  const why = whyText === "-" ? [] : whyText.split(",").map((w) => WHY[w]);
  if (permit > 2 || !diode || why.some((w) => w === undefined)) throw new Error("field value");
  return {
    state: str(f, "st", STATES) as PilotState,
    permit: (["off", "charge", "test"] as const)[permit] as PermitKind,
    diode,
    pwm: num(f, "pwm") === 1,
    dutyPermille: num(f, "duty"),
    currentDeciA: num(f, "cur"),
    why: why as PermitReason[],
  };
}

/** Parses a body; null when it is not a message this side knows (counted by the caller). */
export function parseMessage(body: string): McuMessage | null {
  const words = body.split(" ");
  const f = fields(words.slice(1));
  try {
    switch (words[0]) {
      case "HELLO":
        return {
          kind: "hello",
          hello: {
            fw: str(f, "fw"),
            cause: str(f, "cause", CAUSES) as ResetCause,
            permit: num(f, "permit") === 1,
            heartbeatLimitMs: num(f, "hb"),
          },
        };
      case "STATE":
        return { kind: "state", status: parseState(f) };
      case "CNT":
        return {
          kind: "counters",
          counters: {
            ok: num(f, "ok"),
            bad: num(f, "bad"),
            gap: num(f, "gap"),
            txDrop: num(f, "txdrop"),
            uptimeMs: num(f, "up"),
          },
        };
      case "ACK": {
        const seq = /^[0-9A-F]{2}$/.test(words[1] ?? "")
          ? Number.parseInt(words[1] as string, 16)
          : Number.NaN;
        if (Number.isNaN(seq)) return null;
        if (words[2] === "OK" && words.length === 3) return { kind: "ack", seq, error: null };
        if (words[2] === "ERR" && words.length === 4) return { kind: "ack", seq, error: words[3] as string };
        return null;
      }
      default:
        return null;
    }
  } catch {
    return null;
  }
}
