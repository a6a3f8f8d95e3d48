/**
 * Pile virtual key files (Node only): `{"keyId": N, "key": "<64 hex>"}`, mode 0600.
 * A file readable or writable by group or others is refused: the key would not be secret.
 * Error messages name the file and the problem, never the key.
 */
import {
  closeSync,
  constants,
  fstatSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { z } from "zod";
import { err, fromHex, ok, type Result, toHex } from "../protocol/bytes.js";
import { KEY_LENGTH } from "../protocol/code.js";
import { type KeyFileError, SdkError } from "./errors.js";

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

function errnoOf(e: unknown): string | undefined {
  return typeof e === "object" && e !== null && "code" in e
    ? String((e as { code: unknown }).code)
    : undefined;
}

/** Reads and checks one key file. Permissions are checked on the opened descriptor. */
export function readKeyFile(path: string): Result<KeyFileContents, KeyFileError> {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (e) {
    const errno = errnoOf(e);
    if (errno === "ENOENT") return fail("NOT_FOUND", `key file ${path} does not exist`);
    if (errno === "ELOOP") return fail("PERMISSIONS", `key file ${path} is a symbolic link`);
    if (errno === "EACCES") return fail("PERMISSIONS", `key file ${path} cannot be read by this user`);
    return fail("IO", `key file ${path}: ${errno ?? "cannot open"}`);
  }
  let text: string;
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return fail("MALFORMED", `key file ${path} is not a regular file`);
    if ((st.mode & 0o077) !== 0) {
      const mode = (st.mode & 0o777).toString(8).padStart(4, "0");
      return fail("PERMISSIONS", `key file ${path} has mode ${mode}: group/other may access it (want 0600)`);
    }
    text = readFileSync(fd, "utf8");
  } catch (e) {
    return fail("IO", `key file ${path}: ${errnoOf(e) ?? "cannot read"}`);
  } finally {
    closeSync(fd);
  }
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
 * Writes a key file with mode 0600, created exclusively with that mode. An existing file is
 * refused (`EXISTS`) unless `overwrite`, which replaces it atomically (new file, then rename).
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
  const target = opts.overwrite ? join(dirname(path), `.${basename(path)}.${process.pid}.tmp`) : path;
  let fd: number;
  try {
    fd = openSync(
      target,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o600,
    );
  } catch (e) {
    const errno = errnoOf(e);
    if (errno === "EEXIST") return fail("EXISTS", `key file ${target} already exists`);
    if (errno === "ENOENT") return fail("NOT_FOUND", `directory of ${path} does not exist`);
    return fail("IO", `key file ${target}: ${errno ?? "cannot create"}`);
  }
  try {
    writeSync(fd, body);
  } catch (e) {
    closeSync(fd);
    try {
      unlinkSync(target);
    } catch {}
    return fail("IO", `key file ${target}: ${errnoOf(e) ?? "cannot write"}`);
  }
  closeSync(fd);
  if (opts.overwrite) {
    try {
      renameSync(target, path);
    } catch (e) {
      try {
        unlinkSync(target);
      } catch {}
      return fail("IO", `key file ${path}: ${errnoOf(e) ?? "cannot replace"}`);
    }
  }
  return ok(undefined);
}
