/**
 * What the station does when the CSMS asks. Inbound calls are schema-checked by ocpp-rpc
 * (strict mode) before they get here; actions not registered are answered NotImplemented.
 */
import type { OcppConfig } from "./config.js";
import type { CommandResult } from "./port.js";
import type { OcppStation } from "./station.js";
import { ocppId } from "./txevents.js";
import { getVariables, setVariables } from "./variables.js";

const status = (r: CommandResult): string =>
  r === "accepted" ? "Accepted" : r === "scheduled" ? "Scheduled" : "Rejected";

type Params = Record<string, unknown>;

export function registerHandlers(st: OcppStation, cfg: OcppConfig): void {
  const link = st.link;
  link.handle("RequestStopTransaction", async (p) => {
    const s = st.port.snapshot().session;
    if (s === undefined || ocppId(s.sessionId) !== p.transactionId) return { status: "Rejected" };
    st.remoteStops.add(ocppId(s.sessionId));
    const r = await st.port.stopSession(s.sessionId);
    if (r !== "stopped") st.remoteStops.delete(ocppId(s.sessionId));
    return { status: r === "stopped" ? "Accepted" : "Rejected" };
  });
  link.handle("RequestStartTransaction", async () => {
    // A remote start bypasses the charging code; the pile has no such command yet either.
    const reasonCode = cfg.allowRemoteStart ? "NotSupported" : "RemoteStartDisabled";
    return { status: "Rejected", statusInfo: { reasonCode } };
  });
  link.handle("ChangeAvailability", async (p) => {
    const evse = p.evse as { id: number } | undefined;
    if (evse !== undefined && evse.id > 1)
      return { status: "Rejected", statusInfo: { reasonCode: "UnknownEvse" } };
    const r = await st.port.setAvailable(p.operationalStatus === "Operative");
    void st.sendStatus();
    return { status: status(r) };
  });
  link.handle("Reset", async (p) => {
    if (typeof p.evseId === "number" && p.evseId !== 1) return { status: "Rejected" };
    return { status: status(await st.port.reset(p.type === "Immediate" ? "Immediate" : "OnIdle")) };
  });
  link.handle("UnlockConnector", async (p) => {
    if (p.evseId !== 1 || p.connectorId !== 1) return { status: "UnknownConnector" };
    const v = st.port.snapshot();
    if (v.session !== undefined) return { status: "OngoingAuthorizedTransaction" };
    // The lock is the pile's: it releases it itself, and never while power may be live.
    const reasonCode = v.contactorMayBeLive ? "ContactorMayBeLive" : "NotSupported";
    return { status: "UnlockFailed", statusInfo: { reasonCode } };
  });
  link.handle("TriggerMessage", async (p) => trigger(st, p));
  link.handle("GetVariables", async (p) => ({
    getVariableResult: getVariables(st.vars, p.getVariableData as Parameters<typeof getVariables>[1]),
  }));
  link.handle("SetVariables", async (p) => {
    const before = st.vars.heartbeatIntervalS;
    const result = setVariables(st.vars, p.setVariableData as Parameters<typeof setVariables>[1]);
    if (st.vars.heartbeatIntervalS !== before && st.boot === "Accepted") st.startHeartbeat();
    return { setVariableResult: result };
  });
}

/** TriggerMessage: answered first, the triggered message sent right after. */
function trigger(st: OcppStation, p: Params): Record<string, unknown> {
  const evse = p.evse as { id: number; connectorId?: number } | undefined;
  if (evse !== undefined && evse.id !== 1) return { status: "Rejected" };
  switch (p.requestedMessage) {
    case "BootNotification":
      if (st.boot === "Accepted") return { status: "Rejected" };
      setImmediate(() => void st.sendBoot());
      return { status: "Accepted" };
    case "Heartbeat":
      setImmediate(() => void st.sendHeartbeat());
      return { status: "Accepted" };
    case "StatusNotification":
      setImmediate(() => void st.sendStatus(true));
      return { status: "Accepted" };
    default:
      return { status: "NotImplemented" };
  }
}
