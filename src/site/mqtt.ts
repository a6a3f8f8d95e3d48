/**
 * The pile on an MQTT broker (the `mqtt` package): retained availability (with a last will
 * "offline"), state, meter and faults; session events in order (QoS 1, not retained); Home
 * Assistant discovery documents. Everything retained is published again on every (re)connect,
 * so a broker that restarted without persistence has it all back. Commands (stop,
 * availability) only when enabled, only on the configured topic and only as sent (a retained
 * one is refused); anything else on it, or under it, is refused and counted (mqtt.<kind>).
 */
import { readFileSync } from "node:fs";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { z } from "zod";
import { readSmallFile } from "../sdk/files.js";
import { VERSION } from "../version.js";
import { faultAdvice } from "./advice.js";
import type { MqttConfig } from "./config.js";
import type { SiteCounters } from "./counters.js";
import { discoveryDocuments } from "./ha-discovery.js";
import type { SiteEvent, SitePilePort, SiteSnapshot } from "./port.js";

const MAX_COMMAND_BYTES = 1024;
const ACTOR = "mqtt";
/**
 * Jobs the publish chain may hold. A QoS 1 publish in flight when the broker went away settles
 * only after the next connect, and the chain waits on it: without a bound, every meter reading
 * of an outage of days would wait in memory behind it. Past the bound the pile's events are
 * skipped (counted, mqtt.eventsSkipped); on the next connect everything retained is published
 * again from the pile as it is then, which is what those events would have left.
 */
const MAX_QUEUED = 64;
/** How long close() waits for the broker, for the "offline" and then for the DISCONNECT. */
const CLOSE_WAIT_MS = 400;

/** Whether `p` settled (resolved or rejected) within `ms`. */
export async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((r) => {
    timer = setTimeout(() => r(false), ms);
  });
  try {
    return await Promise.race([
      p.then(
        () => true,
        () => true,
      ),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const commandPayload = z.discriminatedUnion("command", [
  z.strictObject({ command: z.literal("stop") }),
  z.strictObject({ command: z.literal("availability"), available: z.boolean() }),
]);

/** A pile id made safe for topic levels and HA object ids. */
export const topicId = (pileId: string): string =>
  pileId.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 64) || "pile";

export type MqttSetupError = { code: "PASSWORD_FILE" | "TLS_FILE"; message: string };

/** The client options from the config; the password file is read with the key-file checks. */
export function clientOptions(
  c: MqttConfig,
  will: { topic: string },
): { ok: true; options: IClientOptions } | { ok: false; error: MqttSetupError } {
  const o: IClientOptions = {
    keepalive: c.keepaliveS,
    reconnectPeriod: c.reconnectMs,
    connectTimeout: 10_000,
    clean: true,
    will: { topic: will.topic, payload: Buffer.from("offline"), qos: 1, retain: true },
  };
  if (c.username !== undefined) o.username = c.username;
  if (c.passwordFile !== undefined) {
    const r = readSmallFile(c.passwordFile, {
      what: "MQTT password file",
      owner: true,
      forbidMode: 0o077,
      maxBytes: 1024,
    });
    if (!r.ok) return { ok: false, error: { code: "PASSWORD_FILE", message: r.error.message } };
    o.password = r.value.replace(/\r?\n$/, "");
  }
  try {
    if (c.caFile !== undefined) o.ca = readFileSync(c.caFile);
    if (c.certFile !== undefined && c.keyFile !== undefined) {
      o.cert = readFileSync(c.certFile);
      const k = readSmallFile(c.keyFile, { what: "MQTT client key", owner: true, forbidMode: 0o077 });
      if (!k.ok) return { ok: false, error: { code: "TLS_FILE", message: k.error.message } };
      o.key = k.value;
    }
  } catch (e) {
    return {
      ok: false,
      error: { code: "TLS_FILE", message: `MQTT TLS file cannot be read (${(e as Error).message})` },
    };
  }
  return { ok: true, options: o };
}

/** What the bridge tells its owner (the daemon's log): a connection refused or failing, once per outage. */
export interface BridgeHooks {
  onProblem?(message: string): void;
  /** Connected again after a problem was told. */
  onBack?(): void;
}

export class MqttBridge {
  private client: MqttClient | undefined;
  private unsubscribe: (() => void) | undefined;
  private base = "";
  private id = "";
  private commandTopic: string | undefined;
  /** Publishes in the order the events came, one at a time. */
  private chain: Promise<unknown> = Promise.resolve();
  /** Jobs on the chain not yet finished. */
  private queued = 0;
  /** Events were skipped: the retained topics are published again once the chain is empty. */
  private skipped = false;

  /** Whether the operator has been told of the current outage (once until the next connect). */
  private told = false;

  constructor(
    private readonly port: SitePilePort,
    private readonly config: MqttConfig,
    private readonly counters: SiteCounters,
    private readonly hooks: BridgeHooks = {},
  ) {}

  /** Connects (and keeps reconnecting); a bad password or TLS file is a typed error. */
  async start(): Promise<{ ok: true } | { ok: false; error: MqttSetupError }> {
    const snap = await this.port.snapshot();
    this.id = topicId(snap.status.pileId);
    this.base = `${this.config.baseTopic}/${this.id}`;
    if (this.config.commands.enabled)
      this.commandTopic = this.config.commands.topic ?? `${this.base}/command`;
    const opts = clientOptions(this.config, { topic: `${this.base}/availability` });
    if (!opts.ok) return opts;
    const client = mqtt.connect(this.config.url, opts.options);
    this.client = client;
    client.on("connect", () => {
      this.counters.inc("mqtt.connects");
      if (this.told) this.hooks.onBack?.();
      this.told = false;
      this.enqueue(() => this.publishAll());
      // One filter: `<topic>/#` matches the topic itself and everything under it (two
      // overlapping filters would have the broker deliver a retained message twice).
      if (this.commandTopic !== undefined)
        client.subscribe(`${this.commandTopic}/#`, { qos: 1 }, () => undefined);
    });
    client.on("error", (e: Error & { code?: unknown }) => {
      this.counters.inc("mqtt.errors");
      if (this.told) return;
      this.told = true;
      this.hooks.onProblem?.(`${String(e.code ?? "ERROR")}: ${e.message}`.slice(0, 300));
    });
    client.on("message", (topic, payload, packet) =>
      this.enqueue(() => this.command(topic, payload, packet.retain)),
    );
    this.unsubscribe = this.port.subscribe((e) => {
      // Disconnected, an event has nothing to do (onEvent would return at once): not queued.
      if (!client.connected) return;
      if (this.queued >= MAX_QUEUED) {
        this.counters.inc("mqtt.eventsSkipped");
        this.skipped = true;
        return;
      }
      this.enqueue(() => this.onEvent(e));
    });
    return { ok: true };
  }

  /** Topics of this pile: <base>/state, <base>/meter, … */
  get topicBase(): string {
    return this.base;
  }

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  /** Resolves once everything queued so far is published (or has failed). */
  async flushed(): Promise<void> {
    await this.chain;
  }

  /** Jobs waiting on the publish chain (bounded for the pile's events, MAX_QUEUED). */
  get pending(): number {
    return this.queued;
  }

  private enqueue(f: () => Promise<unknown>): void {
    this.queued++;
    this.chain = this.chain
      .then(f)
      .catch(() => this.counters.inc("mqtt.publishFailed"))
      .finally(() => {
        this.queued--;
        if (this.queued > 0 || !this.skipped) return;
        this.skipped = false;
        this.enqueue(async () => {
          if (this.client?.connected) await this.publishRetained(await this.port.snapshot());
        });
      });
  }

  private pub(topic: string, payload: unknown, retain: boolean): Promise<unknown> {
    const c = this.client;
    if (!c) return Promise.resolve();
    const text = typeof payload === "string" ? payload : JSON.stringify(payload);
    return c.publishAsync(topic, text, { qos: 1, retain });
  }

  private async publishAll(): Promise<void> {
    await this.pub(`${this.base}/availability`, "online", true);
    if (this.config.discoveryPrefix !== "") {
      const docs = discoveryDocuments({
        prefix: this.config.discoveryPrefix,
        id: this.id,
        pileId: (await this.port.snapshot()).status.pileId,
        base: this.base,
        version: VERSION,
        commandTopic: this.commandTopic,
      });
      for (const d of docs) await this.pub(d.topic, d.payload, true);
    }
    await this.publishRetained(await this.port.snapshot());
  }

  private async publishRetained(s: SiteSnapshot): Promise<void> {
    const st = s.status;
    await this.pub(
      `${this.base}/state`,
      {
        state: st.state,
        since: st.since,
        contactor: st.contactor,
        lock: st.lock,
        vehiclePresent: st.vehiclePresent,
        ble: st.ble,
        pilot: s.pilot,
        session: st.session,
      },
      true,
    );
    if (s.meter?.ok) await this.pub(`${this.base}/meter`, s.meter, true);
    await this.pub(
      `${this.base}/faults`,
      s.faults.map((f) => ({ ...f, advice: faultAdvice(f.code) })),
      true,
    );
  }

  private async onEvent(e: SiteEvent): Promise<void> {
    if (!this.client?.connected) return; // everything retained goes out again on the next connect
    if (e.kind === "session")
      await this.pub(
        `${this.base}/session`,
        {
          phase: e.phase,
          at: e.at,
          id: e.session.id,
          codeId: e.session.codeId,
          carrier: e.session.carrier,
          energyWh: e.session.energyWh,
          startedAt: e.session.startedAt,
          endedAt: e.session.endedAt,
          reason: e.session.reason,
        },
        false,
      );
    if (e.kind === "meter" && e.meter.ok) await this.pub(`${this.base}/meter`, e.meter, true);
    else if (e.kind === "state" || e.kind === "fault" || e.kind === "session")
      await this.publishRetained(await this.port.snapshot());
  }

  private async command(topic: string, payload: Buffer, retained: boolean): Promise<void> {
    if (this.commandTopic === undefined || topic !== this.commandTopic) {
      this.counters.inc("mqtt.wrongTopic");
      return;
    }
    // A retained command is an old one the broker hands to every new subscription: run, it
    // would stop a session again at each reconnect. Commands are taken as they are sent only.
    if (retained) {
      this.counters.inc("mqtt.retainedCommand");
      this.port.audit({ actor: ACTOR, action: "command", outcome: "RETAINED" });
      return;
    }
    let parsed: z.infer<typeof commandPayload> | undefined;
    if (payload.length <= MAX_COMMAND_BYTES) {
      try {
        const p = commandPayload.safeParse(JSON.parse(payload.toString("utf8")));
        if (p.success) parsed = p.data;
      } catch {
        // not JSON: refused below
      }
    }
    if (parsed === undefined) {
      this.counters.inc("mqtt.badPayload");
      this.port.audit({ actor: ACTOR, action: "command", outcome: "USAGE" });
      await this.pub(
        `${this.base}/command_result`,
        {
          ok: false,
          code: "USAGE",
          message: 'commands: {"command":"stop"}, {"command":"availability","available":true|false}',
        },
        false,
      );
      return;
    }
    const r =
      parsed.command === "stop"
        ? await this.port.stop(ACTOR)
        : await this.port.setAvailability(parsed.available, ACTOR);
    await this.pub(`${this.base}/command_result`, { command: parsed.command, ...r }, false);
  }

  /**
   * Says "offline" (retained) and disconnects; a crash leaves that to the last will. Bounded: a
   * QoS 1 publish settles only on the broker's PUBACK (never while it is away), and an ordinary
   * end waits for every one in flight, so with the broker gone or stalled the client is ended
   * forced, its socket destroyed, after CLOSE_WAIT_MS.
   */
  async close(): Promise<void> {
    this.unsubscribe?.();
    const c = this.client;
    if (!c) return;
    const said = await settlesWithin(
      (async () => {
        await this.chain;
        if (c.connected) await this.pub(`${this.base}/availability`, "offline", true);
      })(),
      CLOSE_WAIT_MS,
    );
    const force = !said || !c.connected;
    if (!(await settlesWithin(c.endAsync(force), CLOSE_WAIT_MS))) c.stream?.destroy();
  }
}
