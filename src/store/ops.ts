/**
 * The durable writes the control loop makes, as plain data: the same description is applied
 * on the loop's own connection (when nothing is live) or posted to the write worker (while the
 * contactor may be live), so both paths perform exactly the same statements.
 */
import type { AuditEntry, SessionBegin, SessionFinish, SessionProgress, Store } from "./types.js";

export type StoreOp =
  | { op: "sessions.begin"; begin: SessionBegin }
  | { op: "sessions.progress"; sessionId: Uint8Array; progress: SessionProgress }
  | { op: "sessions.finish"; sessionId: Uint8Array; finish: SessionFinish }
  | { op: "faults.raise"; code: string; detail: string; at: number }
  | { op: "faults.clear"; code: string; by: string; at: number }
  | { op: "audit.append"; entry: AuditEntry };

export type StoreOpName = StoreOp["op"];

/** Performs one write on `store`; throws what the store throws. */
export function applyStoreOp(store: Store, o: StoreOp): void {
  switch (o.op) {
    case "sessions.begin":
      store.sessions.begin(o.begin);
      return;
    case "sessions.progress":
      store.sessions.progress(o.sessionId, o.progress);
      return;
    case "sessions.finish":
      store.sessions.finish(o.sessionId, o.finish);
      return;
    case "faults.raise":
      store.faults.raise(o.code, o.detail, o.at);
      return;
    case "faults.clear":
      store.faults.clear(o.code, o.by, o.at);
      return;
    case "audit.append":
      store.audit.append(o.entry);
      return;
  }
}

/** Writes performed off the control loop, each acknowledged back to it. */
export interface StoreWriter {
  /** Resolves once the write is durable; rejects with the store's error message. */
  submit(o: StoreOp): Promise<void>;
  /** Writes submitted and not yet acknowledged. */
  pending(): number;
  close(): Promise<void>;
}
