/**
 * The meter poller: one read at a time, every `meter.pollIntervalMs` on the loop's clock; each
 * reading or failure goes to the core, and an outage is logged once when it begins and once when
 * it ends, not once per poll.
 */
import { MeterError, type MeterReading } from "../../hw/ports.js";
import { errText, type LoopContext } from "./context.js";

export class MeterPoller {
  last: MeterReading | undefined;
  lastError: MeterError | undefined;
  readonly #ctx: LoopContext;
  #timer: unknown;
  #outage: { since: number; failures: number } | undefined;

  constructor(ctx: LoopContext) {
    this.#ctx = ctx;
  }

  poll(): void {
    const { meter, clock, config } = this.#ctx.parts;
    if (this.#ctx.stopped()) return;
    const started = clock.monotonic();
    meter
      .read()
      .then(
        (reading) => this.#read(reading),
        (e: unknown) => this.#failed(e),
      )
      .finally(() => {
        if (this.#ctx.stopped()) return;
        const wait = Math.max(0, config.meter.pollIntervalMs - (clock.monotonic() - started));
        this.#timer = clock.setTimeout(() => this.poll(), wait);
      });
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
  }
}
