/**
 * The built daemon's reaction to the pilot: the real firmware in the harness on the daemon's
 * pilot UART, the vehicle toggled between A and B ≥ 50 times; the daemon times each STATE line
 * from its arrival off the pty to the core's effects for it performed (wall ms, its own clock),
 * and reports the p50 and max in `status` (pilot counters daemon.reaction*).
 */
import { startPile } from "../test/helpers/pile-proc.js";
import { buildFirmware, Harness } from "../test/helpers/pilot-harness.js";

export const name = "pilotDaemon";

const RUNS = 60;

export async function run(): Promise<Record<string, unknown>> {
  const b = buildFirmware();
  if (b.status !== 0) throw new Error(`firmware-bridge did not build:\n${b.output}`);
  const h = await Harness.start();
  await h.cmd("go");
  const line = (n: number) => ({ chip: "sim", line: n });
  const pile = await startPile({
    pileId: "BENCH-PILOT",
    config: {
      gpio: {
        driver: "sim",
        contactor: line(0),
        lock: line(1),
        contactorFeedback: line(2),
        lockFeedback: line(3),
      },
      vehicle: { kind: "pilot-mcu", port: h.pty },
      logLevel: "warn",
    },
  }).catch(async (e) => {
    await h.stop();
    throw e;
  });
  try {
    for (let i = 0; i < RUNS; i++) {
      const v = i % 2 === 0 ? "B" : "A";
      await h.cmd(`vehicle ${v}`);
      await pile.waitStatus((s) => s.pilot?.state === v, 10_000);
    }
    const c = (await pile.status()).pilot?.counters ?? {};
    return {
      stateChangesTimed: c["daemon.reactions"],
      reactionFromWireMs: {
        p50: (c["daemon.reactionP50Us"] ?? Number.NaN) / 1000,
        max: (c["daemon.reactionMaxUs"] ?? Number.NaN) / 1000,
      },
    };
  } finally {
    await pile.stop();
    await h.stop();
  }
}
