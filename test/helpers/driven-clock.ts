/**
 * The project's manual clock (src/sim/plant/clock.ts), driven: while `drive()` runs, every turn
 * of the event loop moves it forward by a step, firing its timers in order. So a tier written
 * against time (deadlines, polls, heartbeats) runs on fake time without a real-time sleep, as
 * fast as the loop turns; `sleep(ms)` waits for `ms` of that time.
 */
import { ManualClock } from "../../src/sim/plant.js";

export class DrivenClock extends ManualClock {
  #driving = false;

  /** Starts moving time by `stepMs` per turn of the event loop; the returned function stops it. */
  drive(stepMs = 5): () => void {
    if (this.#driving) throw new Error("the clock is driven already");
    this.#driving = true;
    const turn = () => {
      if (!this.#driving) return;
      this.advance(stepMs);
      setImmediate(turn);
    };
    setImmediate(turn);
    return () => {
      this.#driving = false;
    };
  }

  /** Resolves once `ms` have passed on this clock (it must be driven). */
  sleep(ms: number): Promise<void> {
    return new Promise((r) => this.setTimeout(r, ms));
  }

  /**
   * A stall of the loop (a stalled fsync, a GC pause): `ms` pass at once, the timers due meanwhile
   * fire in order before any I/O or other callback of the loop gets its turn.
   */
  stall(ms: number): void {
    this.advance(ms);
  }
}
