/**
 * PileControl (what the console and pilectl may ask) over the running daemon: the core's
 * snapshot, the store's records, the key directory. Every action goes through the core, so a
 * technician can do nothing the safety rules would refuse.
 */

import type { AuditEntry, ControlResult, KeyView, OcppControl, PileControl } from "../control/index.js";
import { redactText, redactWords } from "../control/index.js";
import type { Clock, PilotDetails } from "../hw/ports.js";
import type { Store } from "../store/index.js";
import { faultViews, logViews, meterView, sessionViews, statusView, timeView } from "./control-views.js";
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
  sim?: SimControl | undefined;
  /** A reading older than this is stale (deadlines.meterStaleMs). */
  meterStaleMs: number;
  /** The OCPP station, when on (ocpp-glue.ts). */
  ocpp?: () => OcppControl | undefined;
  /** The pilot MCU's view, where the pile has one (pilot-glue.ts). */
  pilot?: () => PilotDetails | undefined;
}

/** The pile's settings a technician changes: availability and the pilot's current limit. */
function settings(runtime: ControlDeps["runtime"]): Pick<PileControl, "setAvailable" | "setCurrentLimit"> {
  return {
    async setAvailable(available: boolean): Promise<ControlResult> {
      const r = await runtime.technician({ command: "setAvailable", available });
      return r.ok ? { ok: true, detail: available ? "pile in service" : "pile out of service" } : r;
    },
    async setCurrentLimit(currentA: number | null): Promise<ControlResult> {
      const r = await runtime.technician({ command: "setCurrentLimit", currentA });
      return r.ok
        ? { ok: true, detail: currentA === null ? "no current limit" : `current limit ${currentA} A` }
        : r;
    },
  };
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
      ...(e.peer ? { uid: e.peer.uid, pid: e.peer.pid } : {}),
    });
  };
  return {
    status: () => statusView(d),
    meter: () => meterView(d),
    sessions: (limit: number) => sessionViews(store, limit),
    faults: () => faultViews(d),
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
    ...settings(runtime),
    keys: {
      list(): KeyView[] {
        return keys.list().map((k) => ({ keyId: k.keyId, file: k.file, added: k.added }));
      },
      add(keyId: number, hex: string): ControlResult {
        const r = keys.add(keyId, hex);
        if (!r.ok) return { ok: false, code: r.error.code, message: r.error.message };
        return { ok: true, detail: `key ${keyId} added (${r.value.file})` };
      },
      retire(keyId: number): ControlResult {
        const r = keys.retire(keyId);
        if (!r.ok) return { ok: false, code: r.error.code, message: r.error.message };
        return { ok: true, detail: `key ${keyId} retired` };
      },
    },
    time: () => timeView(d),
    log: (limit: number) => logViews(store, limit),
    audit,
    ...(d.sim ? { sim: (action: string) => d.sim!.run(action) } : {}),
    // --- OCPP ---
    ocpp: () => d.ocpp?.(),
  };
}
