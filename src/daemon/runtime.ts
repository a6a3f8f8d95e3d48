/**
 * The daemon's control loop: it feeds the pure pile core (src/pile) with everything the plant,
 * the radio and the technicians say, one input at a time, and performs the core's effects in
 * the order given — outputs to their safe state first, then durable records, then a contactor
 * closing, then messages, then a lock releasing, then notifications. Timers live here, on the
 * clock's timers port (so tests run it on a ManualClock); the core tells us when it next needs a
 * tick. The pieces: runtime/effects.ts (the performer), runtime/store-writes.ts (durable
 * records), runtime/ble-bridge.ts (the radio), runtime/meter-poller.ts (the meter),
 * runtime/boot.ts (the boot sequence and the inputs' watches).
 */
import type { Logger } from "pino";
import type { MeterError, MeterReading } from "../hw/ports.js";
import {
  PileCore,
  type PileEffect,
  type PileInput,
  type PileSnapshot,
  type TechnicianCommand,
} from "../pile/index.js";
import { nodeSuite } from "../protocol/node-suite.js";
import type { AuditEntry } from "../store/index.js";
import { pileCoreConfigOf } from "./config.js";
import { BleBridge } from "./runtime/ble-bridge.js";
import { boot, sampleInputs } from "./runtime/boot.js";
import {
  errText,
  every,
  type InputBody,
  type LoopContext,
  type RuntimeParts,
  within,
} from "./runtime/context.js";
import { type EffectEnv, Outputs, performEffect } from "./runtime/effects.js";
import { type LinkCounters, LinkWatch } from "./runtime/link-counters.js";
import { MeterPoller } from "./runtime/meter-poller.js";
import { StoreWrites } from "./runtime/store-writes.js";
import type { StoreHealth } from "./store-health.js";

export type { PileLinesPorts, RuntimeParts } from "./runtime/context.js";

interface Job {
  input: InputBody;
  done: (effects: PileEffect[]) => void;
}

/** Heartbeat of the control loop: the watchdog is fed only when a heartbeat got through. */
const HEARTBEAT_MS = 1000;

type RelayTestResult = { ok: boolean; detail: string };

export class PileRuntime {
  readonly core: PileCore;
  readonly startedAt: number;
  readonly counters: Record<string, number> = {};
  /** Monotonic ms of the last heartbeat the loop processed. */
  lastBeat: number;
  stateSince: number;
  /** The last security event (failed proofs past the threshold, PROTOCOL.md §3), Unix ms. */
  lastSecurityEvent: { at: number; failures: number } | undefined;
  readonly skewMs: number;

  readonly #p: RuntimeParts;
  readonly #ctx: LoopContext;
  readonly #writes: StoreWrites;
  readonly #ble: BleBridge;
  readonly #meter: MeterPoller;
  readonly #outputs: Outputs;
  readonly #env: EffectEnv;
  readonly #links: LinkWatch;
  readonly #queue: Job[] = [];
  #running = false;
  #deadlineTimer: unknown;
  #deadlineAt: number | undefined;
  #stopBeat: (() => void) | undefined;
  #unsubs: (() => void)[] = [];
  #stopped = false;
  #relayTestWaiters: ((r: RelayTestResult) => void)[] = [];
  #booted = false;

  constructor(parts: RuntimeParts) {
    this.#p = parts;
    const log: Logger = parts.log.child({ component: "pile" });
    const c = parts.config;
    this.skewMs = c.clockSkewMs;
    const cfg = pileCoreConfigOf(c, parts.progressEveryMs);
    if (!cfg.ok) throw new Error(`pile core config: ${cfg.errors.join("; ")}`);
    const keys = parts.keys;
    this.core = new PileCore(cfg.value, {
      suite: nodeSuite,
      keys: { get: (id) => keys.ring.get(id) },
      ledger: { isUsed: (codeId) => parts.store.ledger.isUsed(codeId) },
      random: parts.random ?? ((n) => nodeSuite.randomBytes(n)),
    });
    this.#ctx = {
      parts,
      log,
      count: (name, n = 1) => {
        this.counters[name] = (this.counters[name] ?? 0) + n;
      },
      feed: (input) => this.feed(input),
      feedFirst: (input) => {
        this.#queue.unshift({ input, done: () => {} });
      },
      contactorMayBeLive: () => this.contactorMayBeLive(),
      booted: () => this.#booted,
      stopped: () => this.#stopped,
    };
    this.#writes = new StoreWrites(this.#ctx);
    this.#ble = new BleBridge(this.#ctx, () => this.core.snapshot());
    this.#meter = new MeterPoller(this.#ctx, () => this.core.quiet());
    this.#outputs = new Outputs(this.#ctx);
    this.#env = {
      ctx: this.#ctx,
      writes: this.#writes,
      ble: this.#ble,
      outputs: this.#outputs,
      stateChanged: () => {
        this.stateSince = parts.clock.now();
      },
      securityEvent: (failures) => {
        this.lastSecurityEvent = { at: parts.clock.now(), failures };
      },
      relayTestDone: (r) => {
        for (const w of this.#relayTestWaiters.splice(0)) w(r);
      },
    };
    this.#links = new LinkWatch(() => this.linkCounters(), log);
    this.startedAt = parts.clock.now();
    this.stateSince = this.startedAt;
    this.lastBeat = parts.clock.monotonic();
  }

  /** Records that could not be written, the free space of the state directory (store-health.ts). */
  get storeHealth(): StoreHealth {
    return this.#writes.health;
  }
  get bleState(): "up" | "down" | "disabled" {
    return this.#ble.state;
  }
  get lastMeter(): MeterReading | undefined {
    return this.#meter.last;
  }
  get lastMeterError(): MeterError | undefined {
    return this.#meter.lastError;
  }

  /**
   * Boot: outputs to their safe state before anything else, then the feedbacks are read and the
   * core decides (a contactor that reads closed is a weld). Resolves once the core has booted;
   * `radioReady()` tells when the radio is up.
   */
  async start(): Promise<void> {
    await boot(this.#ctx, this.#outputs, this.#unsubs, () => {
      this.#booted = true;
    });
    this.#writes.start();
    this.#meter.poll();
    this.#stopBeat = every(this.#p.clock, HEARTBEAT_MS, () => {
      void this.feed({ type: "tick" }).then(() => {
        this.lastBeat = this.#p.clock.monotonic();
      });
      this.#links.check();
    });
    await this.#ble.start();
  }

  /** Resolves when the radio is up (at once when BLE is disabled), or after `timeoutMs`. */
  radioReady(timeoutMs: number): Promise<boolean> {
    return within(
      this.#p.clock,
      this.#ble.up.then(() => true),
      timeoutMs,
      false,
    );
  }

  /** Queues one input for the core; resolves with the effects it produced, once performed. */
  feed(input: InputBody): Promise<PileEffect[]> {
    return new Promise((done) => {
      this.#queue.push({ input, done });
      void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    const { clock } = this.#p;
    try {
      for (let job = this.#queue.shift(); job; job = this.#queue.shift()) {
        const due = this.core.nextDeadline();
        if (this.#booted && due !== undefined && due <= clock.monotonic())
          for (const c of await sampleInputs(this.#ctx, this.core.snapshot().feedback))
            await this.#step(c, clock.monotonic());
        const effects = await this.#step(job.input, clock.monotonic());
        this.#writes.flushDeferred();
        this.#meter.hurry();
        job.done(effects);
      }
    } finally {
      this.#running = false;
      this.#armDeadline();
    }
  }

  // ---- effect observers (site front ends) ----------------------------------------------------
  readonly #effectListeners = new Set<(e: PileEffect) => void>();

  /** Calls `listener` with each effect once it is performed; never lets it fail the loop. */
  onEffect(listener: (e: PileEffect) => void): () => void {
    this.#effectListeners.add(listener);
    return () => this.#effectListeners.delete(listener);
  }

  #observed(e: PileEffect): void {
    for (const l of this.#effectListeners) {
      try {
        l(e);
      } catch {
        this.#ctx.count("effects.observerFailed");
      }
    }
  }
  // ---------------------------------------------------------------------------------------------

  /** Hands one input to the core at `mono` and performs its effects in order. */
  async #step(body: InputBody, mono: number): Promise<PileEffect[]> {
    const input = { ...body, mono, wall: this.#p.clock.now() } as PileInput;
    const effects = this.core.handle(input);
    for (const e of effects) {
      try {
        await performEffect(this.#env, e);
      } catch (err) {
        // An effect that cannot be performed is logged and counted; the ones after it still
        // run (outputs are never skipped: each one is performed in its place in the batch).
        this.#ctx.count("effects.failed");
        this.#ctx.log.error({ effect: e.type, err: errText(err) }, "effect failed");
      }
      this.#observed(e);
    }
    return effects;
  }

  #armDeadline(): void {
    if (this.#stopped) return;
    const { clock } = this.#p;
    const at = this.core.nextDeadline();
    if (at === this.#deadlineAt && this.#deadlineTimer !== undefined) return;
    if (this.#deadlineTimer !== undefined) clock.clearTimeout(this.#deadlineTimer);
    this.#deadlineTimer = undefined;
    this.#deadlineAt = at;
    if (at === undefined) return;
    const delay = Math.max(0, Math.ceil(at - clock.monotonic()));
    this.#deadlineTimer = clock.setTimeout(() => {
      this.#deadlineTimer = undefined;
      this.#deadlineAt = undefined;
      void this.feed({ type: "tick" });
    }, delay);
  }

  /**
   * The contactor may be live: commanded closed, or not yet read open. While it is, nothing on
   * the control loop waits for a durable write (DESIGN.md, safety invariants). A latched weld is
   * the one exception: commanded open and reading closed, there is nothing left the loop could
   * do to open it, and its record (WELD first) must reach the disk to survive a power cut.
   */
  contactorMayBeLive(): boolean {
    // What was written to the coil so far, not what the core has just decided: a record made
    // before the contactor's closing in the same batch is still written on the loop.
    if (this.#outputs.contactorWritten) return true;
    const snap = this.core.snapshot();
    return snap.feedback.contactor !== false && !snap.faults.includes("WELD");
  }

  /** An audit entry of the front ends (console, control socket), written as the loop's own are. */
  recordAudit(entry: AuditEntry): void {
    this.#writes.audit(entry);
  }

  /**
   * The link-level fault counters: the adapters' (Modbus bus, BLE peripheral, GPIO inputs) and
   * the partial BLE messages expired. Logged when they move (at each heartbeat).
   */
  linkCounters(): LinkCounters {
    return { ...(this.#p.links?.() ?? {}), "ble.fragmentsExpired": this.#ble.fragmentsExpired() };
  }

  /** The control loop got a heartbeat through recently: feed the systemd watchdog. */
  healthy(): boolean {
    return this.#p.clock.monotonic() - this.lastBeat < 3 * HEARTBEAT_MS + 500;
  }

  // ---- technicians ------------------------------------------------------------------------

  snapshot(): PileSnapshot {
    return this.core.snapshot();
  }

  async technician(
    cmd: TechnicianCommand,
  ): Promise<{ ok: true } | { ok: false; code: string; message: string }> {
    const effects = await this.feed({ type: "technician", ...cmd } as InputBody);
    const refused = effects.find((e) => e.type === "rejected");
    return refused && refused.type === "rejected"
      ? { ok: false, code: refused.code, message: refused.detail }
      : { ok: true };
  }

  async relayTest(timeoutMs = 15_000): Promise<RelayTestResult> {
    const result = new Promise<RelayTestResult>((r) => this.#relayTestWaiters.push(r));
    const started = await this.technician({ command: "relayTest" });
    if (!started.ok) {
      this.#relayTestWaiters.pop();
      return { ok: false, detail: `${started.code}: ${started.message}` };
    }
    return within(this.#p.clock, result, timeoutMs, { ok: false, detail: "no outcome in time" });
  }

  /**
   * Orderly stop (SIGTERM): the contactor opens first, through the core (a session ends as a
   * technician stop would), then every timer and adapter is let go.
   */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    const { clock, config } = this.#p;
    if (this.core.snapshot().session) {
      await this.technician({ command: "stop" });
      // give the core its opening/unlocking deadlines to confirm the contactor open
      const until =
        clock.monotonic() + config.deadlines.contactorOpenMs + config.deadlines.lockReleaseMs + 500;
      while (this.core.snapshot().session && clock.monotonic() < until)
        await new Promise((r) => clock.setTimeout(() => r(undefined), 50));
    }
    this.#stopped = true;
    await this.#outputs.write(this.#p.lines.contactor, false, "contactor");
    for (const u of this.#unsubs.splice(0)) u();
    if (this.#deadlineTimer !== undefined) clock.clearTimeout(this.#deadlineTimer);
    this.#meter.stop();
    this.#stopBeat?.();
    await this.#ble.stop();
    this.#writes.stop();
  }
}
