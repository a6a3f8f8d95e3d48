/**
 * The protocol state the core shows (PROTOCOL.md §3) and its announcement: a `state` effect on
 * every change, and a STATUS to the session's subscribers, after the record of the energy it
 * tells.
 */
import { PileState, type PileStateName } from "../protocol/index.js";
import type { Kernel, Session } from "./kernel.js";
import { sessionUpdate } from "./session.js";

const U32 = 0xffffffff;
const clampU32 = (n: number) => (Number.isFinite(n) ? Math.min(U32, Math.max(0, Math.floor(n))) : 0);

export function stateOf(k: Kernel): PileStateName {
  if (k.faults.size > 0) return "FAULTED";
  switch (k.phase) {
    case "unbooted":
    case "booting":
    case "relayTest":
      return "UNAVAILABLE";
    case "authorizing":
      return "AUTHORIZING";
    case "locking":
      return "PREPARING";
    case "closing":
    case "charging":
      return "CHARGING";
    case "opening":
    case "unlocking":
      return "FINISHING";
    case "idle":
      return unavailableBecause(k).length > 0 ? "UNAVAILABLE" : "AVAILABLE";
  }
}

/** An idle pile that cannot take a session says so: set unavailable, meter stale, radio down. */
export function unavailableBecause(k: Kernel): string[] {
  const why: string[] = [];
  if (k.unavailable) why.push("technician");
  if (!k.meterFresh()) why.push("meter stale");
  if (k.radioDown) why.push("radio down");
  why.push(...k.storeProblems);
  return why;
}

export function syncState(k: Kernel): void {
  const st = stateOf(k);
  if (st === k.lastState) return;
  k.lastState = st;
  k.out.push({ type: "state", state: st });
  const s = k.session;
  if (!s?.recorded) return;
  // The energy the STATUS tells is written first (records precede sends in the batch).
  if (!s.ended && s.recordedWh !== k.sessionEnergy(s)) sessionUpdate(k, s);
  statusTo(k, s.subscribers, st, s);
}

/** `final`: the session has ended; its totals stay, the power is 0 (§3). */
export function statusTo(
  k: Kernel,
  conns: Iterable<string>,
  state: PileStateName,
  s: Session | undefined,
  final = false,
): void {
  for (const id of conns) {
    k.send(id, {
      type: "STATUS",
      state: PileState[state],
      energyWh: clampU32(s ? Math.min(k.sessionEnergy(s), s.recordedWh) : 0),
      powerW: clampU32(s && !final ? k.powerNow() : 0),
      elapsedS: clampU32(s ? k.elapsedS(s) : 0),
    });
  }
}
