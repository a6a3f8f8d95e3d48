/** Small helpers of the dashboard server: bounded JSON bodies, cookies, replies. */
import type { IncomingMessage, ServerResponse } from "node:http";

export type BodyResult =
  | { ok: true; value: unknown }
  | { ok: false; status: number; code: string; message: string };

/** Reads a JSON body of at most `max` bytes; refuses a larger one without reading it all. */
export function readJson(req: IncomingMessage, max: number): Promise<BodyResult> {
  return new Promise((resolve) => {
    const type = String(req.headers["content-type"] ?? "");
    if (!/^application\/json(;|$)/i.test(type)) {
      resolve({ ok: false, status: 415, code: "BAD_TYPE", message: "the body must be application/json" });
      req.resume();
      return;
    }
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > max) {
      resolve({ ok: false, status: 413, code: "TOO_LARGE", message: `the body is larger than ${max} bytes` });
      return;
    }
    const chunks: Buffer[] = [];
    let n = 0;
    let done = false;
    req.on("data", (c: Buffer) => {
      if (done) return;
      n += c.length;
      if (n > max) {
        done = true;
        resolve({
          ok: false,
          status: 413,
          code: "TOO_LARGE",
          message: `the body is larger than ${max} bytes`,
        });
        return;
      }
      chunks.push(c);
    });
    req.on("error", () => {
      if (!done) resolve({ ok: false, status: 400, code: "BAD_BODY", message: "the body could not be read" });
      done = true;
    });
    req.on("end", () => {
      if (done) return;
      done = true;
      try {
        resolve({ ok: true, value: JSON.parse(Buffer.concat(chunks).toString("utf8")) });
      } catch {
        resolve({ ok: false, status: 400, code: "BAD_JSON", message: "the body is not JSON" });
      }
    });
  });
}

export function cookie(req: IncomingMessage, name: string): string | undefined {
  const h = req.headers.cookie;
  if (typeof h !== "string") return undefined;
  for (const part of h.split(";")) {
    const i = part.indexOf("=");
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

export const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy":
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
};

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  extra: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    ...extra,
  });
  res.end(text);
}

export function refuse(res: ServerResponse, status: number, code: string, message: string): void {
  // A refusal may leave an unread body behind: close after it rather than reading it.
  sendJson(res, status, { ok: false, code, message }, { connection: "close" });
}
