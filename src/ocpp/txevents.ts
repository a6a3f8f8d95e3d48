/**
 * TransactionEvent bodies for pile session events (seqNo and offline are the outbox's). Pure, so
 * the store can build them inside the transaction that records the session change.
 */
import type { TxEventInput } from "./outbox.js";
import { endTrigger, type PileEvent, stopReasonToOcpp } from "./port.js";

/** OCPP's transactionId and idToken are at most 36 characters. */
export const ocppId = (s: string): string => s.slice(0, 36);

type Context = "Transaction.Begin" | "Sample.Periodic" | "Transaction.End";

const meterValue = (at: Date, wh: number, context: Context, signed?: Record<string, string>) => [
  {
    timestamp: at.toISOString(),
    sampledValue: [
      {
        value: wh,
        context,
        measurand: "Energy.Active.Import.Register",
        unitOfMeasure: { unit: "Wh" },
        ...(signed !== undefined ? { signedMeterValue: signed } : {}),
      },
    ],
  },
];

export interface EndOptions {
  /** The CSMS asked for the stop (RequestStopTransaction). */
  remoteStop?: boolean;
  /** OCPP SignedMeterValueType carrying the session's OCMF record. */
  signed?: Record<string, string>;
}

/** The TransactionEvent for a session event, or none (a state change is a StatusNotification). */
export function transactionEventFor(e: PileEvent, opts: EndOptions = {}): TxEventInput | undefined {
  switch (e.type) {
    case "state":
      return undefined;
    case "sessionStarted":
      return {
        transactionId: ocppId(e.sessionId),
        eventType: "Started",
        payload: {
          eventType: "Started",
          timestamp: e.at.toISOString(),
          triggerReason: "Authorized",
          transactionInfo: { transactionId: ocppId(e.sessionId), chargingState: "EVConnected" },
          evse: { id: 1, connectorId: 1 },
          idToken: { idToken: ocppId(e.tokenId), type: "Local" },
          ...(e.meterStartWh !== undefined
            ? { meterValue: meterValue(e.at, e.meterStartWh, "Transaction.Begin") }
            : {}),
        },
      };
    case "sessionUpdated":
      return {
        transactionId: ocppId(e.sessionId),
        eventType: "Updated",
        payload: {
          eventType: "Updated",
          timestamp: e.at.toISOString(),
          triggerReason: "MeterValuePeriodic",
          transactionInfo: {
            transactionId: ocppId(e.sessionId),
            chargingState: e.powerW > 0 ? "Charging" : "SuspendedEV",
          },
          meterValue: meterValue(e.at, e.meterWh, "Sample.Periodic"),
        },
      };
    case "sessionEnded": {
      const remote = opts.remoteStop === true;
      const stopWh =
        e.meterStopWh ?? (e.meterStartWh !== undefined ? e.meterStartWh + e.energyWh : undefined);
      return {
        transactionId: ocppId(e.sessionId),
        eventType: "Ended",
        payload: {
          eventType: "Ended",
          timestamp: e.at.toISOString(),
          triggerReason: endTrigger(e.stopReason, remote),
          transactionInfo: {
            transactionId: ocppId(e.sessionId),
            chargingState: "Idle",
            stoppedReason: stopReasonToOcpp(e.stopReason, remote),
          },
          idToken: { idToken: ocppId(e.tokenId), type: "Local" },
          ...(stopWh !== undefined
            ? { meterValue: meterValue(e.at, stopWh, "Transaction.End", opts.signed) }
            : {}),
        },
      };
    }
  }
}
