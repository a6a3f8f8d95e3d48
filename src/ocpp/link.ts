import { EventEmitter } from "node:events";
import { createRequire } from "node:module";
import { createValidator, RPCClient } from "ocpp-rpc";
import type { LinkOptions } from "./link-options.js";

export { type LinkOptions, linkOptions, readClientKey, readPassword } from "./link-options.js";

/**
 * ocpp-rpc's 2.0.1 validator with the error code spelt as OCPP-J 2.0.1 §4.3 spells it
 * ("OccurrenceConstraintViolation"; ocpp-rpc uses 1.6's "Occurence" for every version).
 */
function strictValidator201() {
  const schemas = createRequire(import.meta.url)("ocpp-rpc/lib/schemas/ocpp2_0_1.json") as object[];
  const v = createValidator("ocpp2.0.1", schemas);
  return {
    subprotocol: "ocpp2.0.1",
    validate(schemaId: string, params: unknown): boolean {
      try {
        return v.validate(schemaId, params) as boolean;
      } catch (e) {
        const x = e as { rpcErrorCode?: string };
        if (x.rpcErrorCode === "OccurenceConstraintViolation")
          x.rpcErrorCode = "OccurrenceConstraintViolation";
        throw e;
      }
    },
  };
}

export class NotConnectedError extends Error {
  override readonly name = "NotConnectedError";
}

export interface LinkCounters {
  connects: number;
  connectFailures: number;
  /** Frames that are not OCPP-J (not JSON, not an array, bad type or id). */
  badFrames: number;
  /** Inbound calls or results failing the 2.0.1 schemas. */
  schemaRejects: number;
  /** Inbound calls for actions this station does not handle. */
  unknownActions: number;
  /** Inbound calls answered with any CALLERROR. */
  callErrors: number;
  /** Links dropped because the CSMS sent a frame above maxFrameBytes (ws closes them, 1009). */
  oversizeFrames: number;
}

export type Handler = (params: Record<string, unknown>) => Promise<Record<string, unknown>>;

/** Node's TLS verification codes: the CSMS's certificate is not the one the operator's CA vouches for. */
const TLS_TRUST_CODES = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_SIGNATURE_FAILURE",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

/** OpenSSL's alerts from the CSMS when it does not take the station's client certificate. */
const TLS_CLIENT_CERT_ALERTS =
  /ALERT_(CERTIFICATE_REQUIRED|UNKNOWN_CA|BAD_CERTIFICATE|CERTIFICATE_UNKNOWN|CERTIFICATE_EXPIRED|CERTIFICATE_REVOKED|UNSUPPORTED_CERTIFICATE|ACCESS_DENIED|DECRYPT_ERROR|HANDSHAKE_FAILURE)$/;

/**
 * A failed connect in words: a CSMS certificate the station does not trust is named as such, and
 * so is a CSMS that refused the station's client certificate (or wanted one and got none). With
 * TLS 1.3 the CSMS checks that certificate after the station's side of the handshake is done: one
 * that drops the connection without an alert shows as a hang-up, said as such in profile 3.
 */
export function connectErrorText(e: unknown, securityProfile?: number): string {
  if (!(e instanceof Error)) return "connect failed";
  const code = (e as { code?: unknown }).code;
  if (typeof code === "string" && TLS_TRUST_CODES.has(code))
    return `TLS: the CSMS certificate is not trusted (${code}): ${e.message}`;
  if (typeof code === "string" && code.startsWith("ERR_SSL_") && TLS_CLIENT_CERT_ALERTS.test(code)) {
    const what = code.endsWith("CERTIFICATE_REQUIRED")
      ? "the CSMS requires a client certificate (security profile 3) and the station sent none"
      : "the CSMS refused the station's client certificate";
    return `TLS: ${what} (${code})`;
  }
  if (securityProfile === 3 && code === "ECONNRESET")
    return `${e.name}: ${e.message} (before the WebSocket upgrade: the CSMS may have refused the station's client certificate)`;
  return `${e.name}: ${e.message}`;
}

/** Events: "open", "close" ({code}), "connectError" (the text, when it differs from the last one). */
export class OcppLink extends EventEmitter {
  readonly counters: LinkCounters = {
    connects: 0,
    connectFailures: 0,
    badFrames: 0,
    schemaRejects: 0,
    unknownActions: 0,
    callErrors: 0,
    oversizeFrames: 0,
  };
  lastError: string | undefined;
  private readonly client: RPCClient;
  private stopped = true;
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;
  private open = false;
  /** The connect error last emitted since the last success (one log line per kind of failure). */
  private reported: string | undefined;

  constructor(private readonly o: LinkOptions) {
    super();
    const c = o.cfg;
    this.client = new RPCClient({
      endpoint: c.url ?? "",
      identity: c.identity ?? "",
      password: o.password,
      protocols: ["ocpp2.0.1"],
      strictMode: true,
      strictModeValidators: [strictValidator201()],
      callConcurrency: 1,
      callTimeoutMs: c.callTimeoutMs,
      reconnect: false,
      respondWithDetailedErrors: false,
      // ws hands these to tls.connect: `ca` the CSMS is checked against, `cert`/`key` shown to it.
      wsOpts: {
        maxPayload: c.maxFrameBytes,
        ...(o.ca !== undefined ? { ca: o.ca } : {}),
        ...(o.cert !== undefined && o.key !== undefined ? { cert: o.cert, key: o.key } : {}),
      },
    } as never);
    this.watch();
  }

  private watch(): void {
    const n = this.counters;
    this.client.on("badMessage", () => n.badFrames++);
    this.client.on("strictValidationFailure", (e: { outbound: boolean }) => {
      if (!e.outbound) n.schemaRejects++;
    });
    this.client.on("callError", (e: { outbound: boolean; error?: { rpcErrorCode?: string } }) => {
      if (e.outbound) return;
      n.callErrors++;
      if (e.error?.rpcErrorCode === "NotImplemented") n.unknownActions++;
    });
    this.client.on("socketError", (e: { code?: string }) => {
      if (e.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH") n.oversizeFrames++;
    });
    this.client.on("close", (e: { code?: number }) => {
      const was = this.open;
      this.open = false;
      if (was) this.emit("close", { code: e.code });
      this.schedule();
    });
  }

  get isOpen(): boolean {
    return this.open;
  }

  handle(method: string, fn: Handler): void {
    this.client.handle(method, async ({ params }) => fn((params ?? {}) as Record<string, unknown>));
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.attempt = 0;
    void this.dial();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.client.close({ code: 1000, reason: "station stopping", force: true }).catch(() => undefined);
  }

  private async dial(): Promise<void> {
    this.timer = undefined;
    if (this.stopped) return;
    try {
      await this.client.connect();
    } catch (e) {
      this.counters.connectFailures++;
      const text = connectErrorText(e, this.o.cfg.securityProfile);
      if (text !== this.reported) this.emit("connectError", text);
      this.reported = text;
      this.lastError = text;
      this.schedule();
      return;
    }
    if (this.stopped) return;
    this.attempt = 0;
    this.reported = undefined;
    this.counters.connects++;
    this.open = true;
    this.emit("open");
  }

  /** Next connect after the backoff: initial·2^n, at most max, with ±20 % jitter. */
  private schedule(): void {
    if (this.stopped || this.timer !== undefined || this.open) return;
    const c = this.o.cfg;
    const base = Math.min(c.backoffMaxMs, c.backoffInitialMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    this.timer = setTimeout(() => void this.dial(), delay);
  }

  /** One CALL; refused at once when the link is not open (nothing is queued in memory). */
  async call(method: string, params: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (!this.open) throw new NotConnectedError(`not connected (${method})`);
    return (await this.client.call(method, params)) as Record<string, unknown>;
  }
}
