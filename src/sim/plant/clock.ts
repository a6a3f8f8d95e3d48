/**
 * A Clock that only moves when told to, with timers on the same time line: one fake time
 * source for the plant, the debouncers and whatever else takes a Clock and timers.
 */
import type { TimedClock } from "../../hw/ports.js";

interface Pending {
  id: number;
  at: number;
  fn: () => void;
}

export class ManualClock implements TimedClock {
  private mono: number;
  private wall: number;
  private nextId = 1;
  private pending: Pending[] = [];

  constructor(start: { now?: number; monotonic?: number } = {}) {
    this.wall = start.now ?? 1_700_000_000_000;
    this.mono = start.monotonic ?? 0;
  }

  now(): number {
    return this.wall;
  }

  monotonic(): number {
    return this.mono;
  }

  /** Sets the wall clock alone (a board without RTC that learns the time, or a bad one). */
  setNow(ms: number): void {
    this.wall = ms;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.pending.push({ id, at: this.mono + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.pending = this.pending.filter((p) => p.id !== handle);
  }

  /** Timers not yet fired. */
  get pendingCount(): number {
    return this.pending.length;
  }

  /** Monotonic ms of the next timer due, undefined when none is pending. */
  nextDue(): number | undefined {
    let at: number | undefined;
    for (const p of this.pending) if (at === undefined || p.at < at) at = p.at;
    return at;
  }

  /** Moves both clocks forward by `ms`, firing due timers in order (each sees its own due time). */
  advance(ms: number): void {
    const end = this.mono + Math.max(0, ms);
    for (;;) {
      const due = this.pending.filter((p) => p.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.pending = this.pending.filter((p) => p !== due);
      this.wall += due.at - this.mono;
      this.mono = due.at;
      due.fn();
    }
    // a timer that advanced the clock itself (a stalled loop) may have taken it past `end`
    if (end <= this.mono) return;
    this.wall += end - this.mono;
    this.mono = end;
  }
}
