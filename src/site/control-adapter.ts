/**
 * SitePilePort over the daemon's PileControl and its command table, so that a technician's
 * action from the dashboard or MQTT parses, runs and is audited exactly as at the console
 * (availability is the table's `available on|off`). Events: the daemon feeds the runtime's own
 * through `feed` (effect-feed.ts; watchMs 0), unlock outcomes included; without a feed they are
 * derived by comparing the in-memory status view at a short interval (status() reads no store;
 * sessions() is read only when the session changed).
 */

import { type CommandOutcome, executeCommand, type PileControl, type StatusView } from "../control/index.js";
import { verifySecret } from "../daemon/console/secret.js";
import type { SiteEvent, SitePilePort, SiteSnapshot, TechResult } from "./port.js";

export interface ControlAdapterOptions {
  pile: PileControl;
  /** The console's scrypt hash string (console.secretHash or the content of secretHashFile). */
  secretHash: string;
  /** Interval of the status comparison, ms; 0 = none (events come from `feed`). */
  watchMs?: number;
  sessionsShown?: number;
}

const toTech = (o: CommandOutcome): TechResult =>
  o.ok
    ? { ok: true, detail: String((o.result as { detail?: unknown }).detail ?? "done") }
    : { ok: false, code: o.error.code, message: o.error.message };

export class ControlPort implements SitePilePort {
  private readonly listeners = new Set<(e: SiteEvent) => void>();
  private timer: NodeJS.Timeout | undefined;
  private last: StatusView | undefined;

  constructor(private readonly o: ControlAdapterOptions) {}

  async snapshot(): Promise<SiteSnapshot> {
    const p = this.o.pile;
    const status = p.status();
    const meter = await p.meter().catch(() => null);
    // The running session's energy as the pile holds it: its stored progress may lag behind.
    const live = status.session;
    const sessions = p
      .sessions(this.o.sessionsShown ?? 10)
      .map((s) =>
        live && s.status === "active" && s.codeId === live.codeId && live.energyWh !== null
          ? { ...s, energyWh: live.energyWh }
          : s,
      );
    return {
      status,
      meter,
      faults: p.faults(),
      sessions,
      limits: status.session?.limits ?? null,
      pilot: status.pilot?.state ?? null,
      links: {
        ...Object.fromEntries(
          Object.entries(status.counters).filter(([k]) => /^(ble|meter|store)\./.test(k)),
        ),
        ...(status.links ?? {}),
      },
    };
  }

  subscribe(listener: (e: SiteEvent) => void): () => void {
    this.listeners.add(listener);
    if (this.timer === undefined && (this.o.watchMs ?? 250) > 0) {
      this.last = this.o.pile.status();
      this.timer = setInterval(() => this.watch(), this.o.watchMs ?? 250);
      this.timer.unref();
    }
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0 && this.timer !== undefined) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    };
  }

  /** Hands one event to every listener (the daemon's own event stream, when wired). */
  feed(e: SiteEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch {
        // one front end failing must not keep the event from the others
      }
    }
  }

  private watch(): void {
    const prev = this.last;
    const now = this.o.pile.status();
    this.last = now;
    if (!prev) return;
    const at = Date.now();
    if (prev.state !== now.state) this.feed({ kind: "state", at, state: now.state });
    if (prev.faults.join() !== now.faults.join())
      this.feed({ kind: "fault", at, faults: this.o.pile.faults() });
    const before = prev.session?.codeId;
    const after = now.session?.codeId;
    if (before !== after || prev.session?.startedAt !== now.session?.startedAt) {
      const [s] = this.o.pile.sessions(1);
      if (s) this.feed({ kind: "session", at, phase: now.session ? "started" : "ended", session: s });
    } else if (now.session && prev.session?.energyWh !== now.session.energyWh) {
      const [s] = this.o.pile.sessions(1);
      if (s) this.feed({ kind: "session", at, phase: "progress", session: s });
    }
  }

  private run(name: string, args: string[], actor: string): Promise<TechResult> {
    return executeCommand({ pile: this.o.pile, actor }, name, args).then(toTech);
  }

  stop(actor: string): Promise<TechResult> {
    return this.run("stop", [], actor);
  }

  clearFault(code: string, actor: string): Promise<TechResult> {
    return this.run("clear-fault", [code], actor);
  }

  relayTest(actor: string): Promise<TechResult> {
    return this.run("relay-test", [], actor);
  }

  setAvailability(available: boolean, actor: string): Promise<TechResult> {
    return this.run("available", [available ? "on" : "off"], actor);
  }

  verifyTechnician(secret: string): Promise<boolean> {
    return verifySecret(this.o.secretHash, secret);
  }

  audit(entry: { actor: string; action: string; outcome: string; detail?: string }): void {
    try {
      this.o.pile.audit(entry);
    } catch {
      // the pile logs a failing audit sink itself
    }
  }
}
