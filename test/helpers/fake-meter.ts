/**
 * A meter stand-in for the runtime tiers: its energy follows `power` (set from the plant's
 * contactor), it can be silenced, and it can hold reads until close() fails them with CLOSED,
 * as the real bus does.
 */
import { type Clock, type Meter, MeterError, type MeterReading, systemClock } from "../../src/hw/ports.js";

export class FakeMeter implements Meter {
  energy = 1000;
  power = 0;
  silent = false;
  hold = false;
  pending: ((e: Error) => void) | undefined;
  /** read() calls so far. */
  reads = 0;
  /** Stamps the readings (the runtime's clock in its tiers). */
  constructor(public clock: Clock = systemClock) {}
  async read(): Promise<MeterReading> {
    this.reads++;
    if (this.hold)
      await new Promise<void>((_res, rej) => {
        this.pending = rej;
      });
    if (this.silent) throw new MeterError("TIMEOUT", "no reply");
    this.energy += this.power / 36_000; // ~100 ms polls
    return {
      energyImportWh: this.energy,
      powerW: this.power,
      voltageV: 230,
      currentA: this.power / 230,
      takenAt: this.clock.monotonic(),
    };
  }
  async close(): Promise<void> {
    this.pending?.(new MeterError("CLOSED", "the meter bus is closed"));
  }
}
