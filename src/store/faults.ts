/** The store's latched faults. */
import { count, ms, text } from "./codec.js";
import type { Ctx } from "./context.js";
import { StoreError } from "./errors.js";
import { faultRecord, type Row } from "./rows.js";
import type { Faults } from "./types.js";

function faultStatements({ prep }: Ctx) {
  return {
    sFaultLatched: prep("faults", "SELECT id FROM faults WHERE code = ? AND cleared_at IS NULL"),
    sFaultIns: prep(
      "faults",
      "INSERT INTO faults (code, detail, raised_at, last_at) VALUES (@code, @detail, @at, @at)",
    ),
    sFaultBump: prep(
      "faults",
      "UPDATE faults SET count = count + 1, last_at = max(last_at, @at) WHERE id = @id",
    ),
    sFaultClear: prep(
      "faults",
      "UPDATE faults SET cleared_at = @at, cleared_by = @by WHERE cleared_at IS NULL AND (@code IS NULL OR code = @code)",
    ),
    sFaultActive: prep("faults", "SELECT * FROM faults WHERE cleared_at IS NULL ORDER BY id"),
    sFaultHistory: prep("faults", "SELECT * FROM faults ORDER BY id DESC LIMIT ?"),
  };
}

export function makeFaults(c: Ctx): Faults {
  const { op, need, guard, db } = c;
  const st = faultStatements(c);
  return {
    raise: (code, detail, at) => {
      const row = { code: faultCode(code), detail: text(detail, "fault detail"), at: ms(at, "at") };
      return op("faults.raise", () => {
        const added = db
          .transaction(() => {
            const latched = need(st.sFaultLatched, "faults").get(row.code) as Row | undefined;
            if (latched !== undefined) {
              need(st.sFaultBump, "faults").run({ id: latched["id"], at: row.at });
              return false;
            }
            need(st.sFaultIns, "faults").run(row);
            return true;
          })
          .immediate();
        if (added) guard?.refresh();
        return added;
      });
    },
    clear: (code, by, at) => {
      const row = {
        code: code === "all" ? null : faultCode(code),
        by: text(by, "cleared by", 1),
        at: ms(at, "at"),
      };
      return op("faults.clear", () => {
        if (guard !== undefined) {
          const active = need(st.sFaultActive, "faults").all() as Row[];
          const left = active.filter((r) => row.code !== null && r["code"] !== row.code).length;
          if (left < active.length) guard.lower({ latched: left });
        }
        return need(st.sFaultClear, "faults").run(row).changes;
      });
    },
    active: () =>
      op("faults.active", () => (need(st.sFaultActive, "faults").all() as Row[]).map(faultRecord)),
    history: (limit) => {
      const n = count(limit, "limit");
      return op("faults.history", () => (need(st.sFaultHistory, "faults").all(n) as Row[]).map(faultRecord));
    },
  };
}

function faultCode(v: unknown): string {
  const c = text(v, "fault code", 1);
  if (c.length > 64 || c === "all") throw new StoreError("INVALID", "fault code is out of range or reserved");
  return c;
}
