/**
 * The meter poller: one read at a time, every `meter.pollIntervalMs` on the loop's clock, or
 * every `idlePollMs()` while the pile is quiet (idle, contactor open and reading open: no energy
 * flows, the reading only has to stay fresh); each reading or failure goes to the core, and an
 * outage is logged once when it begins and once when it ends, not once per poll. When the pile
 * stops being quiet (a code accepted, a relay test, a contactor that reads closed) the next poll
 * comes at `pollIntervalMs` from the last one's start, at once if that is past.
 */
import { MeterError, type MeterReading } from "../../hw/ports.js";
import type { Config } from "../config.js";
import { errText, type LoopContext } from "./context.js";

/**
 * The poll interval of a quiet pile: `meter.idlePollIntervalMs`, never shorter than
 * `meter.pollIntervalMs` and never longer than a third of `deadlines.meterStaleMs`, so that an
 * idle pile's reading stays fresh through one failed poll (its age peaks near two intervals).
 */
export function idlePollMs(c: Pick<Config, "meter" | "deadlines">): number {
  const cap = Math.floor(c.deadlines.meterStaleMs / 3);
  return Math.max(c.meter.pollIntervalMs, Math.min(c.meter.idlePollIntervalMs, cap));
}

export class MeterPoller {
  last: MeterReading | undefined;
  lastError: MeterError | undefined;
  readonly #ctx: LoopContext;
  /** Whether the pile is quiet now (the core's `quiet()`). */
  readonly #quiet: () => boolean;
  #timer: unknown;
  /** The pending timer waits the idle interval (undefined: no timer pending). */
  #slow: boolean | undefined;
  #started = 0;
  #outage: { since: number; failures: number } | undefined;

  constructor(ctx: LoopContext, quiet: () => boolean = () => false) {
    this.#ctx = ctx;
    this.#quiet = quiet;
  }

  poll(): void {
    const { meter, clock } = this.#ctx.parts;
    this.#slow = undefined;
    if (this.#ctx.stopped()) return;
    this.#started = clock.monotonic();
    meter
      .read()
      .then(
        (reading) => this.#read(reading),
        (e: unknown) => this.#failed(e),
      )
      .finally(() => {
        if (this.#ctx.stopped()) return;
        // During an outage the pile is back as soon as the meter answers: the fast interval.
        this.#arm(this.#outage === undefined && this.#quiet());
      });
  }

  /** The pile may have stopped being quiet: a poll waiting the idle interval comes sooner. */
  hurry(): void {
    if (this.#slow !== true || this.#quiet()) return;
    this.#ctx.parts.clock.clearTimeout(this.#timer);
    this.#arm(false);
  }

  #arm(slow: boolean): void {
    const { clock, config } = this.#ctx.parts;
    const every = slow ? idlePollMs(config) : config.meter.pollIntervalMs;
    const wait = Math.max(0, every - (clock.monotonic() - this.#started));
    this.#slow = slow;
    this.#timer = clock.setTimeout(() => this.poll(), wait);
  }

  #read(reading: MeterReading): void {
    this.last = reading;
    this.lastError = undefined;
    const outage = this.#outage;
    if (outage) {
      this.#outage = undefined;
      const ms = this.#ctx.parts.clock.monotonic() - outage.since;
      this.#ctx.log.info({ failures: outage.failures, ms }, "meter outage ended");
    }
    void this.#ctx.feed({
      type: "meterReading",
      reading: { energyImportWh: reading.energyImportWh, powerW: reading.powerW, takenAt: reading.takenAt },
    });
  }

  #failed(e: unknown): void {
    // A read cut short by a clean stop (the bus closing under it) is no outage.
    if (this.#ctx.stopped()) return;
    const code = e instanceof MeterError ? e.code : "PORT";
    this.lastError = e instanceof MeterError ? e : new MeterError("PORT", String(e));
    this.#ctx.count(`meter.${code}`);
    // One line when an outage begins and one when it ends, not one per poll.
    if (this.#outage) this.#outage.failures++;
    else {
      this.#outage = { since: this.#ctx.parts.clock.monotonic(), failures: 1 };
      this.#ctx.log.warn({ code, err: errText(e) }, "meter outage began");
    }
    void this.#ctx.feed({ type: "meterError", code });
  }

  stop(): void {
    this.#ctx.parts.clock.clearTimeout(this.#timer);
    this.#slow = undefined;
  }
}
