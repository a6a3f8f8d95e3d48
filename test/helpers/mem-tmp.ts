/**
 * A temp folder for the tiers that need real files but not a real disk (the runtime tiers: their
 * store is a real SQLite file, what they check is the order of writes, not the platter). It is on
 * /dev/shm (tmpfs: an fsync costs nothing) when that is there and TMPDIR does not name a place of
 * its own (the disk-full tier sets TMPDIR to its small tmpfs); else in the usual temp folder.
 */
import { accessSync, constants, mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const SHM = "/dev/shm";

function memBase(): string {
  if (process.env.TMPDIR) return tmpdir();
  try {
    if (statSync(SHM).isDirectory()) {
      accessSync(SHM, constants.W_OK);
      return SHM;
    }
  } catch {
    // no tmpfs here: the usual temp folder
  }
  return tmpdir();
}

export const memTmpDir = (prefix: string): string => mkdtempSync(join(memBase(), prefix));
