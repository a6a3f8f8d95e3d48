/**
 * Collects the effects of one input and hands them out in the order the daemon must perform
 * them: outputs towards their safe state first (contactor open, lock engaged), then durable
 * records, then a contactor closing, then messages, then a lock releasing, then notices and
 * logs. Within one kind the order of emission is kept.
 *
 * So the record of a session's end is written and the carrier told before the lock lets the
 * plug go, and a record made with a contactor's closing is performed before it. (The runtime
 * makes a record durable before the next effect once the contactor reads open; while it may be
 * live, records go off the control loop and the outputs do not wait for them.)
 */
import type { PileEffect, PileEffectType } from "./types.js";

/** An effect's place in the order: an output's kind and direction, or the effect type. */
export type EffectRank = PileEffectType | "contactorClose" | "lockRelease";

export const EFFECT_ORDER: readonly EffectRank[] = [
  "contactor",
  "lock",
  "pilot",
  "recordCode",
  "sessionStarted",
  "sessionUpdate",
  "sessionEnded",
  "contactorClose",
  "send",
  "lockRelease",
  "disconnect",
  "fault",
  "faultCleared",
  "securityEvent",
  "state",
  "relayTestDone",
  "rejected",
  "log",
];

const RANK = new Map<EffectRank, number>(EFFECT_ORDER.map((t, i) => [t, i]));

/** The rank of one effect: a contactor closing or a lock releasing waits for the records. */
export function effectRank(e: PileEffect): number {
  const kind: EffectRank =
    e.type === "contactor" && e.closed
      ? "contactorClose"
      : e.type === "lock" && !e.engaged
        ? "lockRelease"
        : e.type;
  return RANK.get(kind) ?? EFFECT_ORDER.length;
}

export class EffectBuffer {
  #items: PileEffect[] = [];

  push(e: PileEffect): void {
    this.#items.push(e);
  }

  /**
   * The effects in performing order (stable within a kind). Outputs commanded more than once
   * within one input collapse to the last command: the daemon never pulses a relay.
   */
  drain(): PileEffect[] {
    const lastOutput = new Map<string, number>();
    this.#items.forEach((e, i) => {
      if (e.type === "contactor" || e.type === "lock") lastOutput.set(e.type, i);
    });
    const out = this.#items
      .map((e, i) => ({ e, i, r: effectRank(e) }))
      .filter(({ e, i }) => (e.type !== "contactor" && e.type !== "lock") || lastOutput.get(e.type) === i)
      .sort((a, b) => a.r - b.r || a.i - b.i)
      .map((x) => x.e);
    this.#items = [];
    return out;
  }
}
