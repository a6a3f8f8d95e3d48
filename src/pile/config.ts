/**
 * The pile core's configuration: one zod schema that is both the TypeScript type and the
 * validator (every field has a range and a default). It is the one schema of these settings:
 * the daemon's config embeds its fields (`deadlines`, `clockSkewMs`, `statusIntervalMs`,
 * `lockSafeState`, `pileId`), so a range or a default is written here only.
 */
import { z } from "zod";
import { DEFAULT_SKEW_MS, idLengthOk, utf8 } from "../protocol/index.js";

const ms = (min: number, max: number, def: number) => z.int().min(min).max(max).default(def);

/** The pile's identifier (PROTOCOL.md §2 pileId): 1..64 UTF-8 bytes (required where used). */
export const pileIdSchema = z.string().refine((s) => idLengthOk(utf8(s).length), "must be 1..64 UTF-8 bytes");

/** Clock skew tolerated on both sides of a code's window (§2 check 4). */
export const skewMsSchema = ms(0, 3_600_000, DEFAULT_SKEW_MS);

/** The relay and protocol deadlines (the daemon's `deadlines` object). */
export const deadlineFields = {
  /** Lock feedback must read engaged this long after the lock is commanded. */
  lockConfirmMs: ms(50, 30_000, 2000),
  /** Contactor feedback must read closed this long after the contactor is commanded closed. */
  contactorCloseMs: ms(20, 10_000, 500),
  /** Contactor feedback must read open this long after it is commanded open; else WELD. */
  contactorOpenMs: ms(20, 10_000, 500),
  /** Lock feedback must read released this long after release is commanded. */
  lockReleaseMs: ms(50, 30_000, 2000),
  /** A meter reading this old or older is stale: no close, and a running session stops. */
  meterStaleMs: ms(500, 300_000, 5000),
  /** An exchange not finished this long after its HELLO gets ERROR TIMEOUT (§3: 10 s). */
  exchangeTimeoutMs: ms(1000, 60_000, 10_000),
};

/** STATUS period while charging. */
export const statusIntervalMsSchema = ms(100, 60_000, 1000);

/** Lock position at boot when no weld is found ("engaged" for tethered-cable piles). */
export const lockSafeStateSchema = z.enum(["released", "engaged"]).default("released");

export const pileCoreConfigSchema = z.object({
  pileId: pileIdSchema.default("0001"),
  skewMs: skewMsSchema,
  ...deadlineFields,
  statusIntervalMs: statusIntervalMsSchema,
  /**
   * Least interval between two durable progress records of a charging session (besides those of
   * every state change and the end). A STATUS tells no more energy than the last record holds, so
   * its energy advances at this pace: by default every STATUS is preceded by its record (written
   * off the control loop while the contactor is live). A longer interval writes less and lets the
   * STATUS energy lag; at a crash the meter's register closes the session either way.
   */
  progressIntervalMs: ms(100, 3_600_000, 1000),
  /** The daemon must acknowledge a recordCode within this; else the PRESENT is refused. */
  recordTimeoutMs: ms(10, 600_000, 5000),
  lockSafeState: lockSafeStateSchema,
  /**
   * With a pilot MCU: the most current the PWM advertises (IEC 61851-1, 6–80 A). A code carries
   * no current limit (PROTOCOL.md §2), so a session is offered this.
   */
  pilotMaxCurrentA: z.number().min(6).max(80).default(32),
});

export type PileCoreConfig = z.infer<typeof pileCoreConfigSchema>;
export type PileCoreConfigInput = z.input<typeof pileCoreConfigSchema>;

export const defaultPileCoreConfig: PileCoreConfig = pileCoreConfigSchema.parse({});

/** The one freshness rule: a reading younger than `meterStaleMs` is fresh (this age is stale). */
export const meterFresh = (ageMs: number, cfg: Pick<PileCoreConfig, "meterStaleMs">): boolean =>
  ageMs < cfg.meterStaleMs;

/** Validates and fills defaults; every problem reported at once as "path: message". */
export function parsePileCoreConfig(
  input: unknown,
): { ok: true; value: PileCoreConfig } | { ok: false; errors: string[] } {
  const r = pileCoreConfigSchema.safeParse(input ?? {});
  if (r.success) return { ok: true, value: r.data };
  return { ok: false, errors: r.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`) };
}
