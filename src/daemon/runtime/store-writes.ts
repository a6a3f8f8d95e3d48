/**
 * The control loop's durable records: where each one is written (on the loop, at the write
 * worker, or held until the contactor reads open), the records held after a failed write, and
 * the store's problems handed to the core (src/daemon/store-health.ts keeps the held records).
 */
import { type AuditEntry, applyStoreOp, StoreError, type StoreOp } from "../../store/index.js";
import { isRetryable, StoreHealth } from "../store-health.js";
import { errText, every, type LoopContext } from "./context.js";

/** Worker failures that say nothing about the record itself: it is written on the loop later. */
const RETRY_ON_LOOP: ReadonlySet<string> = new Set(["IO", "LOCKED", "CLOSED", "READONLY"]);

/** How often expired codes leave the replay ledger. */
const PRUNE_EVERY_MS = 3_600_000;

export type AuditActor = "daemon" | "ble" | "console" | "control";

export class StoreWrites {
  /** Records that could not be written, the free space of the state directory. */
  readonly health: StoreHealth;
  readonly #ctx: LoopContext;
  /** The store problems last handed to the core. */
  #problems = "";
  /** Writes waiting for the contactor to read open (no write worker). */
  #deferred: StoreOp[] = [];
  #timers: (() => void)[] = [];

  constructor(ctx: LoopContext) {
    this.#ctx = ctx;
    const { config, clock } = ctx.parts;
    this.health = new StoreHealth({
      log: ctx.log,
      now: () => clock.now(),
      stateDir: config.stateDir,
      minFreeBytes: config.store.minFreeBytes,
    });
  }

  /** The periodic work: the ledger pruned hourly, the free space measured and held records retried. */
  start(): void {
    const { clock, config } = this.#ctx.parts;
    this.pruneLedger();
    this.#timers.push(every(clock, PRUNE_EVERY_MS, () => this.pruneLedger()));
    this.tick();
    this.#timers.push(every(clock, config.store.retryMs, () => this.tick()));
  }

  #liveNow(): boolean {
    return this.#ctx.booted() && this.#ctx.contactorMayBeLive();
  }

  /**
   * A synchronous durable write on the loop's own connection. Refused (false, counted and
   * logged) while the contactor may be live: an fsync that stalls there would hold up the
   * emergency stop, the feedbacks and the watchdog.
   */
  guard(what: string, fn: () => unknown, onError?: (e: unknown) => void): boolean {
    const { count, log } = this.#ctx;
    if (this.#liveNow()) {
      count("store.refusedWhileLive");
      log.error({ op: what }, "synchronous store write refused while the contactor may be live");
      return false;
    }
    try {
      fn();
      count("store.durableWrites");
      return true;
    } catch (e) {
      count("store.errors");
      log.error({ op: what, err: errText(e) }, "store write failed");
      onError?.(e);
      return false;
    }
  }

  /**
   * One record written on the loop now (nothing is live). Behind records already held it waits
   * its turn; one that fails for a reason a later attempt may get past is held, the store faulted.
   */
  #applyNow(o: StoreOp): void {
    if (this.health.holding()) {
      this.health.hold(o);
      this.#retryHeld();
      return;
    }
    this.guard(
      o.op,
      () => applyStoreOp(this.#ctx.parts.store, o),
      (e) => {
        if (!isRetryable(e)) return;
        this.health.failed(o, e);
        this.syncProblems();
      },
    );
  }

  /** Held records are tried again (never while the contactor may be live). */
  #retryHeld(): void {
    if (this.#liveNow()) return;
    const { store } = this.#ctx.parts;
    const changed = this.health.retry((o) => {
      applyStoreOp(store, o);
      this.#ctx.count("store.durableWrites");
    });
    if (changed) this.syncProblems();
  }

  /** The free space measured, held records tried again, the core told what changed. */
  tick(): void {
    if (this.#ctx.stopped()) return;
    this.health.measure();
    this.#retryHeld();
    this.syncProblems();
  }

  syncProblems(): void {
    const problems = this.health.problems();
    const key = problems.join("\n");
    if (key === this.#problems) return;
    if (problems.length > 0)
      this.#ctx.log.error({ problems }, "pile unavailable: its store cannot take a session");
    else if (this.#problems !== "") this.#ctx.log.info("store healthy again: the pile takes codes");
    this.#problems = key;
    void this.#ctx.feed({ type: "store", problems });
  }

  /**
   * One durable record of the control loop. While the contactor may be live it goes, in order,
   * to the write worker (acknowledged back, never awaited) or, without one, waits until the
   * contactor reads open. Otherwise it is durable when this resolves: written here after what
   * is held back, or, with writes still at the worker, after them there (awaited: nothing is
   * live). So a record made once the contactor reads open (a session's end) is on the disk
   * before the effect after it (the lock's release) is performed.
   */
  async write(o: StoreOp): Promise<void> {
    const { writer } = this.#ctx.parts;
    const { count } = this.#ctx;
    const live = this.#liveNow();
    if (this.health.holding()) {
      // records are held after a failed write: this one waits behind them, in order
      count("store.held");
      this.health.hold(o);
      if (!live) this.#retryHeld();
      return;
    }
    if (!live) {
      this.flushDeferred();
      if ((writer?.pending() ?? 0) === 0) {
        this.#applyNow(o);
        return;
      }
    }
    if (!writer) {
      count("store.deferred");
      this.#deferred.push(o);
      return;
    }
    count("store.offLoop");
    const durable = writer.submit(o).then(
      () => count("store.durableWrites"),
      (e: unknown) => this.#workerFailed(o, e, live),
    );
    if (!live) await durable;
  }

  #workerFailed(o: StoreOp, e: unknown, live: boolean): void {
    const code = e instanceof StoreError ? e.code : "IO";
    if (RETRY_ON_LOOP.has(code)) {
      // the worker could not reach the file: the write waits for the contactor to read open
      this.#ctx.count("store.workerFailed");
      this.#ctx.log.warn(
        { op: o.op, code },
        "write worker failed: the record waits for the contactor to open",
      );
      this.#deferred.push(o);
      if (!live) this.flushDeferred();
      return;
    }
    this.#ctx.count("store.errors");
    this.#ctx.log.error({ op: o.op, err: errText(e) }, "store write failed");
  }

  /** Writes held back while the contactor was live, now that it reads open. */
  flushDeferred(): void {
    if (this.#deferred.length === 0 || this.#ctx.contactorMayBeLive()) return;
    for (const o of this.#deferred.splice(0)) this.#applyNow(o);
  }

  audit(entry: AuditEntry): void {
    void this.write({ op: "audit.append", entry });
  }

  /** An audit entry of the loop itself, stamped now. */
  auditNow(actor: AuditActor, action: string, outcome: string, detail?: string): void {
    this.audit({ at: this.#ctx.parts.clock.now(), actor, action, outcome, ...(detail ? { detail } : {}) });
  }

  /**
   * Drops ledger entries whose code can never pass the time check again. Pruned against the
   * durable time floor, not the board clock: `now` is never below the floor, so an entry that
   * expired before it is dead whatever the clock does later (a clock set wrongly ahead cannot
   * make the pile forget a code that could still be replayed).
   */
  pruneLedger(): void {
    const { store } = this.#ctx.parts;
    if (this.#ctx.contactorMayBeLive()) return; // the next hour's prune catches up
    this.guard("ledger.prune", () => {
      const n = store.ledger.prune(store.floor.get());
      if (n > 0) this.#ctx.log.info({ pruned: n, kept: store.ledger.count() }, "replay ledger pruned");
    });
  }

  /** The loop is over: records still held back (a contactor that never read open) are written now. */
  stop(): void {
    for (const t of this.#timers.splice(0)) t();
    for (const o of this.#deferred.splice(0)) this.health.hold(o);
    this.health.retry((o) => {
      applyStoreOp(this.#ctx.parts.store, o);
      this.#ctx.count("store.durableWrites");
    });
    const lost = this.health.held().length;
    if (lost > 0)
      this.#ctx.log.error(
        { records: lost },
        "records could not be written before the stop: an open session is closed as interrupted at the next start",
      );
  }
}
