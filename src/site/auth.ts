/**
 * The dashboard's technician login: the secret checked by the port (the console's scrypt
 * verifier), the console's lockout policy (after N failures in a row, locked out; each further
 * lockout doubles, up to a day), session tokens for an HttpOnly SameSite=Strict cookie and a
 * CSRF token per session that every action must carry in a header.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";

export interface AuthOptions {
  lockoutAfter: number;
  lockoutMs: number;
  maxLockoutMs?: number;
  sessionTtlMs: number;
  verify(secret: string): Promise<boolean>;
  now?: () => number;
}

export type LoginResult =
  | { ok: true; token: string; csrf: string; expiresAt: number }
  | { ok: false; code: "BAD_LOGIN" | "LOCKED_OUT" | "BUSY"; message: string; lockedForMs?: number };

interface TechSession {
  csrf: string;
  expiresAt: number;
}

const MAX_SESSIONS = 8;

const sameText = (a: string, b: string): boolean => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

export class TechAuth {
  private failures = 0;
  private lockouts = 0;
  private lockedUntil = 0;
  private verifying = false;
  private readonly sessions = new Map<string, TechSession>();
  private readonly now: () => number;

  constructor(private readonly o: AuthOptions) {
    this.now = o.now ?? Date.now;
  }

  /** Remaining lockout, ms (0 = none). */
  lockedForMs(): number {
    return Math.max(0, this.lockedUntil - this.now());
  }

  async login(secret: string): Promise<LoginResult & { lockedOutNow?: boolean }> {
    const locked = this.lockedForMs();
    if (locked > 0)
      return {
        ok: false,
        code: "LOCKED_OUT",
        message: `locked out; try again in ${Math.ceil(locked / 1000)} s`,
        lockedForMs: locked,
      };
    // One check at a time: a flood of logins cannot run many scrypt derivations at once.
    if (this.verifying) return { ok: false, code: "BUSY", message: "another login is being checked" };
    this.verifying = true;
    let good = false;
    try {
      good = await this.o.verify(secret).catch(() => false);
    } finally {
      this.verifying = false;
    }
    if (!good) return this.failed();
    this.failures = 0;
    this.lockouts = 0;
    this.expire();
    while (this.sessions.size >= MAX_SESSIONS) {
      const oldest = this.sessions.keys().next().value;
      if (oldest === undefined) break;
      this.sessions.delete(oldest);
    }
    const token = randomBytes(32).toString("base64url");
    const csrf = randomBytes(32).toString("base64url");
    const expiresAt = this.now() + this.o.sessionTtlMs;
    this.sessions.set(token, { csrf, expiresAt });
    return { ok: true, token, csrf, expiresAt };
  }

  private failed(): LoginResult & { lockedOutNow?: boolean } {
    this.failures++;
    if (this.failures < this.o.lockoutAfter)
      return { ok: false, code: "BAD_LOGIN", message: "login incorrect" };
    const ms = Math.min(this.o.lockoutMs * 2 ** this.lockouts, this.o.maxLockoutMs ?? 86_400_000);
    this.lockouts++;
    this.failures = 0;
    this.lockedUntil = this.now() + ms;
    return {
      ok: false,
      code: "LOCKED_OUT",
      message: `login incorrect; locked out for ${Math.ceil(ms / 1000)} s`,
      lockedForMs: ms,
      lockedOutNow: true,
    };
  }

  /** The session of a cookie token, if it is live. */
  session(token: string | undefined): TechSession | undefined {
    if (token === undefined) return undefined;
    const s = this.sessions.get(token);
    if (!s) return undefined;
    if (s.expiresAt <= this.now()) {
      this.sessions.delete(token);
      return undefined;
    }
    return s;
  }

  /** Whether `csrf` is the token of the session behind `token`. */
  checkCsrf(token: string | undefined, csrf: string | undefined): boolean {
    const s = this.session(token);
    return s !== undefined && csrf !== undefined && sameText(s.csrf, csrf);
  }

  logout(token: string | undefined): void {
    if (token !== undefined) this.sessions.delete(token);
  }

  private expire(): void {
    const now = this.now();
    for (const [k, s] of this.sessions) if (s.expiresAt <= now) this.sessions.delete(k);
  }
}
