/**
 * The `ocpp` section of the daemon's configuration: the link to an OCPP 2.0.1 central system.
 * Off by default; with `enabled: false` nothing else is read and the pile works without it.
 */
import { z } from "zod";

/** OCPP 2.0.1 §"identity": at most 48 characters, unreserved URL characters only. */
const IDENTITY = /^[A-Za-z0-9._~\-*:=+|@]{1,48}$/;

const wsUrl = z
  .string()
  .url()
  .refine((u) => /^wss?:\/\//.test(u), { message: "must be a ws:// or wss:// URL" });

export const OcppConfigSchema = z
  .object({
    enabled: z.boolean().default(false),
    /** The CSMS endpoint without the identity: `<url>/<identity>` is dialled. */
    url: wsUrl.optional(),
    identity: z.string().regex(IDENTITY, "1-48 unreserved URL characters").optional(),
    /** 1: HTTP Basic auth; 2: Basic auth over TLS (wss:// required). */
    securityProfile: z.union([z.literal(1), z.literal(2)]).default(2),
    /** File holding the station's Basic-auth password (mode 0600 or tighter, like keys). */
    passwordFile: z.string().min(1).optional(),
    /** PEM file of the operator's CA for wss:// (the system CAs when absent). */
    caFile: z.string().min(1).optional(),
    /** Until the CSMS names one in BootNotification. */
    heartbeatIntervalS: z.number().int().min(1).max(86_400).default(300),
    /** TransactionEvent Updated with meter values, seconds; 0 = none. */
    meterValueIntervalS: z.number().int().min(0).max(86_400).default(60),
    /** OfflineThreshold: back after an offline period longer than this, the connector's status is sent again. */
    offlineThresholdS: z.number().int().min(0).max(86_400).default(60),
    /** Retry delay after Pending/Rejected when the CSMS gives interval 0. */
    bootRetryS: z.number().int().min(1).max(86_400).default(30),
    callTimeoutMs: z.number().int().min(100).max(600_000).default(30_000),
    /** Reconnect backoff, first connect included (retried forever). */
    backoffInitialMs: z.number().int().min(10).max(600_000).default(1_000),
    backoffMaxMs: z.number().int().min(10).max(3_600_000).default(60_000),
    /** Outbox bound: past it, intermediate Updated events are dropped first (E04.FR.07/08). */
    outboxMax: z.number().int().min(4).max(1_000_000).default(10_000),
    /** Largest WebSocket frame accepted from the CSMS; a larger one closes the link. */
    maxFrameBytes: z
      .number()
      .int()
      .min(4096)
      .max(16 * 1024 * 1024)
      .default(256 * 1024),
    /** RequestStartTransaction bypasses the charging code: refused unless the operator opts in. */
    allowRemoteStart: z.boolean().default(false),
    /** What to do when the CSMS rejects a Local idToken: nothing, or end the session. */
    localTokenPolicy: z.enum(["ignore", "stop"]).default("ignore"),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (!c.enabled) return;
    if (c.url === undefined)
      ctx.addIssue({ code: "custom", path: ["url"], message: "required when enabled" });
    if (c.identity === undefined)
      ctx.addIssue({ code: "custom", path: ["identity"], message: "required when enabled" });
    if (c.passwordFile === undefined)
      ctx.addIssue({ code: "custom", path: ["passwordFile"], message: "required (security profile 1/2)" });
    if (c.securityProfile === 2 && c.url !== undefined && !c.url.startsWith("wss://"))
      ctx.addIssue({ code: "custom", path: ["url"], message: "security profile 2 needs wss://" });
    if (c.backoffMaxMs < c.backoffInitialMs)
      ctx.addIssue({ code: "custom", path: ["backoffMaxMs"], message: "less than backoffInitialMs" });
  });

export type OcppConfig = z.infer<typeof OcppConfigSchema>;

/** The section when it is absent from the file: off. */
export const OCPP_DEFAULTS: OcppConfig = OcppConfigSchema.parse({});
