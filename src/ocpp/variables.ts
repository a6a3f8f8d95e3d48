/**
 * The documented device-model variables of GetVariables / SetVariables (OCPP 2.0.1 B06/B05).
 * Values live for the process; the configuration file stays the durable source.
 *
 * | component      | variable                | instance         | access    |
 * |----------------|-------------------------|------------------|-----------|
 * | OCPPCommCtrlr  | HeartbeatInterval       |                  | ReadWrite |
 * | OCPPCommCtrlr  | OfflineThreshold        |                  | ReadWrite |
 * | OCPPCommCtrlr  | MessageAttempts         | TransactionEvent | ReadWrite |
 * | OCPPCommCtrlr  | MessageAttemptInterval  | TransactionEvent | ReadWrite |
 * | SampledDataCtrlr | TxUpdatedInterval     |                  | ReadWrite |
 * | AuthCtrlr      | AuthorizeRemoteStart    |                  | ReadOnly  |
 * | SecurityCtrlr  | SecurityProfile         |                  | ReadOnly  |
 */

export interface StationVars {
  heartbeatIntervalS: number;
  offlineThresholdS: number;
  messageAttempts: number;
  messageAttemptIntervalS: number;
  meterValueIntervalS: number;
  allowRemoteStart: boolean;
  securityProfile: number;
}

interface VarDef {
  component: string;
  variable: string;
  instance?: string;
  key: keyof StationVars;
  readOnly?: boolean;
  min?: number;
  max?: number;
}

const DEFS: VarDef[] = [
  {
    component: "OCPPCommCtrlr",
    variable: "HeartbeatInterval",
    key: "heartbeatIntervalS",
    min: 1,
    max: 86_400,
  },
  { component: "OCPPCommCtrlr", variable: "OfflineThreshold", key: "offlineThresholdS", min: 0, max: 86_400 },
  {
    component: "OCPPCommCtrlr",
    variable: "MessageAttempts",
    instance: "TransactionEvent",
    key: "messageAttempts",
    min: 1,
    max: 100,
  },
  {
    component: "OCPPCommCtrlr",
    variable: "MessageAttemptInterval",
    instance: "TransactionEvent",
    key: "messageAttemptIntervalS",
    min: 0,
    max: 3_600,
  },
  {
    component: "SampledDataCtrlr",
    variable: "TxUpdatedInterval",
    key: "meterValueIntervalS",
    min: 0,
    max: 86_400,
  },
  { component: "AuthCtrlr", variable: "AuthorizeRemoteStart", key: "allowRemoteStart", readOnly: true },
  { component: "SecurityCtrlr", variable: "SecurityProfile", key: "securityProfile", readOnly: true },
];

interface Ref {
  component: { name: string; instance?: string };
  variable: { name: string; instance?: string };
  attributeType?: string;
}

const find = (r: Ref): VarDef | "unknownComponent" | "unknownVariable" => {
  const comp = DEFS.filter((d) => d.component === r.component.name && r.component.instance === undefined);
  if (comp.length === 0) return "unknownComponent";
  const v = comp.find((d) => d.variable === r.variable.name && d.instance === r.variable.instance);
  return v ?? "unknownVariable";
};

const text = (v: number | boolean): string => (typeof v === "boolean" ? (v ? "true" : "false") : String(v));

type Resolved =
  | { base: Record<string, unknown>; refused: Record<string, unknown> }
  | { base: Record<string, unknown>; refused?: undefined; d: VarDef };

/** A request's component/variable/attribute echoed back, and the variable it names (or why not). */
function resolve(r: Ref): Resolved {
  const base = {
    component: r.component,
    variable: r.variable,
    ...(r.attributeType ? { attributeType: r.attributeType } : {}),
  };
  if (r.attributeType !== undefined && r.attributeType !== "Actual")
    return { base, refused: { ...base, attributeStatus: "NotSupportedAttributeType" } };
  const d = find(r);
  if (d === "unknownComponent") return { base, refused: { ...base, attributeStatus: "UnknownComponent" } };
  if (d === "unknownVariable") return { base, refused: { ...base, attributeStatus: "UnknownVariable" } };
  return { base, d };
}

/** GetVariablesResponse.getVariableResult for the request's getVariableData. */
export function getVariables(vars: StationVars, data: Ref[]): Record<string, unknown>[] {
  return data.map((r) => {
    const x = resolve(r);
    if (x.refused) return x.refused;
    return { ...x.base, attributeStatus: "Accepted", attributeValue: text(vars[x.d.key]) };
  });
}

/** Applies SetVariables; returns setVariableResult. Nothing changes for a rejected entry. */
export function setVariables(
  vars: StationVars,
  data: (Ref & { attributeValue: string })[],
): Record<string, unknown>[] {
  return data.map((r) => {
    const x = resolve(r);
    if (x.refused) return x.refused;
    const { base, d } = x;
    if (d.readOnly)
      return { ...base, attributeStatus: "Rejected", attributeStatusInfo: { reasonCode: "ReadOnly" } };
    const n = /^\d{1,9}$/.test(r.attributeValue) ? Number(r.attributeValue) : Number.NaN;
    if (Number.isNaN(n) || n < (d.min ?? 0) || n > (d.max ?? Number.MAX_SAFE_INTEGER))
      return { ...base, attributeStatus: "Rejected", attributeStatusInfo: { reasonCode: "ValueOutOfRange" } };
    (vars as unknown as Record<string, number>)[d.key] = n;
    return { ...base, attributeStatus: "Accepted" };
  });
}
