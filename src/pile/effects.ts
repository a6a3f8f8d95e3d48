/**
 * Collects the effects of one input and hands them out in the order the daemon must perform
 * them: outputs first (contactor, then lock), then durable records, then messages, then
 * notices and logs. Within one kind the order of emission is kept.
 */
import type { PileEffect, PileEffectType } from "./types.js";

export const EFFECT_ORDER: readonly PileEffectType[] = [
  "contactor",
  "lock",
  "recordCode",
  "sessionStarted",
  "sessionUpdate",
  "sessionEnded",
  "send",
  "disconnect",
  "fault",
  "faultCleared",
  "securityEvent",
  "state",
  "relayTestDone",
  "rejected",
  "log",
];

const RANK = new Map<PileEffectType, number>(EFFECT_ORDER.map((t, i) => [t, i]));

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
      .map((e, i) => ({ e, i, r: RANK.get(e.type) ?? EFFECT_ORDER.length }))
      .filter(({ e, i }) => (e.type !== "contactor" && e.type !== "lock") || lastOutput.get(e.type) === i)
      .sort((a, b) => a.r - b.r || a.i - b.i)
      .map((x) => x.e);
    this.#items = [];
    return out;
  }
}
