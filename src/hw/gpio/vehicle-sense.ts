import type { DigitalInput, Unsubscribe, VehicleSense } from "../ports.js";

/** "Is a vehicle there" from a plug-present switch on a GPIO input (active = plug in). */
export class GpioVehicleSense implements VehicleSense {
  constructor(private readonly input: DigitalInput) {}

  present(): Promise<boolean | undefined> {
    return this.input.read();
  }

  watch(listener: (present: boolean) => void): Unsubscribe {
    return this.input.watch(listener);
  }

  close(): Promise<void> {
    return this.input.close();
  }
}
