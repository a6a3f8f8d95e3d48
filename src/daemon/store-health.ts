/**
 * The store's health as the control loop sees it. A durable record that cannot be written (a
 * full or failing disk) is a fault of the store: it is held here, in order, and the pile takes
 * no new code until every held record is written again (retried by the runtime). The free space
 * of the state directory is measured too: below `minFreeBytes` the pile goes UNAVAILABLE before
 * a write would fail. Both reasons reach the core (its `store` input), `status` and the log.
 */
import { statfsSync } from "node:fs";
import type { Logger } from "pino";
import { type AuditEntry, StoreError, type StoreOp } from "../store/index.js";

/** Store failures a later attempt may get past (disk full, I/O error, a lock, a read-only remount). */
const RETRYABLE: ReadonlySet<string> = new Set(["IO", "LOCKED", "READONLY"]);

/** Held audit rows beyond this are dropped (counted): session and fault records are always held. */
const MAX_HELD_AUDIT = 100;

export interface StoreHealthView {
  /** Bytes an unprivileged writer may still use on the state directory; null = not measured. */
  freeBytes: number | null;
  /** Below this the pile is UNAVAILABLE ("disk low"). 0 = no threshold. */
  minFreeBytes: number;
  /** Why the store is faulted (a record could not be written), or null. */
  fault: string | null;
  /** Unix ms when the fault was raised, or null. */
  faultSince: number | null;
  /** Records held in memory, waiting to be written. */
  pending: number;
}

export interface StoreHealthOptions {
  log: Logger;
  now: () => number;
  /** The state directory (measured with statfs); undefined = not measured. */
  stateDir: string | undefined;
  minFreeBytes: number;
}

const kib = (n: number): string => `${Math.floor(n / 1024)} KiB`;

export function isRetryable(e: unknown): boolean {
  return !(e instanceof StoreError) || RETRYABLE.has(e.code);
}

export class StoreHealth {
  readonly #o: StoreHealthOptions;
  readonly #held: StoreOp[] = [];
  #fault: { reason: string; since: number } | undefined;
  #free: number | undefined;
  #measureFailed = false;
  droppedAudit = 0;

  constructor(o: StoreHealthOptions) {
    this.#o = o;
  }

  /** Measures the free space of the state directory (statfs); returns the problems now. */
  measure(): string[] {
    const dir = this.#o.stateDir;
    if (dir !== undefined) {
      try {
        const s = statfsSync(dir);
        this.#free = Number(s.bavail) * Number(s.bsize);
        this.#measureFailed = false;
      } catch (e) {
        this.#free = undefined;
        if (!this.#measureFailed)
          this.#o.log.warn(
            { dir, err: e instanceof Error ? e.message : String(e) },
            "cannot measure free space",
          );
        this.#measureFailed = true;
      }
    }
    return this.problems();
  }

  /** The reasons the pile cannot take a new session because of its store; [] when healthy. */
  problems(): string[] {
    const out: string[] = [];
    if (this.#fault) out.push(this.#fault.reason);
    if (this.diskLow())
      out.push(`disk low: ${kib(this.#free ?? 0)} free (below ${kib(this.#o.minFreeBytes)})`);
    return out;
  }

  diskLow(): boolean {
    return this.#o.minFreeBytes > 0 && this.#free !== undefined && this.#free < this.#o.minFreeBytes;
  }

  /** Records are held: a later record must wait behind them, in order. */
  holding(): boolean {
    return this.#held.length > 0;
  }

  /** A record could not be written: it is held and the store is faulted. */
  failed(o: StoreOp, e: unknown): void {
    this.hold(o);
    this.raise(`store fault: ${o.op} not written (${errText(e)})`);
  }

  /** Holds a record behind those already held (order is kept; audit rows up to a cap). */
  hold(o: StoreOp): void {
    if (o.op === "audit.append" && this.#held.filter((h) => h.op === "audit.append").length >= MAX_HELD_AUDIT)
      this.droppedAudit++;
    else this.#held.push(o);
  }

  /**
   * A code's record (with its session's start) could not be written: the code is refused, the
   * store faulted, and an audit row of the fault is held (written once the store works again).
   */
  recordFailed(e: unknown): void {
    const reason = `store fault: session record not written (${errText(e)})`;
    const entry: AuditEntry = {
      at: this.#o.now(),
      actor: "daemon",
      action: "store",
      outcome: "fault",
      detail: reason,
    };
    this.#held.push({ op: "audit.append", entry });
    this.raise(reason);
  }

  raise(reason: string): void {
    if (this.#fault) return;
    this.#fault = { reason, since: this.#o.now() };
    this.#o.log.error({ reason }, "store fault: new codes are refused until the held records are written");
  }

  /**
   * Writes the held records, in order, with `apply` (throws as the store does). Stops at the first
   * that fails again; a record the store refuses for good (not retryable) is logged and dropped.
   * Clears the fault once nothing is held. Returns whether it changed the problems.
   */
  retry(apply: (o: StoreOp) => void): boolean {
    if (!this.#fault && this.#held.length === 0) return false;
    let written = 0;
    while (this.#held.length > 0) {
      const o = this.#held[0]!;
      try {
        apply(o);
        written++;
      } catch (e) {
        if (isRetryable(e)) return false;
        this.#o.log.error({ op: o.op, err: errText(e) }, "held record refused by the store: dropped");
      }
      this.#held.shift();
    }
    const was = this.#fault;
    this.#fault = undefined;
    if (was)
      this.#o.log.info(
        { written, faultSince: was?.since, droppedAudit: this.droppedAudit },
        "store recovered: held records written, new codes taken again",
      );
    return true;
  }

  /** Records still held (a stop: they are lost; an open session is closed as interrupted at the next start). */
  held(): readonly StoreOp[] {
    return this.#held;
  }

  view(): StoreHealthView {
    return {
      freeBytes: this.#free ?? null,
      minFreeBytes: this.#o.minFreeBytes,
      fault: this.#fault?.reason ?? null,
      faultSince: this.#fault?.since ?? null,
      pending: this.#held.length,
    };
  }
}

function errText(e: unknown): string {
  if (e instanceof StoreError) return e.sqliteCode ?? e.code;
  return e instanceof Error ? e.message : String(e);
}
