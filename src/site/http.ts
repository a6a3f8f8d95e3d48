/**
 * The dashboard's server (node:http, or node:https with the operator's certificate): the page,
 * its snapshot, the live stream (server-sent events pushed on each pile event, coalesced; the
 * store is never polled), the technician's actions and the Prometheus endpoint. Off by default,
 * bound to the configured address. Floods are refused: connections above the cap get a 503 (over
 * HTTPS: are closed before their handshake), slow handshakes and headers time out, bodies are
 * capped, a live view that does not read is dropped.
 */
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createTlsServer } from "node:https";
import type { Socket } from "node:net";
import { faultAdvice } from "./advice.js";
import { TechAuth } from "./auth.js";
import type { HttpConfig } from "./config.js";
import type { SiteCounters } from "./counters.js";
import { refuse, SECURITY_HEADERS, sendJson } from "./http-body.js";
import { handleCommand, handleLogin, handleLogout, type TechDeps } from "./http-tech.js";
import type { SiteMetrics } from "./metrics.js";
import { PAGE_CSS, PAGE_HTML, PAGE_JS } from "./page.js";
import type { SitePilePort } from "./port.js";

export interface DashboardOptions {
  port: SitePilePort;
  config: HttpConfig;
  counters: SiteCounters;
  metrics?: SiteMetrics;
}

const STATIC: Record<string, { type: string; body: Buffer }> = {
  "/": { type: "text/html; charset=utf-8", body: Buffer.from(PAGE_HTML) },
  "/app.css": { type: "text/css; charset=utf-8", body: Buffer.from(PAGE_CSS) },
  "/app.js": { type: "text/javascript; charset=utf-8", body: Buffer.from(PAGE_JS) },
};

/** Bytes of the page and what it loads. */
export const PAGE_WEIGHT = Object.values(STATIC).reduce((n, s) => n + s.body.length, 0);

/** Bytes a live view may have waiting to be sent before it is dropped. */
const MAX_STREAM_BACKLOG = 256 * 1024;

const FLOOD_REPLY =
  "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: 28\r\n\r\ntoo many connections; retry\n";

export class Dashboard {
  private readonly server: Server;
  private readonly auth: TechAuth;
  private readonly sse = new Set<ServerResponse>();
  private readonly sockets = new Set<Socket>();
  private readonly tech: TechDeps;
  private unsubscribe: (() => void) | undefined;
  private pending = false;

  constructor(private readonly o: DashboardOptions) {
    const c = o.config;
    this.auth = new TechAuth({
      lockoutAfter: c.lockoutAfter,
      lockoutMs: c.lockoutMs,
      sessionTtlMs: c.sessionTtlMs,
      verify: (s) => o.port.verifyTechnician(s),
    });
    const secure = c.tls !== undefined;
    this.tech = { port: o.port, auth: this.auth, counters: o.counters, maxBodyBytes: c.maxBodyBytes, secure };
    const handler = (req: IncomingMessage, res: ServerResponse) => this.route(req, res);
    const opts = { maxHeaderSize: 8192, headersTimeout: 10_000, requestTimeout: 30_000 };
    this.server = c.tls
      ? createTlsServer(
          {
            ...opts,
            handshakeTimeout: 10_000,
            cert: readFileSync(c.tls.certFile),
            key: readFileSync(c.tls.keyFile),
          },
          handler,
        )
      : createServer(opts, handler);
    this.server.maxHeadersCount = 64;
    // Every TCP connection counts, HTTPS ones from before their handshake: one that never
    // finishes it holds a socket as long as one that does.
    this.server.on("connection", (s: Socket) => this.admit(s, !!c.tls));
    this.server.on("clientError", (_e, s: Socket) => {
      o.counters.inc("http.badRequest");
      if (s.writable) s.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      else s.destroy();
    });
  }

  private admit(s: Socket, tls: boolean): void {
    if (this.sockets.size >= this.o.config.maxConnections) {
      this.o.counters.inc("http.connectionRefused");
      if (tls) s.destroy();
      else s.end(FLOOD_REPLY);
      return;
    }
    this.sockets.add(s);
    s.on("close", () => this.sockets.delete(s));
  }

  /** Listens; resolves with the bound address. */
  async start(): Promise<{ host: string; port: number }> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.o.config.port, this.o.config.host, () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    this.unsubscribe = this.o.port.subscribe(() => this.changed());
    const a = this.server.address();
    if (a === null || typeof a === "string") throw new Error("dashboard has no TCP address");
    return { host: a.address, port: a.port };
  }

  async close(): Promise<void> {
    this.unsubscribe?.();
    for (const r of this.sse) r.end();
    this.sse.clear();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Several events in one turn of the loop give one push. */
  private changed(): void {
    if (this.pending || this.sse.size === 0) return;
    this.pending = true;
    setImmediate(() => {
      this.pending = false;
      this.view().then(
        (v) => {
          const frame = `event: snapshot\ndata: ${JSON.stringify(v)}\n\n`;
          for (const r of this.sse) {
            // A view that does not read would hold every frame in memory: dropped instead (a
            // browser that is only slow reconnects and gets the whole snapshot again).
            if (r.writableLength > MAX_STREAM_BACKLOG) {
              this.o.counters.inc("http.slowStream");
              this.sse.delete(r);
              r.destroy();
            } else r.write(frame);
          }
        },
        () => this.o.counters.inc("http.snapshotFailed"),
      );
    });
  }

  private async view(): Promise<unknown> {
    const s = await this.o.port.snapshot();
    return {
      ...s,
      faults: s.faults.map((f) => ({ ...f, advice: faultAdvice(f.code) })),
      status: { ...s.status, counters: { ...s.status.counters, ...this.o.counters.all() } },
      serverTime: Date.now(),
    };
  }

  private route(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const method = req.method ?? "GET";
    const page = STATIC[path];
    if (page && (method === "GET" || method === "HEAD")) {
      res.writeHead(200, {
        ...SECURITY_HEADERS,
        "content-type": page.type,
        "content-length": page.body.length,
      });
      res.end(method === "HEAD" ? undefined : page.body);
      return;
    }
    const done = (p: Promise<void> | void) =>
      Promise.resolve(p).catch(() => {
        if (!res.headersSent) refuse(res, 500, "INTERNAL", "the dashboard could not answer");
      });
    const h = this.handler(method, path, req, res);
    if (h) {
      done(h());
      return;
    }
    this.o.counters.inc("http.notFound");
    refuse(res, 404, "NOT_FOUND", `no ${method} ${path.slice(0, 64)} here`);
  }

  private handler(
    method: string,
    path: string,
    req: IncomingMessage,
    res: ServerResponse,
  ): (() => Promise<void> | void) | undefined {
    const key = `${method} ${path}`;
    if (key === "GET /api/snapshot") return () => this.sendSnapshot(res);
    if (key === "GET /events") return () => this.openStream(req, res);
    if (key === "GET /metrics" && this.o.metrics) return () => this.sendMetrics(res);
    if (key === "POST /api/login") return () => handleLogin(req, res, this.tech);
    if (key === "POST /api/logout") return () => handleLogout(req, res, this.tech);
    if (key === "POST /api/command") return () => handleCommand(req, res, this.tech);
    return undefined;
  }

  private async sendSnapshot(res: ServerResponse): Promise<void> {
    sendJson(res, 200, await this.view());
  }

  private async sendMetrics(res: ServerResponse): Promise<void> {
    const m = this.o.metrics!;
    const text = await m.render();
    res.writeHead(200, { "content-type": m.contentType, "cache-control": "no-store" });
    res.end(text);
  }

  private openStream(req: IncomingMessage, res: ServerResponse): void {
    if (this.sse.size >= this.o.config.maxEventClients) {
      this.o.counters.inc("http.streamRefused");
      refuse(res, 503, "BUSY", "too many live views open; close one");
      return;
    }
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      "content-type": "text/event-stream",
      connection: "keep-alive",
    });
    // A stream is long-lived: the request timeout must not cut it.
    req.socket.setTimeout(0);
    this.sse.add(res);
    const drop = () => this.sse.delete(res);
    req.on("close", drop);
    res.on("error", drop);
    this.view().then(
      (v) => res.write(`retry: 2000\nevent: snapshot\ndata: ${JSON.stringify(v)}\n\n`),
      () => this.o.counters.inc("http.snapshotFailed"),
    );
  }
}
