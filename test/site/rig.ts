/** Starts a dashboard over a FakePort on a loopback port for the site tests. */
import { httpSchema } from "../../src/site/config.js";
import { SiteCounters } from "../../src/site/counters.js";
import { Dashboard } from "../../src/site/http.js";
import { SiteMetrics } from "../../src/site/metrics.js";
import { FakePort } from "./fake-port.js";

export interface Rig {
  port: FakePort;
  counters: SiteCounters;
  dashboard: Dashboard;
  metrics: SiteMetrics;
  url: string;
  close(): Promise<void>;
}

export async function startRig(over: Record<string, unknown> = {}): Promise<Rig> {
  const port = await FakePort.create();
  const counters = new SiteCounters();
  const metrics = new SiteMetrics(port, counters);
  const config = httpSchema.parse({ enabled: true, host: "127.0.0.1", port: 0, ...over });
  const dashboard = new Dashboard({ port, config, counters, metrics });
  const a = await dashboard.start();
  return {
    port,
    counters,
    dashboard,
    metrics,
    url: `http://127.0.0.1:${a.port}`,
    close: async () => {
      await dashboard.close();
      metrics.close();
    },
  };
}

/** POSTs JSON; returns status, body and the set-cookie header. */
export async function post(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown>; cookie: string | null }> {
  const r = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await r.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    parsed = { text };
  }
  return { status: r.status, body: parsed, cookie: r.headers.get("set-cookie") };
}
