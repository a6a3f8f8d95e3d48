/**
 * What the OCPP station needs from the pile, and how the pile's words map to OCPP's.
 * The daemon implements `OcppPilePort` over its command table and event stream.
 */
import type { StopReason } from "../pile/types.js";
import type { PileStateName } from "../protocol/index.js";

export interface StationIdentity {
  vendorName: string;
  model: string;
  serialNumber: string;
  firmwareVersion: string;
}

/** The pile as the station sees it. */
export interface PileView {
  state: PileStateName;
  /** Latched fault codes (empty when none). */
  faults: string[];
  /** The contactor is commanded closed or its feedback does not read open: power may be live. */
  contactorMayBeLive: boolean;
  /** The meter's import register, Wh, when fresh. */
  meterWh: number | undefined;
  session: { sessionId: string } | undefined;
}

export type PileEvent =
  | { type: "state"; view: PileView }
  | {
      type: "sessionStarted";
      sessionId: string;
      /** Opaque, non-secret id of the unlocking (e.g. the code id); never the code, V or a key. */
      tokenId: string;
      at: Date;
      meterStartWh: number | undefined;
    }
  | { type: "sessionUpdated"; sessionId: string; at: Date; meterWh: number; energyWh: number; powerW: number }
  | {
      type: "sessionEnded";
      sessionId: string;
      tokenId: string;
      at: Date;
      startedAt: Date;
      stopReason: StopReason;
      meterStartWh: number | undefined;
      meterStopWh: number | undefined;
      energyWh: number;
    };

export type CommandResult = "accepted" | "scheduled" | "rejected";

export interface OcppPilePort {
  identity(): StationIdentity;
  snapshot(): PileView;
  /** Calls `listener` for every pile event until the returned function is called. */
  subscribe(listener: (e: PileEvent) => void): () => void;
  /** Ends the session as a technician stop would. */
  stopSession(sessionId: string): Promise<"stopped" | "no-session">;
  /** UNAVAILABLE (false) or back (true); "scheduled" when a session must end first. */
  setAvailable(available: boolean): Promise<CommandResult>;
  /** Graceful: only between sessions ("scheduled" after the running one); immediate: ends it safely first. */
  reset(kind: "OnIdle" | "Immediate"): Promise<CommandResult>;
}

export type ConnectorStatus = "Available" | "Occupied" | "Reserved" | "Unavailable" | "Faulted";

/** The connector's OCPP status for a pile state. */
export function connectorStatus(view: PileView): ConnectorStatus {
  if (view.faults.length > 0) return "Faulted";
  switch (view.state) {
    case "AVAILABLE":
      return "Available";
    case "AUTHORIZING":
    case "PREPARING":
    case "CHARGING":
    case "FINISHING":
      return "Occupied";
    case "FAULTED":
      return "Faulted";
    case "UNAVAILABLE":
      return "Unavailable";
  }
}

export type OcppStopReason =
  | "Local"
  | "EVDisconnected"
  | "EnergyLimitReached"
  | "TimeLimitReached"
  | "Remote"
  | "Other"
  | "EmergencyStop"
  | "PowerLoss"
  | "StoppedByEV";

/** TransactionEvent stoppedReason for the pile's stop reason. */
export function stopReasonToOcpp(r: StopReason, remote: boolean): OcppStopReason {
  switch (r) {
    case "CARRIER_STOP":
      return "Local";
    case "PLUG_REMOVED":
      return "EVDisconnected";
    case "ENERGY_LIMIT":
      return "EnergyLimitReached";
    case "DURATION_LIMIT":
      return "TimeLimitReached";
    case "TECHNICIAN":
      return remote ? "Remote" : "Local";
    case "FAULT":
    case "METER_LOST":
      return "Other";
    case "EMERGENCY_STOP":
      return "EmergencyStop";
    case "INTERRUPTED":
      return "PowerLoss";
    case "VEHICLE_DONE":
      return "StoppedByEV";
  }
}

/** TriggerReason of the Ended event. */
export function endTrigger(r: StopReason, remote: boolean): string {
  if (remote) return "RemoteStop";
  switch (r) {
    case "CARRIER_STOP":
      return "StopAuthorized";
    case "PLUG_REMOVED":
      return "EVCommunicationLost";
    case "ENERGY_LIMIT":
      return "EnergyLimitReached";
    case "DURATION_LIMIT":
      return "TimeLimitReached";
    default:
      return "AbnormalCondition";
  }
}
