/**
 * What a CSMS must see of the transactions: for each transactionId, the TransactionEvents in
 * arrival order with seqNo 0, 1, 2… contiguous, Started first and Ended last, nothing lost or
 * reordered. A re-send of the same seqNo is allowed only after a kill mid-send (the daemon could
 * not know the CSMS had it): it is de-duplicated by (transactionId, seqNo), and its content must
 * be identical to the first copy.
 */
import assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";

export interface TxEvent {
  eventType: string;
  seqNo: number;
  offline?: boolean;
  transactionInfo: { transactionId: string; stoppedReason?: string };
  meterValue?: { sampledValue: { value: number; context?: string }[] }[];
  [k: string]: unknown;
}

export interface TxReport {
  events: Map<string, TxEvent[]>;
  resends: number;
}

export function checkTransactions(calls: Record<string, unknown>[]): TxReport {
  const events = new Map<string, TxEvent[]>();
  let resends = 0;
  for (const c of calls as unknown as TxEvent[]) {
    const id = c.transactionInfo.transactionId;
    const list = events.get(id) ?? [];
    events.set(id, list);
    const same = list.find((e) => e.seqNo === c.seqNo);
    if (same !== undefined) {
      assert.ok(
        isDeepStrictEqual(same, c),
        `re-send of ${id}/${c.seqNo} differs:\n${JSON.stringify(same)}\n${JSON.stringify(c)}`,
      );
      assert.equal(list.at(-1)?.seqNo, c.seqNo, `re-send of ${id}/${c.seqNo} is not of the last event`);
      resends++;
      continue;
    }
    assert.equal(c.seqNo, list.length, `${id}: seqNo ${c.seqNo} after ${list.map((e) => e.seqNo)}`);
    if (list.length === 0) assert.equal(c.eventType, "Started", `${id}: first event is ${c.eventType}`);
    else assert.notEqual(list.at(-1)?.eventType, "Ended", `${id}: an event after Ended`);
    list.push(c);
  }
  return { events, resends };
}

/** The Wh value of an event's first sampled value. */
export const meterWh = (e: TxEvent): number | undefined => e.meterValue?.[0]?.sampledValue[0]?.value;
