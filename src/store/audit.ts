/** The store's audit log, bounded to its newest rows. */
import { actor, count, ms, text } from "./codec.js";
import type { Ctx } from "./context.js";
import { StoreError } from "./errors.js";
import { auditRecord, type Row } from "./rows.js";
import type { AuditLog } from "./types.js";

function auditStatements({ prep }: Ctx) {
  return {
    // --- audit ---
    sAuditIns: prep(
      "audit",
      "INSERT INTO audit (at, actor, action, outcome, detail, uid, pid) VALUES (@at, @actor, @action, @outcome, @detail, @uid, @pid)",
    ),
    sAuditList: prep(
      "audit",
      "SELECT * FROM audit WHERE @actor IS NULL OR actor = @actor ORDER BY id DESC LIMIT @limit",
    ),
    sAuditTrim: prep(
      "audit",
      "DELETE FROM audit WHERE id <= (SELECT id FROM audit ORDER BY id DESC LIMIT 1 OFFSET @keep)",
    ),
  };
}

export function makeAudit(c: Ctx, auditMaxRows: number): AuditLog {
  const { op, need, db } = c;
  const st = auditStatements(c);
  return {
    append: (e) => {
      if (typeof e !== "object" || e === null)
        throw new StoreError("INVALID", "audit entry is not an object");
      const row = {
        at: ms(e.at, "at"),
        actor: actor(e.actor, "actor"),
        action: text(e.action, "action", 1),
        outcome: text(e.outcome, "outcome", 1),
        detail: e.detail === undefined ? null : text(e.detail, "audit detail"),
        uid: e.uid === undefined ? null : id32(e.uid, "uid"),
        pid: e.pid === undefined ? null : id32(e.pid, "pid"),
      };
      // The table is bounded: the insert and the trim to the cap are one transaction (one fsync).
      op("audit.append", () =>
        db
          .transaction(() => {
            need(st.sAuditIns, "audit").run(row);
            need(st.sAuditTrim, "audit").run({ keep: auditMaxRows });
          })
          .immediate(),
      );
    },
    list: (q) => {
      if (typeof q !== "object" || q === null) throw new StoreError("INVALID", "query is not an object");
      const args = {
        limit: count(q.limit, "limit"),
        actor: q.actor === undefined ? null : actor(q.actor, "actor"),
      };
      return op("audit.list", () => (need(st.sAuditList, "audit").all(args) as Row[]).map(auditRecord));
    },
    trim: (keep) => {
      const k = count(keep, "keep");
      return op("audit.trim", () => need(st.sAuditTrim, "audit").run({ keep: k }).changes);
    },
  };
}

/** A uid or pid: an integer 0 … 2^32−1. */
function id32(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 0xffff_ffff)
    throw new StoreError("INVALID", `${what} is not an id 0…2^32−1`);
  return v;
}
