/**
 * Pile virtual key files (Node only): `{"keyId": N, "key": "<64 hex>"}`, mode 0600.
 * A file readable or writable by group or others is refused: the key would not be secret.
 * Error messages name the file and the problem, never the key.
 */
import { z } from "zod";
import { err, fromHex, ok, type Result, toHex } from "../protocol/bytes.js";
import { KEY_LENGTH } from "../protocol/code.js";
import { type KeyFileError, SdkError } from "./errors.js";
import { readSmallFile, type SafeFileCode, writeFileDurable } from "./files.js";

export interface KeyFileContents {
  keyId: number;
  key: Uint8Array;
}

const KeyFileSchema = z.strictObject({
  keyId: z.number().int().min(0).max(0xffffffff),
  key: z.string().regex(/^[0-9a-fA-F]{64}$/),
});

const FIELD_PROBLEM: Record<string, string> = {
  keyId: "keyId must be a whole number in 0..4294967295",
  key: `key must be ${KEY_LENGTH * 2} hex digits`,
};

const fail = (code: KeyFileError["code"], message: string) => err(new SdkError(code, message));

/** SafeFileError codes as key file error codes. */
const READ_CODE: Record<SafeFileCode, KeyFileError["code"]> = {
  NOT_FOUND: "NOT_FOUND",
  NOT_REGULAR: "MALFORMED",
  SYMLINK: "PERMISSIONS",
  OWNER: "PERMISSIONS",
  MODE: "PERMISSIONS",
  TOO_LARGE: "MALFORMED",
  IO: "IO",
};

/**
 * Reads and checks one key file. Everything is checked on the opened descriptor (files.ts): a
 * regular file (never a link or a FIFO), owned by this user or root, mode 0600 or stricter, at
 * most 64 KiB.
 */
export function readKeyFile(path: string): Result<KeyFileContents, KeyFileError> {
  const read = readSmallFile(path, { what: "key file", owner: true, forbidMode: 0o077 });
  if (!read.ok) return fail(READ_CODE[read.error.code], read.error.message);
  const text = read.value;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return fail("MALFORMED", `key file ${path} is not JSON`);
  }
  const parsed = KeyFileSchema.safeParse(json);
  if (!parsed.success) {
    // Name the fields only: a zod message could quote the value, and the value may be the key.
    const problems = [
      ...new Set(
        parsed.error.issues.map((i) => {
          if (i.code === "unrecognized_keys") return `unexpected field(s) ${i.keys.join(", ")}`;
          const field = String(i.path[0] ?? "");
          return FIELD_PROBLEM[field] ?? (field ? `unexpected field ${field}` : "want an object");
        }),
      ),
    ];
    return fail("MALFORMED", `key file ${path}: ${problems.join("; ")}`);
  }
  return ok({ keyId: parsed.data.keyId, key: fromHex(parsed.data.key)! });
}

/**
 * Writes a key file with mode 0600, durably. An existing file is refused (`EXISTS`) unless
 * `overwrite`, which replaces it atomically.
 */
export function writeKeyFile(
  path: string,
  keyId: number,
  key: Uint8Array,
  opts: { overwrite?: boolean } = {},
): Result<void, KeyFileError> {
  if (!Number.isInteger(keyId) || keyId < 0 || keyId > 0xffffffff)
    return fail("MALFORMED", "keyId must be a whole number in 0..4294967295");
  if (!(key instanceof Uint8Array) || key.length !== KEY_LENGTH)
    return fail("MALFORMED", `key must be ${KEY_LENGTH} bytes`);
  const body = `${JSON.stringify({ keyId, key: toHex(key) })}\n`;
  // Written beside, fsynced, then renamed (--force) or linked (refuses an existing file), then
  // the directory fsynced: a power cut never leaves a zero-length key that stops every boot.
  const w = writeFileDurable(path, body, { mode: 0o600, exclusive: !opts.overwrite });
  if (!w.ok) {
    if (w.error.code === "EXISTS") return fail("EXISTS", `key file ${path} already exists`);
    if (w.error.code === "NOT_FOUND") return fail("NOT_FOUND", `directory of ${path} does not exist`);
    return fail("IO", `key file ${path}: ${w.error.errno ?? "cannot write"}`);
  }
  return ok(undefined);
}
