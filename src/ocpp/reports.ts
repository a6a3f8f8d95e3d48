/**
 * Faults and tamper told to the CSMS, best effort (not queued: after a reconnect the station
 * reports what is latched then, and its connector status; the faults stay in the store and in
 * `pilectl faults`).
 *
 * - A fault latched: NotifyEvent, variable `Problem` = "true" of the component the fault is about
 *   (PowerContactor for a weld, EmergencyStopSensor, ConnectorPlugRetentionLock, …), the fault
 *   code as techCode; cleared by the technician: the same with `cleared: true`, "false".
 * - A burst of failed code proofs (the pile's security event): SecurityEventNotification
 *   TamperDetectionActivated (a critical event of the OCPP security event list), how many within
 *   what window in techInfo. Never a code, proof or key.
 */

import type { PileView } from "./port.js";
import type { OcppStation } from "./station.js";

/** The pile's last security event: `failures` failed proofs within `windowS`, above `threshold`. */
export interface SecurityEvent {
  at: number;
  failures: number;
  threshold: number;
  windowS: number;
}

/** OCPP 2.0.1 standardized component (Part 2, appendix 3) of each fault; EVSE for the others. */
const COMPONENT: Record<string, string> = {
  WELD: "PowerContactor",
  CONTACTOR_CLOSE_TIMEOUT: "PowerContactor",
  CONTACTOR_LOST: "PowerContactor",
  LOCK_ENGAGE_TIMEOUT: "ConnectorPlugRetentionLock",
  LOCK_LOST: "ConnectorPlugRetentionLock",
  LOCK_RELEASE_TIMEOUT: "ConnectorPlugRetentionLock",
  EMERGENCY_STOP: "EmergencyStopSensor",
  PILOT_FAULT: "CPPWMController",
  PILOT_MCU: "CPPWMController",
  INTERNAL: "Controller",
};

/** What the fault means, for techInfo (at most 500 characters). */
const INFO: Record<string, string> = {
  WELD: "contactor reads closed while commanded open (welded); the lock stays engaged until a technician clears it",
  EMERGENCY_STOP: "emergency stop pressed; contactor opened",
};

export type ReportFailed = (action: string, error: string) => void;

export class FaultReports {
  faults = 0;
  security = 0;
  private seenFaults = new Set<string>();
  private lastSecurityAt: number | undefined;
  private eventId = 1;
  private seq = 0;

  constructor(
    private readonly st: OcppStation,
    private readonly securityEvent: () => SecurityEvent | undefined,
    private readonly failed: ReportFailed,
  ) {
    this.lastSecurityAt = securityEvent()?.at;
  }

  /** Looks at the pile: new faults, cleared faults and a new security event are sent. */
  tick(v: PileView): void {
    if (this.st.boot !== "Accepted") return;
    const now = new Set(v.faults);
    for (const f of now) if (!this.seenFaults.has(f)) this.notifyFault(f, false);
    for (const f of this.seenFaults) if (!now.has(f)) this.notifyFault(f, true);
    this.seenFaults = now;
    const sec = this.securityEvent();
    if (sec !== undefined && sec.at !== this.lastSecurityAt) {
      this.lastSecurityAt = sec.at;
      this.security++;
      this.send("SecurityEventNotification", {
        type: "TamperDetectionActivated",
        timestamp: new Date(sec.at).toISOString(),
        techInfo: `${sec.failures} failed code proofs within ${sec.windowS} s (more than ${sec.threshold})`,
      });
    }
  }

  private notifyFault(code: string, cleared: boolean): void {
    if (!cleared) this.faults++;
    const now = new Date().toISOString();
    const info = INFO[code];
    this.send("NotifyEvent", {
      generatedAt: now,
      seqNo: this.seq++,
      eventData: [
        {
          eventId: this.eventId++,
          timestamp: now,
          trigger: "Alerting",
          actualValue: cleared ? "false" : "true",
          ...(cleared ? { cleared: true } : {}),
          techCode: code.slice(0, 50),
          ...(info !== undefined && !cleared ? { techInfo: info } : {}),
          eventNotificationType: "HardWiredNotification",
          component: { name: COMPONENT[code] ?? "EVSE", evse: { id: 1 } },
          variable: { name: "Problem" },
        },
      ],
    });
  }

  private send(action: string, params: Record<string, unknown>): void {
    this.st.link.call(action, params).catch((e: unknown) => {
      this.failed(action, e instanceof Error ? e.message : String(e));
    });
  }
}
