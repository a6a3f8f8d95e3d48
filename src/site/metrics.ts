/**
 * Prometheus metrics of the pile (prom-client, its own registry): sessions and energy from the
 * event stream, unlock outcomes by reason, bad input by surface (the pile's counters and the
 * site surfaces'), link counters and the pile's gauges from the snapshot, and Node's own
 * metrics including the event-loop lag (nodejs_eventloop_lag_seconds).
 */
import { Counter, collectDefaultMetrics, Gauge, Registry } from "prom-client";
import type { SiteCounters } from "./counters.js";
import type { SiteEvent, SitePilePort, SiteSnapshot } from "./port.js";

const STATES = ["AVAILABLE", "AUTHORIZING", "PREPARING", "CHARGING", "FINISHING", "FAULTED", "UNAVAILABLE"];

/** "ble.badFragment" → surface "ble", kind "badFragment". */
const split = (name: string): { surface: string; kind: string } => {
  const i = name.indexOf(".");
  return i < 0 ? { surface: "pile", kind: name } : { surface: name.slice(0, i), kind: name.slice(i + 1) };
};

export class SiteMetrics {
  readonly registry = new Registry();
  private last: SiteSnapshot | undefined;
  private readonly sessions: Counter;
  private readonly energy: Counter;
  private readonly unlocks: Counter;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly port: SitePilePort,
    private readonly counters: SiteCounters,
  ) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 20 });
    this.sessions = new Counter({
      name: "piled_sessions_total",
      help: "Charging sessions by how they ended (started: every session begun)",
      labelNames: ["phase"],
      registers,
    });
    this.energy = new Counter({
      name: "piled_session_energy_wh_total",
      help: "Energy delivered by ended sessions, Wh",
      registers,
    });
    this.unlocks = new Counter({
      name: "piled_unlock_outcomes_total",
      help: "Unlock attempts by outcome (ok or the refusal reason)",
      labelNames: ["reason"],
      registers,
    });
    this.snapshotGauges(registers);
    this.unsubscribe = port.subscribe((e) => this.observe(e));
  }

  private snapshotGauges(registers: Registry[]): void {
    const self = this;
    new Counter({
      name: "piled_bad_input_total",
      help: "Bad input refused, by surface (ble, console, control, http, mqtt, …) and kind",
      labelNames: ["surface", "kind"],
      registers,
      collect() {
        this.reset();
        const all = { ...(self.last?.status.counters ?? {}), ...self.counters.all() };
        for (const [name, v] of Object.entries(all)) if (v > 0) this.inc(split(name), v);
      },
    });
    new Gauge({
      name: "piled_link_counter",
      help: "Counters of the pile's links (BLE, meter bus, store), as the pile reports them",
      labelNames: ["name"],
      registers,
      collect() {
        this.reset();
        for (const [name, v] of Object.entries(self.last?.links ?? {})) this.set({ name }, v);
      },
    });
    new Gauge({
      name: "piled_state",
      help: "1 for the pile's current protocol state",
      labelNames: ["state"],
      registers,
      collect() {
        for (const s of STATES) this.set({ state: s }, self.last?.status.state === s ? 1 : 0);
      },
    });
    new Gauge({
      name: "piled_meter_energy_import_wh",
      help: "Meter's energy import register, Wh",
      registers,
      collect() {
        const m = self.last?.meter;
        if (m?.ok) this.set(m.energyImportWh);
      },
    });
    new Gauge({
      name: "piled_meter_power_w",
      help: "Meter's active power, W",
      registers,
      collect() {
        const m = self.last?.meter;
        if (m?.ok) this.set(m.powerW);
      },
    });
    new Gauge({
      name: "piled_faults_latched",
      help: "Latched faults holding the pile",
      registers,
      collect() {
        this.set(self.last?.faults.filter((f) => f.latched).length ?? 0);
      },
    });
    this.storeGauges(registers);
  }

  private storeGauges(registers: Registry[]): void {
    const self = this;
    new Gauge({
      name: "piled_store_health",
      help: "1 while the pile's store reports no fault and has seen no error since start",
      registers,
      collect() {
        const st = self.last?.status;
        const ok = (st?.counters["store.errors"] ?? 0) === 0 && (st?.store.fault ?? null) === null;
        this.set(ok ? 1 : 0);
      },
    });
    new Gauge({
      name: "piled_store_free_bytes",
      help: "Free bytes on the state directory's file system (NaN: not measured)",
      registers,
      collect() {
        const free = self.last?.status.store.freeBytes;
        this.set(typeof free === "number" ? free : Number.NaN);
      },
    });
    new Gauge({
      name: "piled_store_pending_records",
      help: "Records the store holds that are not on the disk yet",
      registers,
      collect() {
        this.set(self.last?.status.store.pending ?? 0);
      },
    });
  }

  observe(e: SiteEvent): void {
    if (e.kind === "unlock") this.unlocks.inc({ reason: e.outcome.slice(0, 48) });
    else if (e.kind === "session" && e.phase !== "progress") {
      this.sessions.inc({ phase: e.phase });
      if (e.phase === "ended") this.energy.inc(Math.max(0, e.session.energyWh));
    }
  }

  /** The exposition text, from a fresh snapshot. */
  async render(): Promise<string> {
    try {
      this.last = await this.port.snapshot();
    } catch {
      this.counters.inc("metrics.snapshotFailed");
    }
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  close(): void {
    this.unsubscribe();
    this.registry.clear();
  }
}
