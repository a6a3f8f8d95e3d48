/**
 * Failed-proof policy of PROTOCOL.md §3, fixed by the protocol: a connection that has sent
 * `perConnection` failed proofs is answered RATE_LIMITED to every further HELLO until it
 * disconnects; there is no global lockout (a lockout shared by all carriers would let anyone in
 * radio range stop the pile for everyone). Failed proofs are counted globally all the same: more
 * than `securityEventFailures` within `securityEventWindowMs` raise a security event. A
 * connection with no session of its own and no exchange in progress is dropped after `idleDropMs`.
 * Pure: the caller passes monotonic ms.
 */
export interface ProofPolicy {
  perConnection: number;
  securityEventFailures: number;
  securityEventWindowMs: number;
  idleDropMs: number;
}

export const protocolProofPolicy: ProofPolicy = {
  perConnection: 3,
  securityEventFailures: 20,
  securityEventWindowMs: 60_000,
  idleDropMs: 30_000,
};

export interface ProofWatchSnapshot {
  /** Failed proofs, all connections, within the window ending now. */
  recentFailures: number;
  /** The window holds more than the threshold (a security event is under way). */
  alarm: boolean;
}

/**
 * Global count of failed proofs over a sliding window. `failure` returns true when that failure
 * raises a security event: the first one past the threshold; no other is raised until the window
 * has fallen back to the threshold.
 */
export class ProofFailureWatch {
  #recent: number[] = [];
  #alarm = false;

  constructor(private readonly policy: ProofPolicy = protocolProofPolicy) {}

  failure(mono: number): boolean {
    this.#prune(mono);
    this.#recent.push(mono);
    if (this.#recent.length <= this.policy.securityEventFailures || this.#alarm) return false;
    this.#alarm = true;
    return true;
  }

  /** Failed proofs within the window ending at `mono`. */
  recent(mono: number): number {
    this.#prune(mono);
    return this.#recent.length;
  }

  snapshot(mono: number): ProofWatchSnapshot {
    return { recentFailures: this.recent(mono), alarm: this.#alarm };
  }

  #prune(mono: number): void {
    const w = this.policy.securityEventWindowMs;
    this.#recent = this.#recent.filter((t) => mono - t < w);
    if (this.#recent.length <= this.policy.securityEventFailures) this.#alarm = false;
  }
}
