/**
 * The pile core's configuration: one zod schema that is both the TypeScript type and the
 * validator (every field has a range and a default). The daemon embeds it in its own config.
 */
import { z } from "zod";
import { MAX_ID_BYTES, utf8 } from "../protocol/index.js";

const ms = (min: number, max: number, def: number) => z.number().int().min(min).max(max).default(def);

export const pileCoreConfigSchema = z.object({
  /** The pile's identifier (PROTOCOL.md §2 pileId), 1..64 UTF-8 bytes. */
  pileId: z
    .string()
    .refine((s) => {
      const n = utf8(s).length;
      return n >= 1 && n <= MAX_ID_BYTES;
    }, "pileId must be 1..64 UTF-8 bytes")
    .default("0001"),
  /** Clock skew tolerated on both sides of a code's window (§2 check 4). */
  skewMs: ms(0, 86_400_000, 120_000),
  /** Lock feedback must read engaged this long after the lock is commanded. */
  lockConfirmMs: ms(1, 60_000, 2000),
  /** Contactor feedback must read closed this long after the contactor is commanded closed. */
  contactorCloseMs: ms(1, 60_000, 1000),
  /** Contactor feedback must read open this long after it is commanded open; else WELD. */
  contactorOpenMs: ms(1, 60_000, 1000),
  /** Lock feedback must read released this long after release is commanded. */
  lockReleaseMs: ms(1, 60_000, 2000),
  /** A meter reading older than this is stale: no close, and a running session stops. */
  meterStaleMs: ms(100, 600_000, 5000),
  /** STATUS period while charging. */
  statusIntervalMs: ms(100, 60_000, 1000),
  /**
   * Least interval between two durable progress records of a charging session (besides those of
   * every state change and the end). A STATUS tells no more energy than the last record holds, so
   * its energy advances at this pace: by default every STATUS is preceded by its record (written
   * off the control loop while the contactor is live). A longer interval writes less and lets the
   * STATUS energy lag; at a crash the meter's register closes the session either way.
   */
  progressIntervalMs: ms(100, 3_600_000, 1000),
  /** An exchange not finished this long after its HELLO gets ERROR TIMEOUT (§3: 10 s). */
  exchangeTimeoutMs: ms(100, 600_000, 10_000),
  /** The daemon must acknowledge a recordCode within this; else the PRESENT is refused. */
  recordTimeoutMs: ms(10, 600_000, 5000),
  /** Lock position at boot when no weld is found ("engaged" for tethered-cable piles). */
  lockSafeState: z.enum(["released", "engaged"]).default("released"),
});

export type PileCoreConfig = z.infer<typeof pileCoreConfigSchema>;
export type PileCoreConfigInput = z.input<typeof pileCoreConfigSchema>;

export const defaultPileCoreConfig: PileCoreConfig = pileCoreConfigSchema.parse({});

/** Validates and fills defaults; every problem reported at once as "path: message". */
export function parsePileCoreConfig(
  input: unknown,
): { ok: true; value: PileCoreConfig } | { ok: false; errors: string[] } {
  const r = pileCoreConfigSchema.safeParse(input ?? {});
  if (r.success) return { ok: true, value: r.data };
  return { ok: false, errors: r.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`) };
}
