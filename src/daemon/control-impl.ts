/**
 * PileControl (what the console and pilectl may ask) over the running daemon: the core's
 * snapshot, the store's records, the key directory. Every action goes through the core, so a
 * technician can do nothing the safety rules would refuse.
 */

import type {
  AuditEntry,
  AuditView,
  ControlResult,
  FaultView,
  KeyView,
  MeterView,
  PileControl,
  SessionView,
  StatusView,
  TimeView,
} from "../control/index.js";
import { redactText, redactWords } from "../control/index.js";
import type { Clock } from "../hw/ports.js";
import { toHex } from "../protocol/bytes.js";
import type { Store } from "../store/index.js";
import { VERSION } from "../version.js";
import type { KeyDirectory } from "./keys.js";
import type { PileRuntime } from "./runtime.js";
import type { SimControl } from "./sim-control.js";

type Actor = "console" | "control" | "ble" | "daemon";
const actorOf = (a: string): Actor => (a === "console" ? "console" : a === "daemon" ? "daemon" : "control");

export interface ControlDeps {
  runtime: PileRuntime;
  store: Store;
  keys: KeyDirectory;
  clock: Clock;
  /** Front ends' own counters (console garbage, control socket), merged into status. */
  extraCounters?: () => Record<string, number>;
  onKeysChanged?: () => void;
  sim?: SimControl | undefined;
  /** A reading older than this is stale (deadlines.meterStaleMs). */
  meterStaleMs: number;
}

export function pileControl(d: ControlDeps): PileControl {
  const { runtime, store, keys, clock } = d;
  const audit = (e: AuditEntry): void => {
    // The front ends redact already; this is the last gate before the database.
    const detail = [
      e.args && e.args.length > 0 ? redactWords(e.args).join(" ") : undefined,
      e.detail === undefined ? undefined : redactText(e.detail),
    ]
      .filter(Boolean)
      .join(" — ");
    // Through the runtime: while the contactor may be live the entry goes to the write worker.
    // A refused entry (e.g. one that looked like a secret) is dropped, never stored.
    runtime.recordAudit({
      at: clock.now(),
      actor: actorOf(e.actor),
      action: e.action,
      outcome: e.outcome,
      ...(detail ? { detail: `${e.actor}: ${detail}` } : { detail: e.actor }),
    });
  };
  return {
    status(): StatusView {
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
        meterFresh: s.meter !== undefined && s.meter.ageMs <= d.meterStaleMs,
        faults: [...s.faults],
        unavailableBecause: [...s.unavailableBecause],
        store: runtime.storeHealth.view(),
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
            }
          : null,
        uptimeMs: clock.now() - runtime.startedAt,
        version: VERSION,
        counters,
      };
    },
    async meter(): Promise<MeterView> {
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
    },
    sessions(limit: number): SessionView[] {
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
    },
    faults(): FaultView[] {
      const latched = new Set(runtime.snapshot().faults as string[]);
      return store.faults
        .active()
        .map((f) => ({ code: f.code, since: f.raisedAt, latched: latched.has(f.code), detail: f.detail }));
    },
    async clearFault(code: string, actor: string): Promise<ControlResult> {
      const snap = runtime.snapshot();
      if (snap.faults.length === 0) return { ok: false, code: "NOT_FAULTED", message: "no fault is latched" };
      if (code !== "all" && !(snap.faults as string[]).includes(code))
        return {
          ok: false,
          code: "UNKNOWN_FAULT",
          message: `fault ${code} is not latched (latched: ${snap.faults.join(", ")})`,
        };
      // The core clears every latched fault at once, and only when the feedbacks read safe.
      void actor;
      const r = await runtime.technician({ command: "clearFault" });
      return r.ok ? { ok: true, detail: `cleared: ${snap.faults.join(", ")}` } : r;
    },
    async stop(actor: string): Promise<ControlResult> {
      void actor;
      const r = await runtime.technician({ command: "stop" });
      return r.ok ? { ok: true, detail: "session stopping" } : r;
    },
    async relayTest(actor: string): Promise<ControlResult> {
      void actor;
      const r = await runtime.relayTest();
      return r.ok ? { ok: true, detail: r.detail } : { ok: false, code: "RELAY_TEST", message: r.detail };
    },
    keys: {
      list(): KeyView[] {
        return keys.list().map((k) => ({ keyId: k.keyId, file: k.file, added: k.added }));
      },
      add(keyId: number, hex: string): ControlResult {
        const r = keys.add(keyId, hex);
        if (!r.ok) return { ok: false, code: r.error.code, message: r.error.message };
        d.onKeysChanged?.();
        return { ok: true, detail: `key ${keyId} added (${r.value.file})` };
      },
      retire(keyId: number): ControlResult {
        const r = keys.retire(keyId);
        if (!r.ok) return { ok: false, code: r.error.code, message: r.error.message };
        d.onKeysChanged?.();
        return { ok: true, detail: `key ${keyId} retired` };
      },
    },
    time(): TimeView {
      const board = clock.now();
      const floor = Number(store.floor.get());
      return { board, floor, now: Math.max(board, floor), skewMs: runtime.skewMs };
    },
    log(limit: number): AuditView[] {
      return store.audit.list({ limit }).map((a) => ({
        at: a.at,
        actor: a.actor,
        action: a.action,
        outcome: a.outcome,
        ...(a.detail ? { detail: a.detail } : {}),
      }));
    },
    audit,
    ...(d.sim ? { sim: (action: string) => d.sim!.run(action) } : {}),
  };
}
