/**
 * Debouncing of one input line: a new level is reported only once the raw line has held it for
 * `debounceMs` without interruption. Raw levels are fed by edge events or by sampling; repeated
 * equal samples do not restart the wait, any change does.
 */
import type { Timers } from "../ports.js";

export class Debouncer {
  private raw: boolean;
  private current: boolean;
  private pending: unknown;
  private readonly listeners = new Set<(level: boolean) => void>();

  constructor(
    initial: boolean,
    private readonly debounceMs: number,
    private readonly timers: Timers,
  ) {
    this.raw = initial;
    this.current = initial;
  }

  /** The debounced level. */
  get level(): boolean {
    return this.current;
  }

  /** Subscribes to debounced changes. */
  onChange(listener: (level: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** One raw observation of the line. */
  feed(raw: boolean): void {
    if (raw === this.raw) return;
    this.raw = raw;
    this.cancel();
    if (raw === this.current) return; // a bounce that came back: nothing happened
    if (this.debounceMs <= 0) {
      this.commit();
      return;
    }
    this.pending = this.timers.setTimeout(() => {
      this.pending = undefined;
      this.commit();
    }, this.debounceMs);
  }

  /** Stops any wait in progress; no further reports. */
  dispose(): void {
    this.cancel();
    this.listeners.clear();
  }

  private cancel(): void {
    if (this.pending !== undefined) {
      this.timers.clearTimeout(this.pending);
      this.pending = undefined;
    }
  }

  private commit(): void {
    if (this.raw === this.current) return;
    this.current = this.raw;
    for (const l of [...this.listeners]) l(this.current);
  }
}
