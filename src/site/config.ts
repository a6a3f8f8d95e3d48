/**
 * The `site` section of the config: the dashboard (with its metrics endpoint) and the MQTT
 * bridge. Everything is off by default. The technician secret is the console's one (the port's
 * verifyTechnician); only the lockout of the dashboard's login is set here.
 */
import { isAbsolute } from "node:path";
import { z } from "zod";

const absPath = z.string().refine((p) => isAbsolute(p), { message: "must be an absolute path" });
const ms = (min: number, max: number, dflt: number) => z.int().min(min).max(max).default(dflt);
/** An MQTT topic without wildcards, at most 200 bytes. */
const topic = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[^#+\u0000]+$/, { message: "must be a topic without + or # wildcards" });

export const httpSchema = z.strictObject({
  enabled: z.boolean().default(false),
  /** Address to bind; loopback unless the operator opens it to the site's network. */
  host: z.string().min(1).max(255).default("127.0.0.1"),
  port: z.int().min(0).max(65535).default(8080),
  /** The operator's certificate and key (PEM): HTTPS instead of HTTP. */
  tls: z.strictObject({ certFile: absPath, keyFile: absPath }).optional(),
  metrics: z.boolean().default(true),
  lockoutAfter: z.int().min(1).max(100).default(5),
  lockoutMs: ms(1000, 86_400_000, 60_000),
  sessionTtlMs: ms(60_000, 86_400_000, 900_000),
  /** Largest request body accepted (a login or a command is a few hundred bytes). */
  maxBodyBytes: z.int().min(256).max(65536).default(4096),
  /** Open connections at once; more are refused. */
  maxConnections: z.int().min(4).max(1024).default(32),
  /** Live (server-sent events) clients at once. */
  maxEventClients: z.int().min(1).max(256).default(16),
});

export const mqttSchema = z
  .strictObject({
    enabled: z.boolean().default(false),
    /** mqtt://host:port or mqtts://host:port. */
    url: z
      .string()
      .max(500)
      .regex(/^mqtts?:\/\/[^\s]+$/, { message: "must be an mqtt:// or mqtts:// URL" })
      .default("mqtt://127.0.0.1:1883"),
    username: z.string().min(1).max(200).optional(),
    /** File holding the broker password (one line), checked like a key file (owner, mode 0600). */
    passwordFile: absPath.optional(),
    /** CA (PEM) to check an mqtts:// broker against; client certificate for TLS authentication. */
    caFile: absPath.optional(),
    certFile: absPath.optional(),
    keyFile: absPath.optional(),
    /** Topics are <baseTopic>/<pileId>/… */
    baseTopic: topic.default("piled"),
    /** Home Assistant's discovery prefix; empty string: no discovery documents. */
    discoveryPrefix: z.union([topic, z.literal("")]).default("homeassistant"),
    commands: z
      .strictObject({
        enabled: z.boolean().default(false),
        /** Default <baseTopic>/<pileId>/command. */
        topic: topic.optional(),
      })
      .default({ enabled: false }),
    keepaliveS: z.int().min(5).max(3600).default(30),
    reconnectMs: ms(100, 600_000, 2000),
  })
  .superRefine((c, ctx) => {
    if (c.passwordFile !== undefined && c.username === undefined)
      ctx.addIssue({ code: "custom", path: ["username"], message: "a passwordFile needs a username" });
    if ((c.certFile === undefined) !== (c.keyFile === undefined))
      ctx.addIssue({ code: "custom", path: ["keyFile"], message: "give certFile and keyFile together" });
  });

export const siteSchema = z.strictObject({
  http: httpSchema.default(httpSchema.parse({})),
  mqtt: mqttSchema.default(mqttSchema.parse({})),
});

export type HttpConfig = z.infer<typeof httpSchema>;
export type MqttConfig = z.infer<typeof mqttSchema>;
export type SiteConfig = z.infer<typeof siteSchema>;

/** Parses the site section; a typed list of problems, never a throw. */
export function parseSiteConfig(
  raw: unknown,
): { ok: true; config: SiteConfig } | { ok: false; problems: string[] } {
  const r = siteSchema.safeParse(raw ?? {});
  if (r.success) return { ok: true, config: r.data };
  return { ok: false, problems: r.error.issues.map((i) => `site.${i.path.join(".")}: ${i.message}`) };
}
