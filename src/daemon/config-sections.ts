/**
 * Shared field kinds of the daemon's configuration (src/daemon/config.ts) and the schemas of its
 * console, control-socket, audit and store sections. config.ts re-exports every schema here.
 */

import { z } from "zod";
import type { openModbusMeter } from "../hw/meter/modbus-meter.js";
import type { Clock } from "../hw/ports.js";
import type { Config } from "./config.js";
import { hashProblem } from "./console/secret.js";

export const ms = (min: number, max: number, dflt: number) => z.int().min(min).max(max).default(dflt);

/**
 * A path on the board. A relative path is taken relative to the config file's folder (never to
 * the daemon's working directory): loadConfig() makes it absolute.
 */
export const absPath = z.string().min(1).max(4096);

export const STANDARD_BAUDS = [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200] as const;
export const baud = z.union(
  STANDARD_BAUDS.map((b) => z.literal(b)) as unknown as [z.ZodLiteral<number>, ...z.ZodLiteral<number>[]],
);

/** `scrypt$N$r$p$salt$hash` (salt and hash base64), as made by the console's hashSecret(). */
export const SCRYPT_HASH_RE = /^scrypt\$\d{1,7}\$\d{1,3}\$\d{1,3}\$[A-Za-z0-9+/=]{8,}\$[A-Za-z0-9+/=]{16,}$/;

export const consoleSchema = z
  .strictObject({
    enabled: z.boolean().default(false),
    port: absPath.default("/dev/piled-console"),
    baud: baud.default(115200),
    /** A file holding the scrypt hash string (one line). Preferred: keeps it out of the config. */
    secretHashFile: absPath.optional(),
    /** The scrypt hash string itself (never the secret). */
    secretHash: z
      .string()
      .regex(SCRYPT_HASH_RE, { message: "must be a scrypt$N$r$p$salt$hash string" })
      .superRefine((h, ctx) => {
        // Parameters bounded too: a hash asking for 4 GiB per login attempt is refused here.
        const problem = SCRYPT_HASH_RE.test(h) ? hashProblem(h) : undefined;
        if (problem) ctx.addIssue({ code: "custom", message: problem });
      })
      .optional(),
    lockoutAfter: z.int().min(1).max(100).default(5),
    lockoutMs: ms(1000, 86_400_000, 60_000),
    idleLogoutMs: ms(10_000, 86_400_000, 300_000),
  })
  .superRefine((c, ctx) => {
    if (c.secretHashFile !== undefined && c.secretHash !== undefined)
      ctx.addIssue({
        code: "custom",
        path: ["secretHash"],
        message: "give secretHashFile or secretHash, not both",
      });
    if (c.enabled && c.secretHashFile === undefined && c.secretHash === undefined)
      ctx.addIssue({
        code: "custom",
        path: ["secretHashFile"],
        message: "an enabled console needs secretHashFile or secretHash",
      });
  });

export const controlSocketSchema = z.strictObject({
  path: absPath.default("/run/piled/control.sock"),
  /** Group given the socket (chgrp); members may run pilectl. */
  group: z.string().min(1).max(32).optional(),
  /**
   * File mode, as an octal string ("0660"). Never writable by others: connecting to a Unix
   * socket needs write permission, and whoever connects may stop the pile or add a key.
   */
  mode: z
    .string()
    .regex(/^0?[0-7]{3}$/, { message: "must be an octal mode such as 0660" })
    .refine((m) => (Number.parseInt(m, 8) & 0o002) === 0, {
      message: "must not be writable by others (any local user could stop the pile); use 0660 and a group",
    })
    .default("0660"),
});

export const auditSchema = z.strictObject({
  /** Rows the audit table keeps; the oldest go as new ones come. */
  maxRows: z.int().min(100).max(1_000_000).default(10_000),
});

export const storeSchema = z.strictObject({
  /**
   * Free bytes the state directory must keep: below it the pile is UNAVAILABLE ("disk low"), before
   * a record could fail to be written. 0 turns the check off.
   */
  minFreeBytes: z
    .int()
    .min(0)
    .max(2 ** 40)
    .default(1_048_576),
  /** How often the free space is measured and records held after a failed write are tried again. */
  retryMs: ms(100, 600_000, 2000),
});

/** The Modbus link of the configured meter on `path` (the daemon's, or doctor's one read). */
export function meterLinkOptions(
  c: Config,
  path: string,
  clock: Clock,
): Parameters<typeof openModbusMeter>[0] {
  const m = c.meter;
  return {
    path,
    baudRate: m.baud,
    parity: m.parity,
    stopBits: m.stopBits,
    dataBits: m.dataBits,
    timeoutMs: m.timeoutMs,
    retries: m.retries,
    model: m.model,
    unit: m.unit,
    clock,
  };
}
