/** Test plumbing for the over-the-air BLE tier: peripheral fixtures as separate processes. */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { FixtureProcess } from "../../helpers/fixture-process.js";

export type { FixtureEvent } from "../../helpers/fixture-process.js";

const here = dirname(fileURLToPath(import.meta.url));
/** dist/test/hw/ble/fixtures/peripheral.js */
export const PERIPHERAL_FIXTURE = join(here, "fixtures", "peripheral.js");

/** The echo peripheral: every Control write comes back as an Event notification. */
export class PeripheralProcess extends FixtureProcess {
  constructor(uart: string, pileId: string) {
    super(PERIPHERAL_FIXTURE, ["--uart", uart, "--pile", pileId]);
  }

  async up(): Promise<void> {
    await this.waitFor((e) => e.ev === "radio" && e.state === "up");
  }

  /** Ends every connection from the pile's side. */
  drop(): void {
    this.child.stdin?.write("drop\n");
  }
}
