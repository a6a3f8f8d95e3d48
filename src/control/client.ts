/** The control socket's client (pilectl, tests): one request, one reply. */
import { createConnection } from "node:net";
import { err, ok, type Result } from "../protocol/bytes.js";
import type { ControlReply } from "./protocol.js";

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
