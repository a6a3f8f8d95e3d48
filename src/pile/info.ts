/** The Info characteristic's value (PROTOCOL.md §3) from a snapshot of the core. */
import { encodeMessage, type Info, MAX_INFO_KEYS, PileState, PROTOCOL_VERSION } from "../protocol/index.js";
import type { PileSnapshot } from "./types.js";

/** INFO for the snapshot; at most 16 key ids, lowest first (duplicates and non-u32 dropped). */
export function infoMessage(
  snapshot: Pick<PileSnapshot, "pileId" | "state">,
  keyIds: readonly number[],
): Info {
  const ids = [...new Set(keyIds)]
    .filter((k) => Number.isInteger(k) && k >= 0 && k <= 0xffffffff)
    .sort((a, b) => a - b)
    .slice(0, MAX_INFO_KEYS);
  return {
    type: "INFO",
    version: PROTOCOL_VERSION,
    state: PileState[snapshot.state],
    pileId: snapshot.pileId,
    keyIds: ids,
  };
}

/** The encoded INFO, ready for the characteristic (one snapshot per read). */
export function infoBytes(
  snapshot: Pick<PileSnapshot, "pileId" | "state">,
  keyIds: readonly number[],
): Uint8Array {
  return encodeMessage(infoMessage(snapshot, keyIds));
}
