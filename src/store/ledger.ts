/** The store's replay ledger and time floor. */
import { carrier, id16, ident, readU64be, u32, u64, u64be, u64sat } from "./codec.js";
import type { Ctx } from "./context.js";
import { StoreError, sqliteCode } from "./errors.js";
import { macOk } from "./guard.js";
import { ledgerMac } from "./identity.js";
import { ledgerEntry, type Row } from "./rows.js";
import type { Ledger, LedgerRecord, TimeFloor } from "./types.js";

function ledgerStatements({ prep }: Ctx) {
  return {
    sIsUsed: prep("ledger", "SELECT 1 FROM ledger WHERE code_id = ?"),
    sLedgerRow: prep("ledger", "SELECT * FROM ledger WHERE code_id = ?"),
    sPruneCount: prep("ledger", "SELECT count(*) FROM ledger WHERE expires_at < ?")?.pluck(),
    sLedgerIns: prep(
      "ledger",
      `INSERT INTO ledger (code_id, key_id, issued_at, expires_at, carrier, device_id, recorded_at, mac)
     VALUES (@codeId, @keyId, @issuedAt, @expiresAt, @carrier, @deviceId, @recordedAt, @mac)`,
    ),
    sPrune: prep("ledger", "DELETE FROM ledger WHERE expires_at < ?"),
    sCount: prep("ledger", "SELECT count(*) FROM ledger")?.pluck(),
    sFloorGet: prep("time_floor", "SELECT ms FROM time_floor WHERE id = 1"),
    sFloorRaise: prep("time_floor", "UPDATE time_floor SET ms = @ms WHERE id = 1 AND ms < @ms"),
  };
}

export type LedgerParts = ReturnType<typeof ledgerParts>;

/** The pieces the sessions' beginWithCode shares with the ledger. */
export function ledgerParts(c: Ctx) {
  const { need, guard } = c;
  const s = ledgerStatements(c);
  /** The ledger's row of a code to record, checked; its MAC when the store is guarded. */
  const ledgerRow = (e: LedgerRecord) => {
    if (typeof e !== "object" || e === null) throw new StoreError("INVALID", "ledger entry is not an object");
    const issuedAt = u64(e.issuedAt, "issuedAt");
    const expiresAt = u64sat(e.expiresAt, "expiresAt");
    if (expiresAt < issuedAt) throw new StoreError("INVALID", "expiresAt is before issuedAt");
    const fields = {
      codeId: id16(e.codeId, "codeId"),
      keyId: u32(e.keyId, "keyId"),
      issuedAt: u64be(issuedAt),
      expiresAt: u64be(expiresAt),
      carrier: e.carrier === undefined ? null : carrier(e.carrier, "carrier"),
      deviceId: e.deviceId === undefined ? null : ident(e.deviceId, "deviceId"),
      recordedAt: c.now(),
    };
    return { ...fields, mac: guard === undefined ? null : ledgerMac(guard.key, fields) };
  };
  /** The code's row, its MAC checked: a row that fails it is "CORRUPT", never an unused code. */
  const lookUp = (id: Uint8Array): Row | undefined => {
    const r = need(s.sLedgerRow, "ledger").get(id) as Row | undefined;
    if (r !== undefined && guard !== undefined && !macOk(guard.key, r))
      throw new StoreError("CORRUPT", "a ledger row fails its check");
    return r;
  };
  /** Inside a transaction: inserts the code and raises the floor to its issuedAt. */
  const insertLedger = (row: ReturnType<typeof ledgerRow>) => {
    try {
      need(s.sLedgerIns, "ledger").run(row);
    } catch (err) {
      if (sqliteCode(err) === "SQLITE_CONSTRAINT_PRIMARYKEY") {
        throw new StoreError("DUPLICATE", "codeId is already recorded");
      }
      throw err;
    }
    need(s.sFloorRaise, "time_floor").run({ ms: row.issuedAt });
  };

  return { s, ledgerRow, lookUp, insertLedger };
}

export function makeLedger(c: Ctx, p: LedgerParts): Ledger {
  const { op, need, guard, db } = c;
  const { s, ledgerRow, lookUp, insertLedger } = p;
  return {
    isUsed: (codeId) => {
      const id = id16(codeId, "codeId");
      return op("ledger.isUsed", () => lookUp(id) !== undefined);
    },
    record: (e: LedgerRecord) => {
      const row = ledgerRow(e);
      op("ledger.record", () => {
        db.transaction(() => insertLedger(row)).immediate();
        guard?.refresh();
      });
    },
    get: (codeId) => {
      const id = id16(codeId, "codeId");
      return op("ledger.get", () => {
        const r = lookUp(id);
        return r === undefined ? undefined : ledgerEntry(r);
      });
    },
    prune: (nowMs) => {
      const cut = u64be(u64sat(nowMs, "nowMs"));
      return op("ledger.prune", () => {
        const gone = Number(need(s.sPruneCount, "ledger").get(cut));
        if (gone === 0) return 0;
        guard?.lower({ ledgerRows: Number(need(s.sCount, "ledger").get()) - gone });
        return need(s.sPrune, "ledger").run(cut).changes;
      });
    },
    count: () => op("ledger.count", () => Number(need(s.sCount, "ledger").get())),
  };
}

export function makeFloor({ op, need, guard }: Ctx, { s }: LedgerParts): TimeFloor {
  return {
    get: () =>
      op("floor.get", () => readU64be((need(s.sFloorGet, "time_floor").get() as Row | undefined)?.["ms"])),
    raise: (v) => {
      const b = u64be(u64(v, "floor"));
      op("floor.raise", () => {
        need(s.sFloorRaise, "time_floor").run({ ms: b });
        guard?.refresh();
      });
    },
  };
}
