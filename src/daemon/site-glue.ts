/**
 * The site front ends in the running daemon: the dashboard (with its metrics endpoint) and the
 * MQTT bridge, both over the command table (src/site/control-adapter.ts) and fed by the
 * runtime's performed effects (src/site/effect-feed.ts). Started after the runtime, closed
 * before it. Each is on its own: one that cannot start (a port in use, a certificate that cannot
 * be read, a password file refused) is logged and left off; nothing here can stop the daemon or
 * move an output, and a broker or browser going away is the front end's business only.
 * The front ends' modules (node:http, mqtt, prom-client) are loaded only when turned on: a pile
 * without them does not pay their memory.
 */
import type { Logger } from "pino";
import type { PileControl } from "../control/index.js";
import { readSmallFile } from "../sdk/files.js";
import type { ControlPort } from "../site/control-adapter.js";
import type { SiteCounters } from "../site/counters.js";
import type { Dashboard } from "../site/http.js";
import type { SiteMetrics } from "../site/metrics.js";
import type { MqttBridge } from "../site/mqtt.js";
import type { Config } from "./config.js";
import { hashProblem } from "./console/secret.js";
import type { PileRuntime } from "./runtime.js";

export interface SiteFronts {
  /** Bad-input and link counts of the site surfaces (http.*, mqtt.*), for `status`. */
  counters(): Record<string, number>;
  /** Where the dashboard listens, if it does. */
  readonly dashboardAddress: { host: string; port: number } | undefined;
  close(): Promise<void>;
}

/** How long each front end may take to close (MQTT's "offline", the live views ending). */
const CLOSE_MS = 1000;

const errText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** Bounded: a front end that hangs on its way out must not hold the daemon's stop. */
const bounded = (p: Promise<unknown>, ms = 3000): Promise<unknown> =>
  Promise.race([p.catch(() => undefined), new Promise((r) => setTimeout(r, ms).unref())]);

/**
 * The technician secret's hash, the console's one (console.secretHash or secretHashFile), read
 * whether or not the serial console is on; undefined (the dashboard read-only) when none is
 * configured or it is refused.
 */
export function technicianHash(config: Config, log: Logger): string | undefined {
  const c = config.console;
  let hash = c.secretHash;
  if (hash === undefined && c.secretHashFile !== undefined) {
    const r = readSmallFile(c.secretHashFile, { what: "console secret hash file", owner: true });
    if (!r.ok) {
      log.error({ err: r.error.message }, "technician secret unreadable: the dashboard is read-only");
      return undefined;
    }
    hash = r.value.replace(/^\uFEFF/, "").trim();
  }
  if (hash === undefined) {
    log.warn(
      "no technician secret configured (console.secretHash/secretHashFile): the dashboard is read-only",
    );
    return undefined;
  }
  const problem = hashProblem(hash);
  if (problem) {
    log.error({ problem }, "technician secret hash refused: the dashboard is read-only");
    return undefined;
  }
  return hash;
}

async function startDashboard(
  port: ControlPort,
  config: Config,
  counters: SiteCounters,
  log: Logger,
): Promise<
  { dashboard: Dashboard; metrics?: SiteMetrics; address: { host: string; port: number } } | undefined
> {
  const c = config.site.http;
  let metrics: SiteMetrics | undefined;
  try {
    const [{ Dashboard }, { SiteMetrics }] = await Promise.all([
      import("../site/http.js"),
      import("../site/metrics.js"),
    ]);
    metrics = c.metrics ? new SiteMetrics(port, counters) : undefined;
    const dashboard = new Dashboard({ port, config: c, counters, ...(metrics ? { metrics } : {}) });
    try {
      const address = await dashboard.start();
      log.info({ ...address, tls: c.tls !== undefined, metrics: c.metrics }, "dashboard listening");
      return { dashboard, ...(metrics ? { metrics } : {}), address };
    } catch (e) {
      await bounded(dashboard.close());
      throw e;
    }
  } catch (e) {
    metrics?.close();
    log.error({ err: errText(e), host: c.host, port: c.port }, "dashboard not available");
    return undefined;
  }
}

async function startMqtt(
  port: ControlPort,
  config: Config,
  counters: SiteCounters,
  log: Logger,
): Promise<MqttBridge | undefined> {
  let bridge: MqttBridge | undefined;
  try {
    const { MqttBridge } = await import("../site/mqtt.js");
    const url = config.site.mqtt.url;
    bridge = new MqttBridge(port, config.site.mqtt, counters, {
      onProblem: (err) => log.warn({ url, err }, "MQTT broker unreachable or refusing the pile; retrying"),
      onBack: () => log.info({ url }, "MQTT bridge connected again"),
    });
    const r = await bridge.start();
    if (!r.ok) {
      log.error({ code: r.error.code, err: r.error.message }, "MQTT bridge not started");
      return undefined;
    }
    log.info({ url, topics: bridge.topicBase }, "MQTT bridge connecting");
    return bridge;
  } catch (e) {
    log.error({ err: errText(e) }, "MQTT bridge not started");
    if (bridge) await bounded(bridge.close());
    return undefined;
  }
}

/** Starts what the `site` section turns on; undefined when it turns on nothing (or on a failure). */
export async function startSite(o: Parameters<typeof startFronts>[0]): Promise<SiteFronts | undefined> {
  try {
    return await startFronts(o);
  } catch (e) {
    o.log.error({ component: "site", err: errText(e) }, "site front ends not started");
    return undefined;
  }
}

async function startFronts(o: {
  config: Config;
  pile: PileControl;
  runtime: Pick<PileRuntime, "onEffect">;
  log: Logger;
}): Promise<SiteFronts | undefined> {
  const { config } = o;
  if (!config.site.http.enabled && !config.site.mqtt.enabled) return undefined;
  const log = o.log.child({ component: "site" });
  const [{ ControlPort }, { SiteCounters }, { EffectFeed }] = await Promise.all([
    import("../site/control-adapter.js"),
    import("../site/counters.js"),
    import("../site/effect-feed.js"),
  ]);
  const counters = new SiteCounters();
  const port = new ControlPort({
    pile: o.pile,
    // no hash: verifySecret matches nothing, every login is refused
    secretHash: config.site.http.enabled ? (technicianHash(config, log) ?? "") : "",
    watchMs: 0,
  });
  const feed = new EffectFeed({ pile: o.pile, emit: (e) => port.feed(e) });
  // After the effect's turn of the loop: the front ends' reads never sit inside an effect batch.
  const offEffects = o.runtime.onEffect((e) => setImmediate(() => feed.effect(e)));
  const http = config.site.http.enabled ? await startDashboard(port, config, counters, log) : undefined;
  const mqtt = config.site.mqtt.enabled ? await startMqtt(port, config, counters, log) : undefined;
  let closed: Promise<void> | undefined;
  return {
    counters: () => counters.all(),
    dashboardAddress: http?.address,
    close: () => {
      closed ??= (async () => {
        offEffects();
        feed.stop();
        // Both at once and briefly: the runtime's stop (the contactor opening) waits for this.
        await Promise.all([
          mqtt ? bounded(mqtt.close(), CLOSE_MS) : undefined,
          http ? bounded(http.dashboard.close(), CLOSE_MS) : undefined,
        ]);
        http?.metrics?.close();
      })();
      return closed;
    },
  };
}
