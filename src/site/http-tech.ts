/**
 * The technician's requests on the dashboard: login, logout and the commands. Every refusal is
 * typed, counted (http.<kind>) and, for anything that could have moved the pile, audited.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";
import type { TechAuth } from "./auth.js";
import type { SiteCounters } from "./counters.js";
import { cookie, readJson, refuse, sendJson } from "./http-body.js";
import type { SitePilePort, TechResult } from "./port.js";

export const COOKIE = "piled_sid";
const ACTOR = "dashboard";

const loginBody = z.strictObject({ secret: z.string().min(1).max(256) });
const commandBody = z.discriminatedUnion("command", [
  z.strictObject({ command: z.literal("stop") }),
  z.strictObject({ command: z.literal("relay-test") }),
  z.strictObject({ command: z.literal("clear-fault"), code: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/) }),
  z.strictObject({ command: z.literal("availability"), available: z.boolean() }),
]);
type Command = z.infer<typeof commandBody>;

export interface TechDeps {
  port: SitePilePort;
  auth: TechAuth;
  counters: SiteCounters;
  maxBodyBytes: number;
  secure: boolean;
}

/** A same-origin request: an Origin header (browsers send it on POST) must name this server. */
function sameOrigin(req: IncomingMessage, d: TechDeps): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  const host = req.headers.host;
  const scheme = d.secure ? "https" : "http";
  return host !== undefined && origin === `${scheme}://${host}`;
}

export async function handleLogin(req: IncomingMessage, res: ServerResponse, d: TechDeps): Promise<void> {
  if (!sameOrigin(req, d)) {
    d.counters.inc("http.badOrigin");
    return refuse(res, 403, "BAD_ORIGIN", "the request does not come from this dashboard");
  }
  const body = await readJson(req, d.maxBodyBytes);
  if (!body.ok) {
    d.counters.inc(`http.${body.code === "TOO_LARGE" ? "tooLarge" : "badBody"}`);
    return refuse(res, body.status, body.code, body.message);
  }
  const p = loginBody.safeParse(body.value);
  if (!p.success) {
    d.counters.inc("http.badBody");
    return refuse(res, 400, "USAGE", 'give {"secret": "…"}');
  }
  const r = await d.auth.login(p.data.secret);
  if (!r.ok) {
    d.counters.inc(
      r.code === "BAD_LOGIN" ? "http.badLogin" : r.code === "BUSY" ? "http.loginBusy" : "http.lockedOut",
    );
    if (r.lockedOutNow) {
      d.counters.inc("http.lockout");
      d.port.audit({ actor: ACTOR, action: "lockout", outcome: "LOCKED_OUT", detail: r.message });
    } else if (r.code === "BAD_LOGIN") d.port.audit({ actor: ACTOR, action: "login", outcome: "BAD_LOGIN" });
    return refuse(res, r.code === "BUSY" ? 429 : 401, r.code, r.message);
  }
  d.port.audit({ actor: ACTOR, action: "login", outcome: "ok" });
  const attrs = `Path=/; HttpOnly; SameSite=Strict; Max-Age=${Math.floor((r.expiresAt - Date.now()) / 1000)}`;
  sendJson(
    res,
    200,
    { ok: true, csrf: r.csrf },
    { "set-cookie": `${COOKIE}=${r.token}; ${attrs}${d.secure ? "; Secure" : ""}` },
  );
}

export function handleLogout(req: IncomingMessage, res: ServerResponse, d: TechDeps): void {
  const token = cookie(req, COOKIE);
  if (d.auth.checkCsrf(token, headerOf(req, "x-csrf-token"))) {
    d.auth.logout(token);
    d.port.audit({ actor: ACTOR, action: "logout", outcome: "ok" });
  }
  req.resume();
  sendJson(
    res,
    200,
    { ok: true },
    { "set-cookie": `${COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0` },
  );
}

const headerOf = (req: IncomingMessage, name: string): string | undefined => {
  const v = req.headers[name];
  return typeof v === "string" ? v : undefined;
};

function run(port: SitePilePort, c: Command): Promise<TechResult> {
  switch (c.command) {
    case "stop":
      return port.stop(ACTOR);
    case "relay-test":
      return port.relayTest(ACTOR);
    case "clear-fault":
      return port.clearFault(c.code, ACTOR);
    case "availability":
      return port.setAvailability(c.available, ACTOR);
  }
}

export async function handleCommand(req: IncomingMessage, res: ServerResponse, d: TechDeps): Promise<void> {
  const token = cookie(req, COOKIE);
  if (d.auth.session(token) === undefined) {
    d.counters.inc("http.noLogin");
    d.port.audit({ actor: ACTOR, action: "command", outcome: "LOGIN" });
    return refuse(res, 401, "LOGIN", "log in as the technician first");
  }
  if (!sameOrigin(req, d) || !d.auth.checkCsrf(token, headerOf(req, "x-csrf-token"))) {
    d.counters.inc("http.badCsrf");
    d.port.audit({ actor: ACTOR, action: "command", outcome: "BAD_CSRF" });
    return refuse(res, 403, "BAD_CSRF", "the request's CSRF token is missing or wrong");
  }
  const body = await readJson(req, d.maxBodyBytes);
  if (!body.ok) {
    d.counters.inc(`http.${body.code === "TOO_LARGE" ? "tooLarge" : "badBody"}`);
    return refuse(res, body.status, body.code, body.message);
  }
  const p = commandBody.safeParse(body.value);
  if (!p.success) {
    d.counters.inc("http.badCommand");
    d.port.audit({ actor: ACTOR, action: "command", outcome: "USAGE" });
    return refuse(
      res,
      400,
      "USAGE",
      "commands: stop, relay-test, clear-fault {code}, availability {available}",
    );
  }
  let r: TechResult;
  try {
    r = await run(d.port, p.data);
  } catch {
    r = { ok: false, code: "INTERNAL", message: "the pile could not do it" };
  }
  sendJson(res, r.ok ? 200 : 409, r);
}
