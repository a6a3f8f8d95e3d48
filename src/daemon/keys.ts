/**
 * The key directory: one pile virtual key per file (`pilectl key new` format, mode 0600).
 * Loading is all-or-nothing: one bad file (loose permissions, malformed, duplicate keyId) refuses
 * the whole load, named, and the keys already held stay as they were (SIGHUP reload keeps the
 * running session and the old keys). The directory itself must be a real directory (no symbolic
 * link) owned by the daemon's user or root and writable by nobody else; every file is a regular
 * file owned likewise (sdk/files.ts). Retired keys move to `retired/` and are never deleted.
 */
import { mkdirSync, readdirSync, renameSync, statSync } from "node:fs";
import { join } from "node:path";
import { err, fromHex, ok, type Result } from "../protocol/bytes.js";
import { KeyRing } from "../protocol/code.js";
import { MAX_INFO_KEYS } from "../protocol/messages.js";
import { nodeSuite } from "../protocol/node-suite.js";
import { checkTrustedDir, fsyncDir } from "../sdk/files.js";
import { readKeyFile, writeKeyFile } from "../sdk/keyfile.js";

/** As many keys as INFO can list (PROTOCOL.md §3: keyCount ≤ 16). */
export const MAX_KEYS = MAX_INFO_KEYS;

export class KeyDirError extends Error {
  override readonly name = "KeyDirError";
  constructor(
    readonly code:
      | "UNREADABLE"
      | "BAD_DIR"
      | "BAD_FILE"
      | "DUPLICATE"
      | "TOO_MANY"
      | "EXISTS"
      | "NOT_FOUND"
      | "BAD_KEY"
      | "IO",
    message: string,
  ) {
    super(message);
  }
}

export interface KeyFileInfo {
  keyId: number;
  file: string;
  added: number;
}

const KEY_FILE_RE = /\.json$/;

export class KeyDirectory {
  ring = new KeyRing(nodeSuite);
  files = new Map<number, KeyFileInfo>();

  /**
   * What the last load found worth a warning but not a refusal: a directory others may list (the
   * key ids show; the 0600 files stay unreadable). 0700 is what `pilectl` makes.
   */
  warnings: string[] = [];

  constructor(readonly dir: string) {}

  /** Reads every *.json in the directory; on any error nothing changes. */
  load(): Result<number, KeyDirError> {
    // Anyone who may write in the directory may plant a key: refuse it before reading a file.
    const trusted = checkTrustedDir(this.dir, "key directory");
    if (!trusted.ok)
      return err(
        new KeyDirError(trusted.error.code === "NOT_FOUND" ? "UNREADABLE" : "BAD_DIR", trusted.error.message),
      );
    const warnings: string[] = [];
    try {
      const mode = statSync(this.dir).mode & 0o777;
      if ((mode & 0o007) !== 0)
        warnings.push(
          `key directory ${this.dir} is ${mode.toString(8).padStart(4, "0")}: other users may list it; 0700 is advised`,
        );
    } catch {
      // checked just above; a race is caught by the read below
    }
    let names: string[];
    try {
      names = readdirSync(this.dir)
        .filter((n) => KEY_FILE_RE.test(n))
        .sort();
    } catch (e) {
      return err(
        new KeyDirError("UNREADABLE", `key directory ${this.dir}: ${(e as NodeJS.ErrnoException).code ?? e}`),
      );
    }
    const ring = new KeyRing(nodeSuite);
    const files = new Map<number, KeyFileInfo>();
    for (const name of names) {
      const file = join(this.dir, name);
      const r = readKeyFile(file);
      if (!r.ok) return err(new KeyDirError("BAD_FILE", r.error.message));
      const prior = files.get(r.value.keyId);
      if (prior)
        return err(
          new KeyDirError("DUPLICATE", `keyId ${r.value.keyId} is in both ${prior.file} and ${file}`),
        );
      if (files.size >= MAX_KEYS)
        return err(new KeyDirError("TOO_MANY", `more than ${MAX_KEYS} keys in ${this.dir}`));
      ring.add(r.value.keyId, r.value.key);
      files.set(r.value.keyId, { keyId: r.value.keyId, file, added: safeMtime(file) });
    }
    this.ring = ring;
    this.files = files;
    this.warnings = warnings;
    return ok(files.size);
  }

  ids(): number[] {
    return this.ring.ids();
  }

  list(): KeyFileInfo[] {
    return [...this.files.values()].sort((a, b) => a.keyId - b.keyId);
  }

  /** Writes a new key file (0600) and loads it. */
  add(keyId: number, hex: string): Result<KeyFileInfo, KeyDirError> {
    const key = fromHex(hex);
    if (key?.length !== 32) return err(new KeyDirError("BAD_KEY", "a key is 64 hex digits"));
    if (this.files.has(keyId)) return err(new KeyDirError("EXISTS", `keyId ${keyId} is already held`));
    if (this.files.size >= MAX_KEYS)
      return err(new KeyDirError("TOO_MANY", `a pile holds at most ${MAX_KEYS} keys`));
    const file = join(this.dir, `key-${keyId}.json`);
    const w = writeKeyFile(file, keyId, key);
    if (!w.ok) return err(new KeyDirError(w.error.code === "EXISTS" ? "EXISTS" : "IO", w.error.message));
    const loaded = this.load();
    if (!loaded.ok) return loaded;
    return ok(this.files.get(keyId)!);
  }

  /** Moves a key file to retired/ and drops the key. */
  retire(keyId: number): Result<KeyFileInfo, KeyDirError> {
    const info = this.files.get(keyId);
    if (!info) return err(new KeyDirError("NOT_FOUND", `keyId ${keyId} is not held`));
    try {
      const retired = join(this.dir, "retired");
      mkdirSync(retired, { recursive: true, mode: 0o700 });
      renameSync(info.file, join(retired, `${Date.now()}-${info.file.split("/").pop()}`));
      fsyncDir(retired);
      fsyncDir(this.dir);
    } catch (e) {
      return err(
        new KeyDirError("IO", `cannot retire ${info.file}: ${(e as NodeJS.ErrnoException).code ?? e}`),
      );
    }
    this.ring.delete(keyId);
    this.files.delete(keyId);
    return ok(info);
  }
}

function safeMtime(file: string): number {
  try {
    return Math.round(statSync(file).mtimeMs);
  } catch {
    return 0;
  }
}
