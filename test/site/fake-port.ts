/** A SitePilePort for the site tests: plain state the test drives, every command recorded. */

import type { FaultView, SessionView, StatusView } from "../../src/control/index.js";
import { hashSecret, verifySecret } from "../../src/daemon/console/secret.js";
import type { SiteEvent, SitePilePort, SiteSnapshot, TechResult } from "../../src/site/port.js";

export const TECH_SECRET = "correct horse battery";

export class FakePort implements SitePilePort {
  readonly calls: string[] = [];
  readonly audits: { actor: string; action: string; outcome: string; detail?: string }[] = [];
  private readonly listeners = new Set<(e: SiteEvent) => void>();
  state = "AVAILABLE";
  since = Date.now();
  faults: FaultView[] = [];
  sessions: SessionView[] = [];
  energyImportWh = 10_000;
  powerW = 0;
  counters: Record<string, number> = { "ble.connections": 0 };
  /** The store's own report: a fault (a record that could not be written) and the records held. */
  store = { freeBytes: 52_428_800 as number | null, fault: null as string | null, pending: 0 };
  private constructor(private readonly hash: string) {}

  static async create(pileId = "PILE-7"): Promise<FakePort> {
    const p = new FakePort(await hashSecret(TECH_SECRET, { N: 1024, r: 8, p: 1 }));
    p.pileId = pileId;
    return p;
  }

  pileId = "PILE-7";

  private emit(e: SiteEvent): void {
    for (const l of this.listeners) l(e);
  }

  private active(): SessionView | undefined {
    return this.sessions.find((s) => s.status === "active");
  }

  status(): StatusView {
    const a = this.active();
    return {
      pileId: this.pileId,
      state: this.state,
      since: this.since,
      contactor: this.state === "CHARGING" ? "closed" : "open",
      lock: a ? "engaged" : "released",
      vehiclePresent: a !== undefined,
      ble: "up",
      meterFresh: true,
      faults: this.faults.filter((f) => f.latched).map((f) => f.code),
      unavailableBecause: this.state === "UNAVAILABLE" ? ["technician"] : [],
      store: {
        freeBytes: this.store.freeBytes,
        minFreeBytes: 1_048_576,
        fault: this.store.fault,
        faultSince: this.store.fault === null ? null : this.since,
        pending: this.store.pending,
      },
      security: { recentFailedProofs: 0, alarm: false, events: 0, lastEventAt: null },
      session: a ? { codeId: a.codeId, startedAt: a.startedAt, energyWh: a.energyWh } : null,
      uptimeMs: 1000,
      version: "test",
      counters: { ...this.counters },
    };
  }

  async snapshot(): Promise<SiteSnapshot> {
    return {
      status: this.status(),
      meter: {
        ok: true,
        energyImportWh: this.energyImportWh,
        powerW: this.powerW,
        voltageV: 230,
        currentA: this.powerW / 230,
        ageMs: 100,
      },
      faults: this.faults.map((f) => ({ ...f })),
      sessions: this.sessions.map((s) => ({ ...s })),
      limits: this.active() ? { maxCurrentA: 16, maxEnergyWh: 20_000, maxDurationMs: null } : null,
      pilot: this.active() ? "C" : "A",
      links: { "ble.connections": this.counters["ble.connections"] ?? 0, "meter.reads": 42 },
    };
  }

  subscribe(l: (e: SiteEvent) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  get subscribers(): number {
    return this.listeners.size;
  }

  // --- what the test drives (as the pile would, over BLE)

  setState(s: string): void {
    this.state = s;
    this.since = Date.now();
    this.emit({ kind: "state", at: this.since, state: s });
  }

  startSession(id = "5e55100000000000000000000000000a", carrier: "vehicle" | "mobile" = "vehicle"): void {
    this.counters["ble.connections"] = (this.counters["ble.connections"] ?? 0) + 1;
    this.emit({ kind: "unlock", at: Date.now(), outcome: "ok" });
    const s: SessionView = {
      id,
      codeId: "c0de00000000000000000000000000aa",
      carrier,
      deviceId: carrier === "vehicle" ? "VIN-TEST-1" : "PHONE-1",
      status: "active",
      startedAt: Date.now(),
      endedAt: null,
      meterStartWh: this.energyImportWh,
      meterStopWh: null,
      energyWh: 0,
      energySource: null,
      reason: null,
      faults: [],
    };
    this.sessions.unshift(s);
    this.powerW = 7200;
    this.setState("CHARGING");
    this.emit({ kind: "session", at: Date.now(), phase: "started", session: { ...s } });
  }

  progress(wh: number): void {
    const a = this.active();
    if (!a) return;
    a.energyWh += wh;
    this.meterTick(wh);
    this.emit({ kind: "session", at: Date.now(), phase: "progress", session: { ...a } });
  }

  /** A meter reading alone (`wh` more imported), as the pile reports one between its sessions. */
  meterTick(wh: number): void {
    this.energyImportWh += wh;
    this.emit({
      kind: "meter",
      at: Date.now(),
      meter: {
        ok: true,
        energyImportWh: this.energyImportWh,
        powerW: this.powerW,
        voltageV: 230,
        currentA: this.powerW / 230,
        ageMs: 0,
      },
    });
  }

  refuseUnlock(reason: string): void {
    this.emit({ kind: "unlock", at: Date.now(), outcome: reason });
  }

  private end(reason: string, faults: string[]): void {
    const a = this.active();
    if (!a) return;
    a.status = "finished";
    a.endedAt = Date.now();
    a.reason = reason;
    a.meterStopWh = this.energyImportWh;
    a.energySource = "meter";
    a.faults = faults;
    this.powerW = 0;
    this.emit({ kind: "session", at: Date.now(), phase: "ended", session: { ...a } });
  }

  /** The contactor welds: the pile stops and latches WELD. */
  weld(): void {
    this.faults = [{ code: "WELD", since: Date.now(), latched: true }];
    this.end("FAULT", ["WELD"]);
    this.emit({ kind: "fault", at: Date.now(), faults: this.faults });
    this.setState("FAULTED");
  }

  // --- the port's commands

  async stop(actor: string): Promise<TechResult> {
    this.calls.push(`stop:${actor}`);
    if (!this.active()) return { ok: false, code: "NO_SESSION", message: "no session to stop" };
    this.end("TECHNICIAN", []);
    this.setState("AVAILABLE");
    return { ok: true, detail: "session stopped" };
  }

  async clearFault(code: string, actor: string): Promise<TechResult> {
    this.calls.push(`clear-fault:${code}:${actor}`);
    if (this.faults.length === 0) return { ok: false, code: "NOT_LATCHED", message: "no fault is latched" };
    this.faults = [];
    this.emit({ kind: "fault", at: Date.now(), faults: [] });
    this.setState("AVAILABLE");
    return { ok: true, detail: "faults cleared" };
  }

  async relayTest(actor: string): Promise<TechResult> {
    this.calls.push(`relay-test:${actor}`);
    return { ok: true, detail: "contactor closed and reopened; feedback followed" };
  }

  async setAvailability(available: boolean, actor: string): Promise<TechResult> {
    this.calls.push(`availability:${available}:${actor}`);
    this.setState(available ? "AVAILABLE" : "UNAVAILABLE");
    return { ok: true, detail: available ? "available" : "unavailable" };
  }

  verifyTechnician(secret: string): Promise<boolean> {
    return verifySecret(this.hash, secret);
  }

  audit(entry: { actor: string; action: string; outcome: string; detail?: string }): void {
    this.audits.push(entry);
  }
}
