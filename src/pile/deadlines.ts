/**
 * The core's deadlines as data: which are armed follows from the state (relays awaiting their
 * feedback, the record acknowledgement, the meter's freshness, the duration limit, the STATUS
 * period, each connection's exchange or idle time). `due` lists them in a fixed order (the first
 * of equal times fires first); `fire` says what each one does.
 */
import { exchangeTimeout, idleDrop, busy as isBusy } from "./exchange.js";
import { recordFailed } from "./handshake.js";
import type { Kernel } from "./kernel.js";
import { protocolProofPolicy } from "./rate-limit.js";
import { contactorTimeout, lockTimeout } from "./relays.js";
import { beginStop, periodicStatus } from "./session.js";

export type DeadlineKind =
  | "contactor"
  | "lock"
  | "record"
  | "meterWait"
  | "meterStale"
  | "duration"
  | "status"
  | "exchange"
  | "idle";

export interface Deadline {
  at: number;
  kind: DeadlineKind;
  /** The connection of an exchange or idle deadline. */
  connId?: string;
}

/** Every armed deadline, in firing order for equal times. */
export function armed(k: Kernel): Deadline[] {
  const out: Deadline[] = [];
  const c = k.contactor;
  if (c.deadline !== undefined) out.push({ at: c.deadline, kind: "contactor" });
  if (k.lock.deadline !== undefined) out.push({ at: k.lock.deadline, kind: "lock" });
  const s = k.session;
  if (s) {
    if (k.phase === "authorizing") out.push({ at: s.recordDeadline, kind: "record" });
    if (k.phase === "locking" && s.meterWaitDeadline !== undefined)
      out.push({ at: s.meterWaitDeadline, kind: "meterWait" });
    if ((k.phase === "closing" || k.phase === "charging") && c.cmd === true)
      out.push({ at: k.meter ? k.meter.takenAt + k.cfg.meterStaleMs : k.now, kind: "meterStale" });
    if (k.phase === "charging" && s.chargingSince !== undefined && s.code.claims.maxDurationS > 0)
      out.push({ at: s.chargingSince + s.code.claims.maxDurationS * 1000, kind: "duration" });
    if (k.phase === "charging" && s.nextStatusAt !== undefined)
      out.push({ at: s.nextStatusAt, kind: "status" });
  }
  for (const [connId, conn] of k.conns) {
    const ex = conn.exchange;
    if (ex && !ex.answered)
      out.push({ at: ex.startedAt + k.cfg.exchangeTimeoutMs, kind: "exchange", connId });
    else if (!isBusy(k, connId, conn))
      out.push({ at: conn.busyAt + protocolProofPolicy.idleDropMs, kind: "idle", connId });
  }
  return out;
}

/** The earliest armed deadline at or before `mono` (or at any time), first of equal times. */
export function earliest(k: Kernel, mono = Number.POSITIVE_INFINITY): Deadline | undefined {
  let next: Deadline | undefined;
  for (const d of armed(k)) if (d.at <= mono && (next === undefined || d.at < next.at)) next = d;
  return next;
}

export function fire(k: Kernel, d: Deadline): void {
  switch (d.kind) {
    case "contactor":
      contactorTimeout(k);
      return;
    case "lock":
      lockTimeout(k);
      return;
    case "record":
      recordFailed(k, "record not acknowledged in time");
      return;
    case "meterWait":
    case "meterStale":
      beginStop(k, "METER_LOST");
      return;
    case "duration":
      beginStop(k, "DURATION_LIMIT");
      return;
    case "status":
      if (k.session) periodicStatus(k, k.session);
      return;
    case "exchange":
      exchangeTimeout(k, d.connId ?? "");
      return;
    case "idle":
      idleDrop(k, d.connId ?? "");
      return;
  }
}
