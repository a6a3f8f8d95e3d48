/**
 * The daemon's OCPP front end: the station (src/ocpp) over the running pile. The pile is seen
 * through `OcppPilePort` — the core's snapshot, and the technician's commands through the core
 * (so the CSMS can do nothing a technician could not). Session events are not sent from here:
 * the store's hook (ocpp-hook.ts) queues them in the outbox inside each session change's
 * transaction; this side delivers the outbox (its own connection to the same WAL file), reports
 * the connector status, and tells the CSMS of faults (NotifyEvent) and tamper (a burst of failed
 * proofs, SecurityEventNotification). It is started after the runtime and stopped before it.
 */
import Database from "better-sqlite3";
import type { Logger } from "pino";
import type { OcppConfig } from "../ocpp/config.js";
import { linkOptions, OcppLink } from "../ocpp/link.js";
import { listOcmf, markRemoteStop, type OcmfRow } from "../ocpp/marks.js";
import { loadOrCreateStationKey } from "../ocpp/ocmf.js";
import { Outbox } from "../ocpp/outbox.js";
import type { CommandResult, OcppPilePort, PileEvent, PileView } from "../ocpp/port.js";
import { FaultReports, type SecurityEvent } from "../ocpp/reports.js";
import { OcppStation, type StationStatus } from "../ocpp/station.js";
import { ocppId } from "../ocpp/txevents.js";
import { protocolProofPolicy } from "../pile/rate-limit.js";
import { err, ok, type Result } from "../protocol/bytes.js";
import { CACHE_KIB } from "../store/index.js";
import { VERSION } from "../version.js";
import type { Config } from "./config.js";
import type { SessionHookOptions } from "./ocpp-hook.js";
import type { PileRuntime } from "./runtime.js";

/** How often the pile is looked at (state, faults, security events, outbox to deliver). */
const TICK_MS = 200;

export interface OcppView extends StationStatus {
  enabled: true;
  url: string;
  identity: string;
  /** The OCMF station key, DER SubjectPublicKeyInfo in hex. */
  publicKey: string;
  faultsReported: number;
  securityEventsReported: number;
}

export interface OcppGlue {
  view(): OcppView;
  ocmf(limit: number): OcmfRow[];
  stop(): Promise<void>;
}

export interface GlueDeps {
  config: Config;
  runtime: PileRuntime;
  dbPath: string;
  log: Logger;
  /** Called once for an accepted Reset, when the pile is between sessions. */
  onReset: () => void;
}

/** The pile as the station sees it. */
function viewOf(runtime: PileRuntime): PileView {
  const s = runtime.snapshot();
  return {
    state: s.state,
    faults: [...s.faults],
    contactorMayBeLive: runtime.contactorMayBeLive(),
    meterWh: s.meter?.energyImportWh,
    session: s.session ? { sessionId: s.session.sessionId } : undefined,
  };
}

/** The runtime's last security event with the protocol's threshold and window. */
function securityEventOf(runtime: PileRuntime): SecurityEvent | undefined {
  const e = runtime.lastSecurityEvent;
  if (e === undefined) return undefined;
  const p = protocolProofPolicy;
  return { ...e, threshold: p.securityEventFailures, windowS: p.securityEventWindowMs / 1000 };
}

class RuntimePort implements OcppPilePort {
  readonly listeners = new Set<(e: PileEvent) => void>();
  resetWanted = false;
  constructor(
    private readonly d: GlueDeps,
    private readonly db: Database.Database,
  ) {}
  identity() {
    const c = this.d.config;
    return {
      vendorName: "piled",
      model: `piled ${c.meter.model}`,
      serialNumber: c.pileId,
      firmwareVersion: VERSION,
    };
  }
  snapshot(): PileView {
    return viewOf(this.d.runtime);
  }
  subscribe(l: (e: PileEvent) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  async stopSession(sessionId: string): Promise<"stopped" | "no-session"> {
    const s = this.d.runtime.snapshot().session;
    if (s === undefined || s.sessionId !== sessionId) return "no-session";
    // Marked before the stop: the Ended event, queued with the session's finish, says Remote.
    markRemoteStop(this.db, ocppId(sessionId));
    const r = await this.d.runtime.technician({ command: "stop" });
    return r.ok ? "stopped" : "no-session";
  }
  async setAvailable(available: boolean): Promise<CommandResult> {
    const session = this.d.runtime.snapshot().session !== undefined;
    const r = await this.d.runtime.technician({ command: "setAvailable", available });
    if (!r.ok) return "rejected";
    return !available && session ? "scheduled" : "accepted";
  }
  async reset(kind: "OnIdle" | "Immediate"): Promise<CommandResult> {
    const session = this.d.runtime.snapshot().session !== undefined;
    if (session && kind === "Immediate") {
      const r = await this.d.runtime.technician({ command: "stop" });
      if (!r.ok) return "rejected";
    }
    this.resetWanted = true;
    return session ? "scheduled" : "accepted";
  }
}

/**
 * The OCPP files the config names (password, CA, client certificate and key), checked before any
 * line is opened: a loose or unreadable one refuses the configuration, touching nothing. The
 * station reads them again when it starts.
 */
/** Starts the station; an error (password file, key, database) names what is wrong and starts nothing. */
export function startOcpp(d: GlueDeps): Result<OcppGlue, Error> {
  const cfg: OcppConfig = d.config.ocpp;
  const lo = linkOptions(cfg);
  if (!lo.ok) return err(lo.error);
  const key = loadOrCreateStationKey(d.config.stateDir);
  if (!key.ok) return err(new Error(key.error.message));
  let db: Database.Database;
  try {
    db = new Database(d.dbPath, { fileMustExist: true, timeout: 5000 });
    db.pragma("synchronous = FULL");
    db.pragma(`cache_size = -${CACHE_KIB}`);
  } catch (e) {
    return err(new Error(`OCPP outbox: cannot open ${d.dbPath} (${e instanceof Error ? e.message : e})`));
  }
  const log = d.log.child({ component: "ocpp" });
  const port = new RuntimePort(d, db);
  const link = new OcppLink(lo.value);
  const station = new OcppStation(cfg, port, new Outbox(db, cfg.outboxMax), link);
  const reports = new FaultReports(
    station,
    () => securityEventOf(d.runtime),
    (action, e) => log.warn({ action, err: e }, "OCPP report not delivered"),
  );
  link.on("open", () => log.info({ url: cfg.url }, "OCPP link open"));
  link.on("close", (e: { code?: number }) => log.warn({ code: e.code }, "OCPP link closed"));
  link.on("connectError", (text: string) => log.error({ url: cfg.url, err: text }, "OCPP connect failed"));
  station.start();
  let lastState = "";
  let resetDone = false;
  const timer = setInterval(() => {
    try {
      tick();
    } catch (e) {
      station.lastError = `tick: ${e instanceof Error ? e.message : String(e)}`;
    }
  }, TICK_MS);
  function tick(): void {
    const v = port.snapshot();
    const key = `${v.state}|${v.faults.join(",")}`;
    if (key !== lastState) {
      lastState = key;
      for (const l of port.listeners) l({ type: "state", view: v });
    }
    reports.tick(v);
    if (station.outbox.stats().depth > 0) void station.drain();
    if (port.resetWanted && !resetDone && v.session === undefined && !v.contactorMayBeLive) {
      resetDone = true;
      log.warn("OCPP Reset: the daemon restarts");
      d.onReset();
    }
  }
  return ok({
    view: () => ({
      enabled: true,
      url: cfg.url ?? "",
      identity: cfg.identity ?? "",
      publicKey: key.value.publicKeyHex,
      ...station.status(),
      faultsReported: reports.faults,
      securityEventsReported: reports.security,
    }),
    ocmf: (limit) => listOcmf(db, limit),
    stop: async () => {
      clearInterval(timer);
      await station.stop();
      db.close();
    },
  });
}

/** The module the write worker imports for the store's session hook. */
export const OCPP_HOOK_MODULE = new URL("./ocpp-hook.js", import.meta.url).href;

/** The hook's options (plain data: they cross to the write worker). */
export function sessionHookOptions(c: Config): SessionHookOptions {
  return {
    stateDir: c.stateDir,
    meterValueIntervalS: c.ocpp.meterValueIntervalS,
    outboxMax: c.ocpp.outboxMax,
    gateway: { id: "piled", serial: c.pileId, version: VERSION },
    meter: {
      vendor: c.meter.driver === "sim" ? "simulated" : "modbus",
      model: c.meter.model,
      serial: `${c.pileId}-meter`,
    },
    chargePointId: c.ocpp.identity ?? c.pileId,
  };
}
