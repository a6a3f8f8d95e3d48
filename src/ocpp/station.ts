/**
 * The OCPP 2.0.1 charging station: one EVSE with one connector, speaking for the pile through
 * `OcppPilePort`. It boots (honouring Pending/Rejected intervals), heartbeats at the CSMS's
 * interval, reports the connector status, and delivers the outbox's TransactionEvents in order,
 * one at a time, only after an accepted boot. CSMS requests are handled in handlers.ts.
 */
import type { OcppConfig } from "./config.js";
import { registerHandlers } from "./handlers.js";
import { NotConnectedError, type OcppLink } from "./link.js";
import type { Outbox } from "./outbox.js";
import { type ConnectorStatus, connectorStatus, type OcppPilePort, type PileEvent } from "./port.js";
import { type EndOptions, ocppId, transactionEventFor } from "./txevents.js";
import type { StationVars } from "./variables.js";

export type BootState = "none" | "Pending" | "Rejected" | "Accepted";

export interface StationStatus {
  link: "open" | "closed";
  boot: BootState;
  outbox: { depth: number; dropped: number; dead: number };
  lastError: string | undefined;
  counters: OcppLink["counters"];
}

/** Seals an ended session (OCMF) into the Ended event's signedMeterValue; optional. */
export type SessionSealer = (
  e: Extract<PileEvent, { type: "sessionEnded" }>,
) => Record<string, string> | undefined;

export class OcppStation {
  readonly vars: StationVars;
  boot: BootState = "none";
  lastError: string | undefined;
  private timers = new Set<NodeJS.Timeout>();
  private heartbeat: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private draining = false;
  private lastStatus: ConnectorStatus | undefined;
  private lastUpdate = new Map<string, number>();
  /** When the link went down (ms), until the next accepted boot; undefined while online. */
  private offlineSince: number | undefined;
  private everAccepted = false;
  /** Sessions the CSMS asked to stop: their Ended event says Remote. */
  readonly remoteStops = new Set<string>();

  constructor(
    private readonly cfg: OcppConfig,
    readonly port: OcppPilePort,
    readonly outbox: Outbox,
    readonly link: OcppLink,
    private readonly seal?: SessionSealer,
  ) {
    this.vars = {
      heartbeatIntervalS: cfg.heartbeatIntervalS,
      offlineThresholdS: cfg.offlineThresholdS,
      messageAttempts: 5,
      messageAttemptIntervalS: 10,
      meterValueIntervalS: cfg.meterValueIntervalS,
      allowRemoteStart: cfg.allowRemoteStart,
      securityProfile: cfg.securityProfile,
    };
    registerHandlers(this, cfg);
    link.on("open", () => void this.sendBoot());
    link.on("close", () => this.onClose());
  }

  start(): void {
    this.unsubscribe = this.port.subscribe((e) => this.onPileEvent(e));
    this.link.start();
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    await this.link.stop();
  }

  status(): StationStatus {
    return {
      link: this.link.isOpen ? "open" : "closed",
      boot: this.boot,
      outbox: this.outbox.stats(),
      lastError: this.lastError ?? this.link.lastError,
      counters: this.link.counters,
    };
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  private onClose(): void {
    this.offlineSince ??= Date.now();
    this.boot = "none";
    this.outbox.setOnline(false);
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }

  async sendBoot(): Promise<void> {
    if (!this.link.isOpen) return;
    const id = this.port.identity();
    let res: Record<string, unknown>;
    try {
      res = await this.link.call("BootNotification", {
        reason: "PowerUp",
        chargingStation: {
          model: id.model,
          vendorName: id.vendorName,
          serialNumber: id.serialNumber,
          firmwareVersion: id.firmwareVersion,
        },
      });
    } catch (e) {
      this.noteError(e);
      if (this.link.isOpen) this.later(this.cfg.bootRetryS * 1000, () => void this.sendBoot());
      return;
    }
    const status = res.status as BootState;
    const interval = typeof res.interval === "number" ? res.interval : 0;
    this.boot = status;
    if (status !== "Accepted") {
      this.later((interval > 0 ? interval : this.cfg.bootRetryS) * 1000, () => void this.sendBoot());
      return;
    }
    if (interval > 0) this.vars.heartbeatIntervalS = interval;
    this.startHeartbeat();
    this.outbox.setOnline(true);
    // After the first boot, or an offline period longer than OfflineThreshold, the connector's
    // status is reported whatever it was; after a shorter one, only if it changed meanwhile.
    const offline = this.offlineFor();
    if (offline === undefined || offline > this.vars.offlineThresholdS * 1000) this.lastStatus = undefined;
    this.offlineSince = undefined;
    this.everAccepted = true;
    await this.sendStatus();
    void this.drain();
  }

  /** How long the station was offline before this boot, ms; undefined at the first boot. */
  private offlineFor(): number | undefined {
    if (!this.everAccepted) return undefined;
    return Date.now() - (this.offlineSince ?? Date.now());
  }

  startHeartbeat(): void {
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    this.heartbeat = setInterval(() => void this.sendHeartbeat(), this.vars.heartbeatIntervalS * 1000);
  }

  async sendHeartbeat(): Promise<void> {
    if (this.boot !== "Accepted") return;
    try {
      await this.link.call("Heartbeat", {});
    } catch (e) {
      this.noteError(e);
    }
  }

  /** StatusNotification of the connector, when it changed or `force`. */
  async sendStatus(force = false): Promise<void> {
    if (this.boot !== "Accepted") return;
    const s = connectorStatus(this.port.snapshot());
    if (!force && s === this.lastStatus) return;
    this.lastStatus = s;
    try {
      await this.link.call("StatusNotification", {
        timestamp: new Date().toISOString(),
        connectorStatus: s,
        evseId: 1,
        connectorId: 1,
      });
    } catch (e) {
      this.lastStatus = undefined;
      this.noteError(e);
    }
  }

  private noteError(e: unknown): void {
    if (e instanceof NotConnectedError) return;
    this.lastError = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  }

  /** A pile event: status, or a TransactionEvent into the outbox (Updated at the meter interval). */
  onPileEvent(e: PileEvent): void {
    if (e.type === "state") {
      void this.sendStatus();
      return;
    }
    if (e.type === "sessionUpdated") {
      const last = this.lastUpdate.get(e.sessionId);
      const every = this.vars.meterValueIntervalS * 1000;
      if (every === 0 || (last !== undefined && e.at.getTime() - last < every)) return;
      this.lastUpdate.set(e.sessionId, e.at.getTime());
    }
    const opts: EndOptions = {};
    if (e.type === "sessionEnded") {
      this.lastUpdate.delete(e.sessionId);
      opts.remoteStop = this.remoteStops.delete(ocppId(e.sessionId));
      const signed = this.seal?.(e);
      if (signed !== undefined) opts.signed = signed;
    }
    const ev = transactionEventFor(e, opts);
    if (ev === undefined) return;
    this.outbox.enqueue([ev]);
    void this.drain();
    if (e.type !== "sessionUpdated") void this.sendStatus();
  }

  /** Sends the outbox head until empty, the link drops or an event must wait for its retry. */
  async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      for (;;) {
        if (this.boot !== "Accepted") return;
        const head = this.outbox.head();
        if (head === undefined) return;
        const seqNo = this.outbox.claimSeqNo(head.id);
        let res: Record<string, unknown>;
        try {
          res = await this.link.call("TransactionEvent", { ...head.payload, seqNo, offline: head.offline });
        } catch (e) {
          this.noteError(e);
          if (!this.link.isOpen) return;
          if (head.attempts + 1 >= this.vars.messageAttempts) this.outbox.bury(head.id);
          else {
            this.later(
              this.vars.messageAttemptIntervalS * 1000 * (head.attempts + 1),
              () => void this.drain(),
            );
            return;
          }
          continue;
        }
        this.outbox.ack(head.id);
        this.onTokenInfo(head.transactionId, res);
      }
    } catch (e) {
      // The outbox's own file failed (busy, I/O): noted, and tried again later; never thrown
      // into the daemon (an unhandled rejection there stops the pile).
      this.noteError(e);
      this.later(this.vars.messageAttemptIntervalS * 1000, () => void this.drain());
    } finally {
      this.draining = false;
    }
  }

  /** The CSMS's verdict on a Local token: ignored, or the session ended, as configured. */
  private onTokenInfo(transactionId: string, res: Record<string, unknown>): void {
    const info = res.idTokenInfo as { status?: string } | undefined;
    if (this.cfg.localTokenPolicy !== "stop" || info?.status === undefined || info.status === "Accepted")
      return;
    const s = this.port.snapshot().session;
    if (s !== undefined && ocppId(s.sessionId) === transactionId) void this.port.stopSession(s.sessionId);
  }
}
