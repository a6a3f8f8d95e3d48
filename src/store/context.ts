/** What every room of the store shares: the open database, its guard and the statement helpers. */
import type Database from "better-sqlite3";
import { ms } from "./codec.js";
import { StoreError, toStoreError } from "./errors.js";
import type { Guard } from "./guard.js";
import { expectedTables, type Migration } from "./schema.js";

export type Db = Database.Database;
export type Statement = Database.Statement;

export interface Ctx {
  readonly db: Db;
  readonly guard: Guard | undefined;
  /** Runs `f` on the open database; a failure becomes a StoreError naming `what`. */
  op<T>(what: string, f: () => T): T;
  /** The statement prepared once; undefined when this store (a test migration list) lacks `table`. */
  prep(table: string, sql: string): Statement | undefined;
  /** The statement, or "IO" when the store has no `table`. */
  need<S>(s: S | undefined, table: string): S;
  /** The store clock's time, Unix ms. */
  now(): number;
}

export function makeCtx(
  db: Db,
  version: number,
  migrations: readonly Migration[],
  clock: () => number,
  guard: Guard | undefined,
): Ctx {
  const has = (table: string) => version >= 1 && expectedTables(version, migrations).includes(table);
  return {
    db,
    guard,
    op: <T>(what: string, f: () => T): T => {
      if (!db.open) throw new StoreError("CLOSED", `${what}: the store is closed`);
      try {
        return f();
      } catch (e) {
        throw toStoreError(e, what);
      }
    },
    // Statements are prepared once; a store built over a test migration list may lack tables.
    prep: (table, sql) => (has(table) ? db.prepare(sql) : undefined),
    need: <S>(s: S | undefined, table: string): S => {
      if (s === undefined) throw new StoreError("IO", `this store has no ${table} table`);
      return s;
    },
    now: () => ms(clock(), "the store clock's time"),
  };
}
