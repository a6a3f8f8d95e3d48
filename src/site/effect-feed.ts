/**
 * The pile's own events for the site front ends: each effect the runtime performed (its
 * onEffect hook) becomes a SiteEvent — state changes, a session's start, progress and end,
 * faults latched and cleared, and every unlock attempt's outcome (the RESULT sent to the
 * carrier: "ok" for ACCEPTED, the refusal reason otherwise; STOPPED answers a stop, not an
 * unlock, and is not one). Meter readings are not effects: the last one the pile holds is looked
 * at every `meterEveryMs` and sent on when it changed (no bus read, no store read).
 */
import type { FaultView, PileControl, SessionView } from "../control/index.js";
import type { PileEffect } from "../pile/index.js";
import { toHex } from "../protocol/bytes.js";
import { reasonName } from "../protocol/reasons.js";
import type { SiteEvent } from "./port.js";

export interface EffectFeedOptions {
  pile: PileControl;
  emit: (e: SiteEvent) => void;
  now?: () => number;
  /** How often the held meter reading is compared; 0 = never. Default 5000 ms. */
  meterEveryMs?: number;
}

export class EffectFeed {
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private lastMeter = "";
  private current: SessionView | undefined;

  constructor(private readonly o: EffectFeedOptions) {
    this.now = o.now ?? Date.now;
    const every = o.meterEveryMs ?? 5000;
    if (every > 0) {
      this.timer = setInterval(() => void this.meterTick(), every);
      this.timer.unref();
    }
  }

  /** One performed effect; anything that is not an event of the front ends is ignored. */
  effect(e: PileEffect): void {
    const at = this.now();
    if (e.type === "state") this.o.emit({ kind: "state", at, state: e.state });
    else if (e.type === "sessionStarted") this.session(at, "started", toHex(e.record.sessionId), {});
    else if (e.type === "sessionUpdate")
      this.session(at, "progress", toHex(e.record.sessionId), {
        status: "active",
        energyWh: e.record.energyWh,
      });
    else if (e.type === "sessionEnded") {
      const r = e.record;
      this.session(at, "ended", toHex(r.sessionId), {
        status: "finished",
        endedAt: Number(r.endedAt),
        energyWh: r.energyWh,
        meterStopWh: r.energyStopWh ?? null,
        reason: r.stopReason,
        faults: [...r.faults],
      });
    } else if (e.type === "fault")
      this.o.emit({ kind: "fault", at, faults: this.faults({ code: e.code, detail: e.detail }) });
    else if (e.type === "faultCleared") this.o.emit({ kind: "fault", at, faults: this.faults() });
    else if (e.type === "send" && e.message.type === "RESULT") {
      const name = reasonName(e.message.reason) ?? `0x${e.message.reason.toString(16)}`;
      if (name !== "STOPPED") this.o.emit({ kind: "unlock", at, outcome: name === "ACCEPTED" ? "ok" : name });
    }
  }

  /**
   * The session as the store has it (read once per session, at its first event), with what the
   * effect says on top: a progress record made while the contactor is live may still be on its
   * way to the disk.
   */
  private session(
    at: number,
    phase: "started" | "progress" | "ended",
    id: string,
    over: Partial<SessionView>,
  ): void {
    if (this.current?.id !== id) {
      const stored = this.o.pile.sessions(1)[0];
      this.current = stored?.id === id ? stored : undefined;
    }
    if (!this.current) return;
    const session = { ...this.current, ...over };
    this.current = phase === "ended" ? undefined : session;
    this.o.emit({ kind: "session", at, phase, session });
  }

  /** The store's fault rows, and a fault just latched whose row may not be written yet. */
  private faults(raised?: { code: string; detail: string }): FaultView[] {
    const rows = this.o.pile.faults();
    if (raised && !rows.some((f) => f.code === raised.code))
      rows.push({ code: raised.code, since: this.now(), latched: true, detail: raised.detail });
    return rows;
  }

  private async meterTick(): Promise<void> {
    const m = await this.o.pile.meter().catch(() => undefined);
    if (!m?.ok) return;
    const key = `${m.energyImportWh}/${m.powerW}/${m.voltageV}/${m.currentA}`;
    if (key === this.lastMeter) return;
    this.lastMeter = key;
    this.o.emit({ kind: "meter", at: this.now(), meter: m });
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}
