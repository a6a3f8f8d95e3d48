/**
 * One connection of the control socket: lines in, requests parsed (src/control/protocol.ts) and
 * run through the command table, replies out, with its rate limit, read-ahead bound and the
 * back-pressure of a client that does not read.
 */
import type { Socket } from "node:net";
import {
  type ControlReply,
  executeCommand,
  MAX_REQUEST_BYTES,
  type PileControl,
  requestSchema,
} from "../control/index.js";
import type { ControlLimits } from "./control-socket.js";

export interface ControlCounts {
  badRequest: number;
  overlong: number;
  rateLimited: number;
  refusedConnection: number;
  idleClosed: number;
  slowReader: number;
  errors: number;
  noPeerCred: number;
}

type Peer = { uid: number; pid: number } | undefined;

/** What every connection shares of the server. */
export interface ConnectionDeps {
  readonly pile: PileControl;
  readonly actor: string;
  readonly limits: ControlLimits;
  readonly monotonic: () => number;
  readonly counts: ControlCounts;
  readonly counters: () => Record<string, number>;
  readonly failed: (e: unknown, where: string) => void;
  readonly sockets: Set<Socket>;
  /** Who is at the other end (SO_PEERCRED), for the audit; undefined when it cannot be read. */
  readonly peerOf: (sock: Socket) => Peer;
}

const line = (reply: ControlReply): string => `${JSON.stringify(reply)}\n`;

/** The id of a request line, for a reply that cannot carry its answer (null when unreadable). */
function requestId(req: string): ControlReply["id"] {
  try {
    const id = (JSON.parse(req) as { id?: unknown }).id;
    return typeof id === "string" || typeof id === "number" ? id : null;
  } catch {
    return null;
  }
}

async function handleLine(d: ConnectionDeps, line: string, peer: Peer): Promise<ControlReply> {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    d.counts.badRequest++;
    return { id: null, ok: false, error: { code: "BAD_REQUEST", message: "not a JSON line" } };
  }
  const r = requestSchema.safeParse(value);
  if (!r.success) {
    d.counts.badRequest++;
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
  const out = await executeCommand(
    { pile: d.pile, actor: d.actor, counters: d.counters, ...(peer ? { peer } : {}) },
    r.data.cmd,
    r.data.args,
  );
  return out.ok
    ? { id: r.data.id, ok: true, result: out.result }
    : { id: r.data.id, ok: false, error: out.error };
}

/** Token bucket: `burst` requests at once, then `perSecond`. */
function bucket(limits: ControlLimits, monotonic: () => number): () => boolean {
  let tokens = limits.burst;
  let filledAt = monotonic();
  return () => {
    const now = monotonic();
    tokens = Math.min(limits.burst, tokens + ((now - filledAt) * limits.perSecond) / 1000);
    filledAt = now;
    if (tokens < 1) return false;
    tokens--;
    return true;
  };
}

function drained(sock: Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      sock.off("drain", done);
      sock.off("close", done);
      resolve();
    };
    sock.on("drain", done);
    sock.on("close", done);
  });
}

/** Answers the connection's pending requests in order, one at a time. */
function pumper(
  d: ConnectionDeps,
  sock: Socket,
  pending: Array<string | null>,
  peer: Peer,
): () => Promise<void> {
  const { limits, counts } = d;
  const take = bucket(limits, d.monotonic);
  let pumping = false;
  const send = (reply: ControlReply): void => {
    if (sock.destroyed) return;
    sock.write(line(reply));
    if (sock.writableLength > limits.maxBufferedBytes) {
      // Replies this client does not read: it is dropped rather than held in memory.
      counts.slowReader++;
      sock.destroy();
    }
  };
  const answer = async (req: string): Promise<void> => {
    try {
      send(await handleLine(d, req, peer));
    } catch (e) {
      // A request whose handling throws is answered INTERNAL and counted, never more.
      d.failed(e, "request");
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
  };
  return async (): Promise<void> => {
    if (pumping) return;
    pumping = true;
    while (pending.length > 0 && !sock.destroyed) {
      // Replies not yet taken by the client: read nothing more from it until they are.
      if (sock.writableLength >= limits.highWaterBytes) {
        sock.pause();
        await drained(sock);
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
      await answer(req);
    }
    pumping = false;
    if (!sock.destroyed && pending.length < limits.maxPendingLines) sock.resume();
  };
}

/** Serves one accepted connection (or refuses it BUSY when the server holds its maximum). */
export function serveConnection(d: ConnectionDeps, sock: Socket): void {
  const { limits, counts, sockets } = d;
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
  sock.setTimeout(limits.idleTimeoutMs, () => {
    counts.idleClosed++;
    sock.destroy();
  });
  let buf = "";
  const pending: Array<string | null> = []; // null: an overlong request
  const pump = pumper(d, sock, pending, d.peerOf(sock));
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
}
