/**
 * Global limiter of failed proofs (PROTOCOL.md §3): `failures` failed proofs within `windowMs`
 * block every HELLO for `blockMs`, doubling on each repeat up to `maxBlockMs`; after `resetMs`
 * without a failure the next block is `blockMs` again. Pure: the caller passes monotonic ms.
 * Own code rather than a rate-limit package: those keep their own timers and clocks, while the
 * core must stay pure over injected time, and this exact policy (global, doubling, quiet-hour
 * reset, HELLO-only) is the protocol's.
 */
export interface RateLimitConfig {
  failures: number;
  windowMs: number;
  blockMs: number;
  maxBlockMs: number;
  resetMs: number;
}

export const protocolRateLimit: RateLimitConfig = {
  failures: 5,
  windowMs: 60_000,
  blockMs: 30_000,
  maxBlockMs: 3_600_000,
  resetMs: 3_600_000,
};

export interface RateLimitSnapshot {
  blocked: boolean;
  blockedUntil: number | undefined;
  /** Blocks so far in the current series (0 = the next block is blockMs long). */
  level: number;
  recentFailures: number;
}

export class RateLimiter {
  #recent: number[] = [];
  #blockedUntil: number | undefined;
  #level = 0;
  #lastFailure: number | undefined;

  constructor(private readonly cfg: RateLimitConfig = protocolRateLimit) {}

  /** Counts one failed proof; returns the block length when this failure starts a block. */
  failure(mono: number): number | undefined {
    this.#decay(mono);
    this.#lastFailure = mono;
    this.#recent = this.#recent.filter((t) => mono - t < this.cfg.windowMs);
    this.#recent.push(mono);
    if (this.#recent.length < this.cfg.failures) return undefined;
    this.#recent = [];
    const length = Math.min(this.cfg.blockMs * 2 ** this.#level, this.cfg.maxBlockMs);
    this.#level = Math.min(this.#level + 1, 32);
    this.#blockedUntil = Math.max(this.#blockedUntil ?? 0, mono + length);
    return length;
  }

  /** Is a HELLO at `mono` refused? */
  blocked(mono: number): boolean {
    return this.#blockedUntil !== undefined && mono < this.#blockedUntil;
  }

  snapshot(mono: number): RateLimitSnapshot {
    const blocked = this.blocked(mono);
    const quiet = this.#lastFailure === undefined || mono - this.#lastFailure >= this.cfg.resetMs;
    return {
      blocked,
      blockedUntil: blocked ? this.#blockedUntil : undefined,
      level: quiet && !blocked ? 0 : this.#level,
      recentFailures: this.#recent.filter((t) => mono - t < this.cfg.windowMs).length,
    };
  }

  #decay(mono: number): void {
    if (this.#lastFailure !== undefined && mono - this.#lastFailure >= this.cfg.resetMs) this.#level = 0;
  }
}
