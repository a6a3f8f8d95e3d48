/**
 * The control socket: a Unix stream socket speaking JSON lines, for pilectl.
 *   request  {"id": 1, "cmd": "status", "args": []}
 *   reply    {"id": 1, "ok": true, "result": …}  |  {"id": 1, "ok": false, "error": {"code", "message"}}
 * Commands are the console's (control-api.ts: one table, one audit trail). The socket is made
 * with the configured mode and group; a stale socket file is replaced only when nothing listens.
 */
import { readFileSync } from "node:fs";
import { chmod, chown, lstat, unlink } from "node:fs/promises";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import type { Logger } from "pino";
import { z } from "zod";
import { err, ok, type Result } from "../protocol/bytes.js";
import { executeCommand, type PileControl } from "./control-api.js";
import { peerCred } from "./peercred.js";

export { COMMAND_NAMES, formatResult, resolveCommand } from "./control-api.js";

/** Longest request line; a longer one gets an error and the connection is closed. */
export const MAX_REQUEST_BYTES = 65_536;

export type ControlSocketErrorCode = "IN_USE" | "NOT_A_SOCKET" | "NO_GROUP" | "LISTEN" | "MODE";

/** Bounds on what clients of the socket may hold of the daemon. */
export interface ControlLimits {
  /** Connections open at once; one more is told BUSY and closed. */
  maxConnections: number;
  /** A connection with no traffic either way for this long is closed. */
  idleTimeoutMs: number;
  /** Reply bytes queued for a client before its requests are no longer read. */
  highWaterBytes: number;
  /** Reply bytes queued past which a client that does not read is dropped. */
  maxBufferedBytes: number;
  /** Requests read ahead of their handling before reading pauses. */
  maxPendingLines: number;
  /** Requests a connection may send at once, then `perSecond`; more get RATE_LIMITED. */
  burst: number;
  perSecond: number;
}

export const CONTROL_LIMITS: ControlLimits = {
  maxConnections: 32,
  idleTimeoutMs: 60_000,
  highWaterBytes: 64 * 1024,
  maxBufferedBytes: 4 * 1024 * 1024,
  maxPendingLines: 256,
  burst: 50,
  perSecond: 20,
};

export class ControlSocketError extends Error {
  override readonly name = "ControlSocketError";
  constructor(
    readonly code: ControlSocketErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export const requestSchema = z.strictObject({
  id: z.union([z.string().max(64), z.int().min(0).max(Number.MAX_SAFE_INTEGER)]),
  cmd: z.string().min(1).max(32),
  args: z.array(z.string().max(256)).max(16).default([]),
});
export type ControlRequest = z.input<typeof requestSchema>;

export type ControlReply =
  | { id: string | number | null; ok: true; result: unknown }
  | { id: string | number | null; ok: false; error: { code: string; message: string } };

export interface ControlSocketOptions {
  path: string;
  /** File mode of the socket, e.g. 0o660. */
  mode: number;
  /** Group name or number given the socket. */
  group?: string;
  pile: PileControl;
  log?: Logger;
  /** Audit actor of requests over this socket; default "pilectl". */
  actor?: string;
  limits?: Partial<ControlLimits>;
  /** Milliseconds, monotonic, for the rate limit (tests); default performance.now. */
  monotonic?: () => number;
}

export interface ControlSocketServer {
  readonly path: string;
  counters(): Record<string, number>;
  /** Open connections and the reply bytes queued for them, in all. */
  connections(): { open: number; buffered: number };
  close(): Promise<void>;
}

/** gid of a group name (from /etc/group) or number; undefined if unknown. */
export function groupId(group: string, groupFile = "/etc/group"): number | undefined {
  if (/^\d+$/.test(group)) return Number(group);
  let text: string;
  try {
    text = readFileSync(groupFile, "utf8");
  } catch {
    return undefined;
  }
  for (const line of text.split("\n")) {
    const [name, , gid] = line.split(":");
    if (name === group && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  return undefined;
}

/** Whether something accepts connections on the socket at `path`. */
function listening(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

async function clearStale(path: string): Promise<void> {
  let st: Awaited<ReturnType<typeof lstat>>;
  try {
    st = await lstat(path);
  } catch {
    return; // nothing there
  }
  if (!st.isSocket())
    throw new ControlSocketError("NOT_A_SOCKET", `${path} exists and is not a socket; not touching it`);
  if (await listening(path)) throw new ControlSocketError("IN_USE", `${path}: another daemon is listening`);
  await unlink(path);
}

export async function startControlSocket(o: ControlSocketOptions): Promise<ControlSocketServer> {
  const gid = o.group === undefined ? undefined : groupId(o.group);
  if (o.group !== undefined && gid === undefined)
    throw new ControlSocketError("NO_GROUP", `no group '${o.group}'`);
  if ((o.mode & 0o002) !== 0)
    throw new ControlSocketError("MODE", `mode ${o.mode.toString(8)} lets any local user control the pile`);
  await clearStale(o.path);

  const limits = { ...CONTROL_LIMITS, ...o.limits };
  const monotonic = o.monotonic ?? (() => performance.now());
  const counts = {
    badRequest: 0,
    overlong: 0,
    rateLimited: 0,
    refusedConnection: 0,
    idleClosed: 0,
    slowReader: 0,
    errors: 0,
    noPeerCred: 0,
  };
  const counters = (): Record<string, number> => ({
    "control.badRequest": counts.badRequest,
    "control.overlong": counts.overlong,
    "control.rateLimited": counts.rateLimited,
    "control.refusedConnection": counts.refusedConnection,
    "control.idleClosed": counts.idleClosed,
    "control.slowReader": counts.slowReader,
    "control.errors": counts.errors,
    "control.noPeerCred": counts.noPeerCred,
  });
  // A request whose handling throws (a reply that cannot be serialised, a socket gone wrong) is
  // answered INTERNAL where possible and counted; it never reaches the process (that would end
  // a charging session). Logged the first time only.
  const failed = (e: unknown, where: string): void => {
    counts.errors++;
    if (counts.errors === 1)
      o.log?.error({ err: e instanceof Error ? e.message : String(e), where }, "control request failed");
  };
  const actor = o.actor ?? "pilectl";
  const sockets = new Set<Socket>();
  const line = (reply: ControlReply): string => `${JSON.stringify(reply)}\n`;

  /** The id of a request line, for a reply that cannot carry its answer (null when unreadable). */
  const requestId = (req: string): ControlReply["id"] => {
    try {
      const id = (JSON.parse(req) as { id?: unknown }).id;
      return typeof id === "string" || typeof id === "number" ? id : null;
    } catch {
      return null;
    }
  };

  type Peer = { uid: number; pid: number } | undefined;
  /** Who is at the other end (SO_PEERCRED), for the audit; a failure is counted and logged once. */
  const peerOf = (sock: Socket): Peer => {
    const c = peerCred(sock);
    if (!(c instanceof Error)) return { uid: c.uid, pid: c.pid };
    counts.noPeerCred++;
    if (counts.noPeerCred === 1) o.log?.warn({ err: c.message }, "control socket: peer uid unknown");
    return undefined;
  };

  const handleLine = async (line: string, peer: Peer): Promise<ControlReply> => {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      counts.badRequest++;
      return { id: null, ok: false, error: { code: "BAD_REQUEST", message: "not a JSON line" } };
    }
    const r = requestSchema.safeParse(value);
    if (!r.success) {
      counts.badRequest++;
      const id = (value as { id?: unknown } | null)?.id;
      return {
        id: typeof id === "string" || typeof id === "number" ? id : null,
        ok: false,
        error: {
          code: "BAD_REQUEST",
          message: r.error.issues.map((i) => `${i.path.join(".") || "request"}: ${i.message}`).join("; "),
        },
      };
    }
    const ctx = { pile: o.pile, actor, counters, ...(peer ? { peer } : {}) };
    const out = await executeCommand(ctx, r.data.cmd, r.data.args);
    return out.ok
      ? { id: r.data.id, ok: true, result: out.result }
      : { id: r.data.id, ok: false, error: out.error };
  };

  const server: Server = createServer((sock) => {
    sock.on("error", () => {});
    if (sockets.size >= limits.maxConnections) {
      // Every descriptor held by an idle client is one the daemon cannot use: refuse at once.
      counts.refusedConnection++;
      sock.end(line({ id: null, ok: false, error: { code: "BUSY", message: "too many connections" } }));
      setTimeout(() => sock.destroy(), 1000).unref();
      return;
    }
    sockets.add(sock);
    sock.on("close", () => sockets.delete(sock));
    const peer = peerOf(sock);
    sock.setTimeout(limits.idleTimeoutMs, () => {
      counts.idleClosed++;
      sock.destroy();
    });
    let buf = "";
    const pending: Array<string | null> = []; // null: an overlong request
    let pumping = false;
    // Token bucket: `burst` requests at once, then `perSecond`.
    let tokens = limits.burst;
    let filledAt = monotonic();
    const take = (): boolean => {
      const now = monotonic();
      tokens = Math.min(limits.burst, tokens + ((now - filledAt) * limits.perSecond) / 1000);
      filledAt = now;
      if (tokens < 1) return false;
      tokens--;
      return true;
    };
    const send = (reply: ControlReply): void => {
      if (sock.destroyed) return;
      sock.write(line(reply));
      if (sock.writableLength > limits.maxBufferedBytes) {
        // Replies this client does not read: it is dropped rather than held in memory.
        counts.slowReader++;
        sock.destroy();
      }
    };
    const drained = (): Promise<void> =>
      new Promise((resolve) => {
        const done = (): void => {
          sock.off("drain", done);
          sock.off("close", done);
          resolve();
        };
        sock.on("drain", done);
        sock.on("close", done);
      });
    const pump = async (): Promise<void> => {
      if (pumping) return;
      pumping = true;
      while (pending.length > 0 && !sock.destroyed) {
        // Replies not yet taken by the client: read nothing more from it until they are.
        if (sock.writableLength >= limits.highWaterBytes) {
          sock.pause();
          await drained();
          continue;
        }
        const req = pending.shift()!;
        if (req === null) {
          send({
            id: null,
            ok: false,
            error: { code: "TOO_LONG", message: `request over ${MAX_REQUEST_BYTES} bytes` },
          });
          sock.end();
          pending.length = 0;
          break;
        }
        if (!take()) {
          counts.rateLimited++;
          send({
            id: null,
            ok: false,
            error: { code: "RATE_LIMITED", message: "too many requests; slow down" },
          });
          continue;
        }
        try {
          send(await handleLine(req, peer));
        } catch (e) {
          // A request whose handling throws is answered INTERNAL and counted, never more.
          failed(e, "request");
          try {
            send({
              id: requestId(req),
              ok: false,
              error: { code: "INTERNAL", message: "the request could not be answered" },
            });
          } catch {
            sock.destroy();
          }
        }
      }
      pumping = false;
      if (!sock.destroyed && pending.length < limits.maxPendingLines) sock.resume();
    };
    sock.setEncoding("utf8");
    sock.on("data", (chunk: string) => {
      buf += chunk;
      let nl = buf.indexOf("\n");
      while (nl >= 0) {
        const l = buf.slice(0, nl).replace(/\r$/, "");
        buf = buf.slice(nl + 1);
        if (l.trim().length > 0) pending.push(l);
        nl = buf.indexOf("\n");
      }
      if (Buffer.byteLength(buf) > MAX_REQUEST_BYTES) {
        counts.overlong++;
        buf = "";
        pending.push(null);
      }
      if (pending.length >= limits.maxPendingLines) sock.pause();
      void pump();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", (e) =>
      reject(
        new ControlSocketError("LISTEN", `${o.path}: ${(e as NodeJS.ErrnoException).code ?? e.message}`),
      ),
    );
    server.listen(o.path, () => resolve());
  });
  try {
    await chmod(o.path, o.mode);
    if (gid !== undefined) await chown(o.path, -1, gid);
  } catch (e) {
    server.close();
    await unlink(o.path).catch(() => {});
    throw new ControlSocketError(
      "LISTEN",
      `${o.path}: cannot set mode/group (${(e as NodeJS.ErrnoException).code ?? "error"})`,
    );
  }
  // Errors of the listening socket after start (accept failing, EMFILE, …) are counted, not thrown.
  server.on("error", (e) => failed(e, "listen"));
  o.log?.info({ path: o.path, mode: o.mode.toString(8), group: o.group }, "control socket listening");

  return {
    path: o.path,
    counters,
    connections: () => {
      let buffered = 0;
      for (const c of sockets) buffered += c.writableLength;
      return { open: sockets.size, buffered };
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        // net.Server removes its socket file on close.
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// Client (pilectl)

export type ClientErrorCode = "CONNECT" | "PROTOCOL" | "TIMEOUT";

export class ControlClientError extends Error {
  override readonly name = "ControlClientError";
  constructor(
    readonly code: ClientErrorCode,
    message: string,
    readonly errno?: string,
  ) {
    super(message);
  }
}

/** Sends one request and waits for its reply. Never throws. */
export function requestControl(
  path: string,
  cmd: string,
  args: string[],
  timeoutMs = 60_000,
): Promise<Result<ControlReply, ControlClientError>> {
  return new Promise((resolve) => {
    const id = 1;
    let buf = "";
    let done = false;
    const finish = (r: Result<ControlReply, ControlClientError>): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const sock = createConnection(path);
    const timer = setTimeout(
      () => finish(err(new ControlClientError("TIMEOUT", `no answer on ${path} within ${timeoutMs} ms`))),
      timeoutMs,
    );
    sock.setEncoding("utf8");
    sock.on("connect", () => sock.write(`${JSON.stringify({ id, cmd, args })}\n`));
    sock.on("error", (e: NodeJS.ErrnoException) =>
      finish(
        err(new ControlClientError("CONNECT", `cannot connect to ${path}: ${e.code ?? e.message}`, e.code)),
      ),
    );
    sock.on("data", (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf("\n");
      if (nl < 0) return;
      let reply: unknown;
      try {
        reply = JSON.parse(buf.slice(0, nl));
      } catch {
        return finish(err(new ControlClientError("PROTOCOL", `${path}: answer is not JSON`)));
      }
      const r = reply as Partial<ControlReply> | null;
      if (r === null || typeof r !== "object" || typeof r.ok !== "boolean")
        return finish(err(new ControlClientError("PROTOCOL", `${path}: answer has no ok field`)));
      finish(ok(r as ControlReply));
    });
    sock.on("close", () =>
      finish(err(new ControlClientError("PROTOCOL", `${path}: closed without an answer`))),
    );
  });
}
