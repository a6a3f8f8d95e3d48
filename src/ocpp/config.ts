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

/**
 * Security profile 3 (OCPP 2.0.1 A00): TLS both ways, the CSMS knows the station by its client
 * certificate; the station sends no Basic-auth password.
 */
function profile3Issues(
  c: {
    url?: string | undefined;
    passwordFile?: string | undefined;
    certFile?: string | undefined;
    keyFile?: string | undefined;
  },
  issue: (path: string, message: string) => void,
): void {
  if (c.url !== undefined && !c.url.startsWith("wss://")) issue("url", "security profile 3 needs wss://");
  if (c.certFile === undefined) issue("certFile", "required (security profile 3)");
  if (c.keyFile === undefined) issue("keyFile", "required (security profile 3)");
  if (c.passwordFile !== undefined)
    issue(
      "passwordFile",
      "not used by security profile 3 (no Basic auth: the CSMS knows the station by its certificate)",
    );
}

export const OcppConfigSchema = z
  .object({
    enabled: z.boolean().default(false),
    /** The CSMS endpoint without the identity: `<url>/<identity>` is dialled. */
    url: wsUrl.optional(),
    identity: z.string().regex(IDENTITY, "1-48 unreserved URL characters").optional(),
    /**
     * 1: HTTP Basic auth; 2: Basic auth over TLS (wss:// required); 3: TLS with the station's
     * client certificate, no Basic auth (wss://, certFile and keyFile required).
     */
    securityProfile: z.union([z.literal(1), z.literal(2), z.literal(3)]).default(2),
    /** File holding the station's Basic-auth password (mode 0600 or tighter, like keys); profiles 1 and 2. */
    passwordFile: z.string().min(1).optional(),
    /** PEM file of the operator's CA for wss:// (the system CAs when absent). */
    caFile: z.string().min(1).optional(),
    /** Profile 3: PEM file of the station's certificate (chain) shown to the CSMS. */
    certFile: z.string().min(1).optional(),
    /** Profile 3: PEM file of the station's private key (owned by this user or root, mode 0600 or tighter). */
    keyFile: z.string().min(1).optional(),
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
    const issue = (path: string, message: string) => ctx.addIssue({ code: "custom", path: [path], message });
    if (c.securityProfile === 3) profile3Issues(c, issue);
    else {
      if (c.passwordFile === undefined)
        ctx.addIssue({ code: "custom", path: ["passwordFile"], message: "required (security profile 1/2)" });
      for (const k of ["certFile", "keyFile"] as const)
        if (c[k] !== undefined)
          ctx.addIssue({ code: "custom", path: [k], message: "only with security profile 3" });
    }
    if (c.securityProfile === 2 && c.url !== undefined && !c.url.startsWith("wss://"))
      ctx.addIssue({ code: "custom", path: ["url"], message: "security profile 2 needs wss://" });
    if (c.backoffMaxMs < c.backoffInitialMs)
      ctx.addIssue({ code: "custom", path: ["backoffMaxMs"], message: "less than backoffInitialMs" });
  });

export type OcppConfig = z.infer<typeof OcppConfigSchema>;

/** The section when it is absent from the file: off. */
export const OCPP_DEFAULTS: OcppConfig = OcppConfigSchema.parse({});
