/**
 * One daemon per state directory. Two daemons on one pile would fight over the relays, so the
 * daemon takes an exclusive lock before it opens any line and holds it for its whole life: a
 * dedicated SQLite file (`piled.lock`) in the state directory, in `locking_mode=EXCLUSIVE` with
 * a write transaction left open. The lock is the kernel's (fcntl), so any death of the holder,
 * SIGKILL included, releases it; a pid that was reused or a socket that failed cannot fool it.
 * The holder's pid is written beside it (`piled.pid`) only to name it in the refusal.
 *
 * `piled --safe-outputs` (systemd's ExecStopPost) does not take this lock: it runs after the
 * daemon has exited, when the lock is already free, and it must work even if it is not.
 */
import Database from "better-sqlite3";
import { err, ok, type Result } from "../protocol/bytes.js";
import { readSmallFile, writeFileDurable } from "../sdk/files.js";

export const lockPath = (stateDir: string): string => `${stateDir}/piled.lock`;
export const pidPath = (stateDir: string): string => `${stateDir}/piled.pid`;

export interface InstanceLock {
  release(): void;
}

export interface LockRefused {
  code: "HELD" | "IO";
  message: string;
}

/** Takes the state directory's lock, or says who holds it. Never throws; never waits. */
export function takeInstanceLock(stateDir: string): Result<InstanceLock, LockRefused> {
  let db: Database.Database;
  try {
    db = new Database(lockPath(stateDir), { timeout: 0 });
  } catch (e) {
    return err({
      code: "IO",
      message: `lock ${lockPath(stateDir)}: ${e instanceof Error ? e.message : String(e)}`,
    });
  }
  try {
    db.pragma("locking_mode = EXCLUSIVE");
    db.exec("CREATE TABLE IF NOT EXISTS holder (pid INTEGER)");
    db.exec("BEGIN EXCLUSIVE");
    db.prepare("DELETE FROM holder").run();
    db.prepare("INSERT INTO holder (pid) VALUES (?)").run(process.pid);
  } catch (e) {
    db.close();
    const code = (e as { code?: string }).code ?? "";
    if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED")) {
      const holder = readSmallFile(pidPath(stateDir), { what: "pid file", maxBytes: 64 });
      const pid = holder.ok ? /^\d+$/.exec(holder.value.trim())?.[0] : undefined;
      return err({
        code: "HELD",
        message: `another piled holds ${lockPath(stateDir)}${pid ? ` (pid ${pid})` : ""}`,
      });
    }
    return err({
      code: "IO",
      message: `lock ${lockPath(stateDir)}: ${e instanceof Error ? e.message : String(e)}`,
    });
  }
  // Best effort: the pid only names the holder in a refusal; the lock is what counts.
  writeFileDurable(pidPath(stateDir), `${process.pid}\n`, { mode: 0o644 });
  return ok({
    release: () => {
      try {
        db.exec("ROLLBACK");
      } catch {}
      db.close();
    },
  });
}
