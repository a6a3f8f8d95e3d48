/** Human text of the control views: what the console and `pilectl` print for a command's result. */
import type { AuditView, FaultView, KeyView, MeterView, SessionView, StatusView, TimeView } from "./views.js";

const ts = (ms: number | null): string => (ms === null ? "-" : new Date(ms).toISOString());
const kib = (n: number): string => `${Math.floor(n / 1024)} KiB`;

function storeLine(st: StatusView["store"]): string {
  const disk =
    st.freeBytes === null ? "free space unknown" : `${kib(st.freeBytes)} free (min ${kib(st.minFreeBytes)})`;
  const fault = st.fault === null ? "ok" : `FAULT since ${ts(st.faultSince ?? 0)}: ${st.fault}`;
  return `store ${fault}  held records ${st.pending}  disk ${disk}`;
}

/** The text of a refusable action's success. */
export type Detail = { detail: string };

export const detailText = (r: Detail): string => String(r.detail ?? "done");

/** The pilot line of `status` (the daemon's pilot-glue.ts builds the view). */
function pilotLine(p: NonNullable<StatusView["pilot"]>): string {
  const duty = p.pwm ? `${(p.dutyPermille / 10).toFixed(1)} %` : "off (+12 V)";
  const c = Object.entries(p.counters)
    .map(([k, v]) => `${k}=${v}`)
    .join(" ");
  return [
    `pilot ${p.state}  permit ${p.permit}${p.why.length ? ` (off: ${p.why.join(",")})` : ""}  pwm ${duty}  diode ${p.diode}`,
    `pilot mcu fw ${p.firmware ?? "?"}  last reset ${p.lastReset ?? "?"}  resets ${p.resets}  ${c}`,
  ].join("\n");
}

export function statusText(s: StatusView): string {
  const lines = [
    `pile ${s.pileId}  state ${s.state} since ${ts(s.since)}`,
    `contactor ${s.contactor}  lock ${s.lock}  vehicle ${s.vehiclePresent === null ? "n/a" : s.vehiclePresent ? "present" : "absent"}`,
    `ble ${s.ble}  meter ${s.meterFresh ? "fresh" : "stale"}  faults ${s.faults.length ? s.faults.join(",") : "none"}`,
    ...(s.unavailableBecause.length ? [`unavailable because: ${s.unavailableBecause.join("; ")}`] : []),
    storeLine(s.store),
    `security ${s.security.alarm ? "ALARM" : "ok"}  failed proofs ${s.security.recentFailedProofs} in 60 s  events ${s.security.events}${s.security.lastEventAt === null ? "" : ` (last ${ts(s.security.lastEventAt)})`}`,
    s.session
      ? `session code ${s.session.codeId} since ${ts(s.session.startedAt)} energy ${s.session.energyWh ?? "-"} Wh`
      : "no session",
    `uptime ${Math.floor(s.uptimeMs / 1000)} s  version ${s.version}`,
  ];
  if (s.pilot) lines.splice(2, 0, pilotLine(s.pilot));
  const l = Object.entries(s.links ?? {});
  if (l.length) lines.push(`link faults: ${l.map(([k, v]) => `${k}=${v}`).join(" ")}`);
  const c = Object.entries(s.counters);
  if (c.length) lines.push(`bad input: ${c.map(([k, v]) => `${k}=${v}`).join(" ")}`);
  return lines.join("\n");
}

export const meterText = (m: Extract<MeterView, { ok: true }>): string =>
  `energy ${m.energyImportWh} Wh  power ${m.powerW} W  ${m.voltageV} V  ${m.currentA} A  (age ${m.ageMs} ms)`;

/** How an ended session's energy is known, where it is not the plain meter difference at the end. */
function energyNote(s: SessionView): string {
  if (s.energySource === "unknown") return " (energy unknown: meter unreadable at boot)";
  if (s.energySource === "meter" && s.status === "interrupted") return " (closed from the meter)";
  return "";
}

export function sessionsText(list: SessionView[]): string {
  if (list.length === 0) return "no sessions";
  return list
    .map(
      (s) =>
        `${s.id.slice(0, 8)} ${ts(s.startedAt)} → ${ts(s.endedAt)} ${s.carrier} ${s.deviceId} code ${s.codeId.slice(0, 8)} ` +
        `${s.energyWh} Wh${energyNote(s)} ${s.status}${s.reason ? ` ${s.reason}` : ""}` +
        `${(s.faults ?? []).length > 0 ? ` fault ${s.faults.join(",")}` : ""}`,
    )
    .join("\n");
}

export function faultsText(list: FaultView[]): string {
  if (list.length === 0) return "no faults";
  return list
    .map(
      (f) => `${f.code} since ${ts(f.since)}${f.latched ? " LATCHED" : ""}${f.detail ? ` ${f.detail}` : ""}`,
    )
    .join("\n");
}

export function keysText(r: KeyView[] | Detail): string {
  if (!Array.isArray(r)) return detailText(r);
  if (r.length === 0) return "no keys";
  return r
    .map((k) => `key ${k.keyId} (0x${k.keyId.toString(16).padStart(8, "0")}) ${k.file} added ${ts(k.added)}`)
    .join("\n");
}

export const timeText = (t: TimeView): string =>
  `board ${ts(t.board)}\nfloor ${t.floor ? ts(t.floor) : "-"}\nnow   ${ts(t.now)}\nskew  ${t.skewMs} ms`;

export function logText(list: AuditView[]): string {
  if (list.length === 0) return "log empty";
  return list
    .map(
      (e) =>
        `${ts(e.at)} ${e.actor}${e.peer ? `(uid ${e.peer.uid} pid ${e.peer.pid})` : ""} ${e.action}${e.args?.length ? ` ${e.args.join(" ")}` : ""} → ${e.outcome}${e.detail ? ` (${e.detail})` : ""}`,
    )
    .join("\n");
}
