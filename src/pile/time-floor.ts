/**
 * The pile's estimate of true time (PROTOCOL.md §2): the board clock, never below the durable
 * floor (the newest issuedAt ever accepted). A pile without a real-time clock still rejects codes
 * older than the newest one it accepted, minus their window.
 */
export class TimeFloor {
  #floor: bigint;

  constructor(floor: bigint) {
    this.#floor = floor > 0n ? floor : 0n;
  }

  get floor(): bigint {
    return this.#floor;
  }

  /** max(wall, floor); a missing or non-finite wall clock counts as the floor. */
  now(wall: number | undefined): bigint {
    if (wall === undefined || !Number.isFinite(wall) || wall < 0) return this.#floor;
    const w = BigInt(Math.floor(wall));
    return w > this.#floor ? w : this.#floor;
  }

  /** Raises the floor (never lowers it). */
  raise(issuedAt: bigint): void {
    if (issuedAt > this.#floor) this.#floor = issuedAt;
  }
}
