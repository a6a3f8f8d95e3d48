/** The store's guard: binds the database to its identity file (identity.ts) and keeps the marks. */
import type Database from "better-sqlite3";
import { bytes, readU64be } from "./codec.js";
import { StoreError } from "./errors.js";
import { type Identity, ledgerMac, type Marks, newIdentity, writeIdentity, writeMarks } from "./identity.js";
import { num, type Row, strOrNull } from "./rows.js";

type Db = Database.Database;

export const lived = (m: Marks): boolean => m.ledgerRows > 0 || m.floor > 0n || m.latched > 0;
const ZERO_MARKS: Marks = { ledgerRows: 0, floor: 0n, latched: 0 };

/** What the identity file needs while the store is open. */
export interface Guard {
  readonly key: Buffer;
  /** Reads the marks from the database and writes them if they changed (after a growth). */
  refresh(): void;
  /** Writes lowered marks before a change that lowers them (prune, clear). */
  lower(m: Partial<Marks>): void;
}

/** The marks as the database holds them now; the reads are prepared once, by `bind`. */
function markReader(db: Db): () => Marks {
  const rows = db.prepare("SELECT count(*) FROM ledger").pluck();
  const floor = db.prepare("SELECT ms FROM time_floor WHERE id = 1").pluck();
  const latched = db.prepare("SELECT count(*) FROM faults WHERE cleared_at IS NULL").pluck();
  return () => ({
    ledgerRows: Number(rows.get()),
    floor: readU64be(floor.get()),
    latched: Number(latched.get()),
  });
}

function rowMac(key: Buffer, r: Row): Buffer {
  return ledgerMac(key, {
    codeId: bytes(r["code_id"]),
    keyId: num(r["key_id"]),
    issuedAt: bytes(r["issued_at"]),
    expiresAt: bytes(r["expires_at"]),
    carrier: strOrNull(r["carrier"]),
    deviceId: strOrNull(r["device_id"]),
    recordedAt: num(r["recorded_at"]),
  });
}

export const macOk = (key: Buffer, r: Row): boolean => {
  const m = r["mac"];
  return m instanceof Uint8Array && m.length === 32 && rowMac(key, r).equals(Buffer.from(m));
};

/**
 * Binds the database to its identity file: checks the identity and the marks, verifies every
 * ledger row's MAC, and (first open, or a store older than the identity) creates the identity.
 * Undefined for a read-only open without a readable identity file.
 */
export function bind(
  db: Db,
  idPath: string,
  found: Identity | undefined,
  readonly: boolean,
  version: number,
): Guard | undefined {
  const row = db.prepare("SELECT store_id FROM store_identity WHERE id = 1").pluck().get();
  let ident = found;
  if (ident !== undefined) {
    if (row === undefined) {
      if (lived(ident.marks) || version === 0)
        throw new StoreError("LOST_PAST", "the database does not carry the store's identity");
    } else if (!Buffer.from(row as Uint8Array).equals(ident.storeId)) {
      throw new StoreError("LOST_PAST", "the database is another store's");
    }
  } else if (row !== undefined) {
    if (readonly) return undefined;
    throw new StoreError("LOST_PAST", "the store's identity file is missing");
  }
  if (readonly && (ident === undefined || row === undefined)) return undefined;
  if (ident === undefined || row === undefined) {
    // First open (or an older store): the identity file with zero marks first, then the row and
    // the MACs, then the marks — a crash in between leaves a state this same path completes.
    const id = ident ?? newIdentity(ZERO_MARKS);
    if (ident === undefined) writeIdentity(idPath, id);
    db.transaction(() => {
      db.prepare("INSERT INTO store_identity (id, store_id) VALUES (1, ?)").run(id.storeId);
      const upd = db.prepare("UPDATE ledger SET mac = ? WHERE code_id = ?");
      for (const r of db.prepare("SELECT * FROM ledger").all() as Row[])
        upd.run(rowMac(id.key, r), r["code_id"]);
    }).immediate();
    ident = id;
  }
  const readMarks = markReader(db);
  const have = readMarks();
  const m = ident.marks;
  if (have.ledgerRows < m.ledgerRows || have.floor < m.floor || have.latched < m.latched) {
    throw new StoreError(
      "LOST_PAST",
      "the store holds less than it recorded (ledger, time floor or latched faults)",
    );
  }
  for (const r of db.prepare("SELECT * FROM ledger").iterate() as IterableIterator<Row>) {
    if (!macOk(ident.key, r)) throw new StoreError("CORRUPT", "a ledger row fails its check");
  }
  let marks = m;
  const key = ident.key;
  const storeId = ident.storeId;
  const put = (next: Marks) => {
    if (next.ledgerRows === marks.ledgerRows && next.floor === marks.floor && next.latched === marks.latched)
      return;
    writeMarks(idPath, { storeId, key, marks: next });
    marks = next;
  };
  if (!readonly) put(have);
  return {
    key,
    refresh: () => {
      if (!readonly) put(readMarks());
    },
    lower: (l) => {
      if (!readonly) put({ ...marks, ...l });
    },
  };
}
