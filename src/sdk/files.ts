/**
 * Small trusted files (keys, the config, the console hash) read and written with care (Node only).
 *
 * Reading: the file is opened with O_NOFOLLOW|O_NONBLOCK (a symbolic link is refused, a FIFO does
 * not hang the open), and everything is checked on the opened descriptor before one byte is read:
 * a regular file, owned by this process's user or root when `owner` is asked, no larger than the
 * cap. Directories holding secrets are checked the same way: not a symbolic link, a directory,
 * owned by this user or root, not writable by group or others.
 *
 * Writing: temporary file in the same directory, written, fsynced, renamed (or linked, when an
 * existing file must be refused), then the directory fsynced, so that a power cut leaves either
 * the old state or the whole new file, never a zero-length one.
 */
import {
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  linkSync,
  lstatSync,
  openSync,
  readSync,
  renameSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { err, ok, type Result } from "../protocol/bytes.js";

/** Keys, the config and the console hash are a few hundred bytes; this is generous. */
export const SMALL_FILE_MAX = 64 * 1024;

export type SafeFileCode = "NOT_FOUND" | "NOT_REGULAR" | "SYMLINK" | "OWNER" | "TOO_LARGE" | "MODE" | "IO";

export class SafeFileError extends Error {
  override readonly name = "SafeFileError";
  constructor(
    readonly code: SafeFileCode,
    message: string,
  ) {
    super(message);
  }
}

export interface ReadOptions {
  /** Words naming the file in messages ("key file", "configuration"). */
  what: string;
  maxBytes?: number;
  /** Refuse a file not owned by this process's user or root. */
  owner?: boolean;
  /** Refuse a file whose mode has any of these bits (0o077: group/other may access it). */
  forbidMode?: number;
}

const errnoOf = (e: unknown): string | undefined =>
  typeof e === "object" && e !== null && "code" in e ? String((e as { code: unknown }).code) : undefined;

/** This process's effective uid; undefined where there is none (the check is then skipped). */
const myUid = (): number | undefined =>
  typeof process.geteuid === "function" ? process.geteuid() : undefined;

const trustedOwner = (uid: number): boolean => {
  const me = myUid();
  return me === undefined || uid === me || uid === 0;
};

const modeText = (mode: number): string => (mode & 0o777).toString(8).padStart(4, "0");

/** Reads a small file as UTF-8 after checking it on its descriptor. Never throws. */
export function readSmallFile(path: string, opts: ReadOptions): Result<string, SafeFileError> {
  const max = opts.maxBytes ?? SMALL_FILE_MAX;
  const fail = (code: SafeFileCode, m: string) => err(new SafeFileError(code, `${opts.what} ${path} ${m}`));
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    const errno = errnoOf(e);
    if (errno === "ENOENT") return fail("NOT_FOUND", "does not exist");
    if (errno === "ELOOP") return fail("SYMLINK", "is a symbolic link");
    if (errno === "EACCES") return fail("IO", "cannot be read by this user");
    return fail("IO", `cannot be opened (${errno ?? "error"})`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return fail("NOT_REGULAR", "is not a regular file");
    if (opts.owner && !trustedOwner(st.uid))
      return fail("OWNER", `is owned by uid ${st.uid}, not by this user (uid ${myUid()}) or root`);
    if (opts.forbidMode !== undefined && (st.mode & opts.forbidMode) !== 0)
      return fail("MODE", `has mode ${modeText(st.mode)}: group/other may access it (want 0600)`);
    if (st.size > max) return fail("TOO_LARGE", `is ${st.size} bytes, more than the ${max} allowed`);
    // Read at most max+1 bytes whatever fstat said: a file that grows meanwhile is still capped.
    const buf = Buffer.alloc(max + 1);
    let n = 0;
    for (;;) {
      const got = readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
      if (n > max) return fail("TOO_LARGE", `is more than the ${max} bytes allowed`);
    }
    return ok(buf.subarray(0, n).toString("utf8"));
  } catch (e) {
    return fail("IO", `cannot be read (${errnoOf(e) ?? "error"})`);
  } finally {
    closeSync(fd);
  }
}

/**
 * Checks a directory that holds secrets: not a symbolic link, a directory, owned by this user or
 * root, not writable by group or others (anyone who may write there may plant a key).
 */
export function checkTrustedDir(path: string, what: string): Result<void, SafeFileError> {
  const fail = (code: SafeFileCode, m: string) => err(new SafeFileError(code, `${what} ${path} ${m}`));
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(path);
  } catch (e) {
    const errno = errnoOf(e);
    return errno === "ENOENT" ? fail("NOT_FOUND", "does not exist") : fail("IO", `cannot be read (${errno})`);
  }
  if (st.isSymbolicLink()) return fail("SYMLINK", "is a symbolic link (name the real directory)");
  if (!st.isDirectory()) return fail("NOT_REGULAR", "is not a directory");
  if (!trustedOwner(st.uid))
    return fail("OWNER", `is owned by uid ${st.uid}, not by this user (uid ${myUid()}) or root`);
  if ((st.mode & 0o022) !== 0)
    return fail("MODE", `has mode ${modeText(st.mode)}: group/other may write in it (want 0700)`);
  return ok(undefined);
}

/** fsync of a directory, so that a rename or a new name in it survives a power cut. */
export function fsyncDir(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export type DurableWriteCode = "EXISTS" | "NOT_FOUND" | "IO";

/**
 * Writes `body` to `path` durably with `mode`: a temporary file beside it is written and fsynced,
 * then renamed over `path` (or, with `exclusive`, linked to it, which refuses an existing file
 * atomically), then the directory is fsynced. On failure the temporary file is removed and
 * `path` is as it was. Never throws.
 */
export function writeFileDurable(
  path: string,
  body: string,
  opts: { mode: number; exclusive?: boolean },
): Result<void, { code: DurableWriteCode; errno?: string }> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  const drop = (): void => {
    try {
      unlinkSync(tmp);
    } catch {}
  };
  let fd: number;
  try {
    fd = openSync(
      tmp,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      opts.mode,
    );
  } catch (e) {
    const errno = errnoOf(e);
    return err({ code: errno === "ENOENT" ? "NOT_FOUND" : "IO", ...(errno ? { errno } : {}) });
  }
  try {
    writeSync(fd, body);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    drop();
    const errno = errnoOf(e);
    return err({ code: "IO", ...(errno ? { errno } : {}) });
  }
  closeSync(fd);
  try {
    if (opts.exclusive) {
      linkSync(tmp, path);
      unlinkSync(tmp);
    } else renameSync(tmp, path);
  } catch (e) {
    drop();
    const errno = errnoOf(e);
    return err({ code: errno === "EEXIST" ? "EXISTS" : "IO", ...(errno ? { errno } : {}) });
  }
  try {
    fsyncDir(dir);
  } catch (e) {
    const errno = errnoOf(e);
    return err({ code: "IO", ...(errno ? { errno } : {}) });
  }
  return ok(undefined);
}
