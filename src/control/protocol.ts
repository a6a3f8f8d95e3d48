/**
 * The control socket's wire format: a Unix stream socket speaking JSON lines.
 *   request  {"id": 1, "cmd": "status", "args": []}
 *   reply    {"id": 1, "ok": true, "result": …}  |  {"id": 1, "ok": false, "error": {"code", "message"}}
 */
import { z } from "zod";

/** Longest request line; a longer one gets an error and the connection is closed. */
export const MAX_REQUEST_BYTES = 65_536;

export const requestSchema = z.strictObject({
  id: z.union([z.string().max(64), z.int().min(0).max(Number.MAX_SAFE_INTEGER)]),
  cmd: z.string().min(1).max(32),
  args: z.array(z.string().max(256)).max(16).default([]),
});
export type ControlRequest = z.input<typeof requestSchema>;

export type ControlReply =
  | { id: string | number | null; ok: true; result: unknown }
  | { id: string | number | null; ok: false; error: { code: string; message: string } };
