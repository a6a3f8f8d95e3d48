/**
 * The control socket: a Unix stream socket speaking JSON lines, for pilectl.
 *   request  {"id": 1, "cmd": "status", "args": []}
 *   reply    {"id": 1, "ok": true, "result": …}  |  {"id": 1, "ok": false, "error": {"code", "message"}}
 * The wire format is src/control/protocol.ts; commands are the console's (src/control/: one table,
 * one audit trail). The socket is made
 * with the configured mode and group; a stale socket file is replaced only when nothing listens.
 */
import { readFileSync } from "node:fs";
import { chmod, chown, lstat, unlink } from "node:fs/promises";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import type { Logger } from "pino";
import type { PileControl } from "../control/index.js";
import { type ConnectionDeps, type ControlCounts, serveConnection } from "./control-conn.js";
import { peerCred } from "./peercred.js";

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

function countersOf(counts: ControlCounts): () => Record<string, number> {
  return () => ({
    "control.badRequest": counts.badRequest,
    "control.overlong": counts.overlong,
    "control.rateLimited": counts.rateLimited,
    "control.refusedConnection": counts.refusedConnection,
    "control.idleClosed": counts.idleClosed,
    "control.slowReader": counts.slowReader,
    "control.errors": counts.errors,
    "control.noPeerCred": counts.noPeerCred,
  });
}

/** Listens on the socket and gives it its mode and group; a socket that cannot have them is removed. */
async function listen(server: Server, o: ControlSocketOptions, gid: number | undefined): Promise<void> {
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
}

export async function startControlSocket(o: ControlSocketOptions): Promise<ControlSocketServer> {
  const gid = o.group === undefined ? undefined : groupId(o.group);
  if (o.group !== undefined && gid === undefined)
    throw new ControlSocketError("NO_GROUP", `no group '${o.group}'`);
  if ((o.mode & 0o002) !== 0)
    throw new ControlSocketError("MODE", `mode ${o.mode.toString(8)} lets any local user control the pile`);
  await clearStale(o.path);

  const counts: ControlCounts = {
    badRequest: 0,
    overlong: 0,
    rateLimited: 0,
    refusedConnection: 0,
    idleClosed: 0,
    slowReader: 0,
    errors: 0,
    noPeerCred: 0,
  };
  const counters = countersOf(counts);
  // A request whose handling throws (a reply that cannot be serialised, a socket gone wrong) is
  // answered INTERNAL where possible and counted; it never reaches the process (that would end
  // a charging session). Logged the first time only.
  const failed = (e: unknown, where: string): void => {
    counts.errors++;
    if (counts.errors === 1)
      o.log?.error({ err: e instanceof Error ? e.message : String(e), where }, "control request failed");
  };
  const sockets = new Set<Socket>();
  const deps: ConnectionDeps = {
    pile: o.pile,
    actor: o.actor ?? "pilectl",
    limits: { ...CONTROL_LIMITS, ...o.limits },
    monotonic: o.monotonic ?? (() => performance.now()),
    counts,
    counters,
    failed,
    sockets,
    peerOf: (sock) => {
      const c = peerCred(sock);
      if (!(c instanceof Error)) return { uid: c.uid, pid: c.pid };
      counts.noPeerCred++;
      if (counts.noPeerCred === 1) o.log?.warn({ err: c.message }, "control socket: peer uid unknown");
      return undefined;
    },
  };
  const server: Server = createServer((sock) => serveConnection(deps, sock));
  await listen(server, o, gid);
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
