/**
 * The views of PileControl over the running daemon: the core's snapshot, the store's records,
 * the meter's last reading, as the plain JSON of src/control/views.ts.
 */
import type { AuditView, FaultView, MeterView, SessionView, StatusView, TimeView } from "../control/index.js";
import type { PilotDetails } from "../hw/ports.js";
import { meterFresh } from "../pile/index.js";
import { toHex } from "../protocol/bytes.js";
import type { Store } from "../store/index.js";
import { VERSION } from "../version.js";
import type { ControlDeps } from "./control-impl.js";

function pilotOf(d: ControlDeps): { pilot?: PilotDetails } {
  const p = d.pilot?.();
  return p ? { pilot: p } : {};
}

export function statusView(d: ControlDeps): StatusView {
  const { runtime, clock } = d;
  const s = runtime.snapshot();
  const counters: Record<string, number> = { ...runtime.counters, ...(d.extraCounters?.() ?? {}) };
  for (const [k, v] of Object.entries(s.counters)) if (typeof v === "number") counters[`pile.${k}`] = v;
  for (const [k, v] of Object.entries(s.counters.reasons)) counters[`pile.reason.${k}`] = v ?? 0;
  return {
    pileId: s.pileId,
    state: s.state,
    since: runtime.stateSince,
    contactor: s.feedback.contactor === undefined ? "unknown" : s.feedback.contactor ? "closed" : "open",
    lock: s.feedback.lock === undefined ? "unknown" : s.feedback.lock ? "engaged" : "released",
    vehiclePresent: s.feedback.vehicle ?? null,
    ble: runtime.bleState,
    meterFresh: s.meter !== undefined && meterFresh(s.meter.ageMs, d),
    faults: [...s.faults],
    unavailableBecause: [...s.unavailableBecause],
    store: runtime.storeHealth.view(),
    links: runtime.linkCounters(),
    security: {
      recentFailedProofs: s.proofs.recentFailures,
      alarm: s.proofs.alarm,
      events: s.counters.securityEvents,
      lastEventAt: runtime.lastSecurityEvent?.at ?? null,
    },
    session: s.session
      ? {
          codeId: s.session.codeId,
          startedAt: clock.now() - s.session.elapsedS * 1000,
          energyWh: s.session.energyWh,
          limits: {
            maxEnergyWh: s.session.limits.maxEnergyWh > 0 ? s.session.limits.maxEnergyWh : null,
            maxDurationMs: s.session.limits.maxDurationS > 0 ? s.session.limits.maxDurationS * 1000 : null,
            maxCurrentA: s.session.limits.pwmA,
          },
        }
      : null,
    uptimeMs: clock.now() - runtime.startedAt,
    version: VERSION,
    counters,
    ...pilotOf(d),
  };
}

export async function meterView({ runtime, clock }: ControlDeps): Promise<MeterView> {
  const r = runtime.lastMeter;
  if (runtime.lastMeterError)
    return { ok: false, code: runtime.lastMeterError.code, message: runtime.lastMeterError.message };
  if (!r) return { ok: false, code: "NO_READING", message: "no meter reading yet" };
  return {
    ok: true,
    energyImportWh: r.energyImportWh,
    powerW: r.powerW,
    voltageV: r.voltageV,
    currentA: r.currentA,
    ageMs: Math.round(clock.monotonic() - r.takenAt),
  };
}

export function sessionViews(store: Store, limit: number): SessionView[] {
  return store.sessions.list({ limit }).map((s) => ({
    id: toHex(s.sessionId),
    codeId: toHex(s.codeId),
    carrier: s.carrier,
    deviceId: s.deviceId,
    startedAt: s.startedAt,
    endedAt: s.stoppedAt ?? s.closedAt,
    meterStartWh: s.meterStartWh,
    meterStopWh: s.meterStopWh,
    energyWh: s.energyWh,
    energySource: s.energySource,
    status: s.status,
    reason: s.stopReason,
    faults: s.faults,
  }));
}

export function faultViews({ runtime, store }: ControlDeps): FaultView[] {
  const latched = new Set(runtime.snapshot().faults as string[]);
  return store.faults
    .active()
    .map((f) => ({ code: f.code, since: f.raisedAt, latched: latched.has(f.code), detail: f.detail }));
}

export function timeView({ runtime, store, clock }: ControlDeps): TimeView {
  const board = clock.now();
  const floor = Number(store.floor.get());
  return { board, floor, now: Math.max(board, floor), skewMs: runtime.skewMs };
}

export function logViews(store: Store, limit: number): AuditView[] {
  return store.audit.list({ limit }).map((a) => ({
    at: a.at,
    actor: a.actor,
    action: a.action,
    outcome: a.outcome,
    ...(a.detail ? { detail: a.detail } : {}),
    ...(a.uid !== null ? { peer: { uid: a.uid, pid: a.pid ?? 0 } } : {}),
  }));
}
