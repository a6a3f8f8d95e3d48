/**
 * The key directory under abuse (field report): a key planted by another user in a 0777
 * directory unlocked the pile when the daemon ran as root; a symbolic link was followed; a FIFO
 * hung the start forever; a 1 GB key was read whole; a power cut after `keys add` left a
 * zero-length key. Each is refused by name now, before any byte is read.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { KeyDirectory } from "../../src/daemon/keys.js";
import { writeKeyFile } from "../../src/sdk/keyfile.js";

const DIST = resolve(fileURLToPath(import.meta.url), "..", "..", "..");
const work = mkdtempSync(join(tmpdir(), "piled-keydir-"));
after(() => rmSync(work, { recursive: true, force: true }));
const KEY = new Uint8Array(32).fill(6);
let n = 0;

function keyDir(mode = 0o700): string {
  const d = join(work, `keys-${++n}`);
  mkdirSync(d);
  chmodSync(d, mode);
  assert.ok(writeKeyFile(join(d, "key-1.json"), 1, KEY).ok);
  return d;
}

function refused(dir: string, pattern: RegExp): void {
  const r = new KeyDirectory(dir).load();
  assert.ok(!r.ok, `${dir} must be refused`);
  assert.match(r.error.message, pattern);
  assert.doesNotMatch(r.error.message, /0606060606/, "never the key");
}

test("field report: a key directory writable by group or others is refused; 0700 and 0755 load", () => {
  for (const mode of [0o777, 0o775, 0o757, 0o1777]) refused(keyDir(mode), /group\/other may write in it/);
  for (const mode of [0o700, 0o750, 0o755]) {
    const r = new KeyDirectory(keyDir(mode)).load();
    assert.ok(r.ok, `mode ${mode.toString(8)}: ${!r.ok && r.error.message}`);
    assert.equal(r.value, 1);
  }
});

test("field report: a key directory others may list (0755) loads with a warning; 0700 and 0750 without", () => {
  const open = new KeyDirectory(keyDir(0o755));
  assert.ok(open.load().ok);
  assert.equal(open.warnings.length, 1);
  assert.match(open.warnings[0]!, /is 0755: other users may list it/);
  for (const mode of [0o700, 0o750]) {
    const d = new KeyDirectory(keyDir(mode));
    assert.ok(d.load().ok);
    assert.deepEqual(d.warnings, [], `mode ${mode.toString(8)}`);
  }
});

test("field report: a symbolically linked key directory is refused", () => {
  const real = keyDir();
  const link = join(work, "keys-link");
  symlinkSync(real, link);
  refused(link, /key directory .*keys-link is a symbolic link/);
});

test("field report: a key file owned by another user is refused when the daemon runs as root", (t) => {
  if (process.geteuid?.() !== 0) {
    t.skip("needs root to make a file owned by another user (chown); run as root to check it");
    return;
  }
  const d = keyDir();
  assert.ok(writeKeyFile(join(d, "key-666.json"), 666, new Uint8Array(32).fill(0x66)).ok);
  chownSync(join(d, "key-666.json"), 65534, 65534);
  refused(d, /key-666\.json is owned by uid 65534, not by this user \(uid 0\) or root/);
  // A directory owned by another user is refused as well.
  const other = keyDir();
  chownSync(other, 65534, 65534);
  refused(other, /is owned by uid 65534/);
});

test("field report: a FIFO in the key directory is refused at once instead of hanging the start", () => {
  const d = keyDir();
  execFileSync("mkfifo", ["-m", "0600", join(d, "key-9.json")]);
  // In a child: a blocking open of a FIFO would hang this test process too.
  const script = `import { KeyDirectory } from ${JSON.stringify(join(DIST, "src/daemon/keys.js"))};
    const r = new KeyDirectory(${JSON.stringify(d)}).load();
    process.stdout.write(r.ok ? "loaded" : r.error.message);`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
    encoding: "utf8",
    timeout: 15_000,
  });
  assert.equal(r.signal, null, "the load returned (did not hang on the FIFO)");
  assert.match(r.stdout, /key-9\.json is not a regular file/);
});

test("field report: a key file over 64 KiB is refused without being read whole", () => {
  const d = keyDir();
  const big = join(d, "key-2.json");
  writeFileSync(big, `{"keyId":2,"key":"${"66".repeat(32)}"}${" ".repeat(70 * 1024)}`, { mode: 0o600 });
  refused(d, /key-2\.json is \d+ bytes, more than the 65536 allowed/);
});

test("field report: a key file is fsynced, linked into place, then its directory fsynced", (t) => {
  const probe = spawnSync("strace", ["-V"], { encoding: "utf8" });
  if (probe.status !== 0) {
    t.skip("strace is not installed (bash scripts/ensure-system-deps.sh): cannot watch the syscalls");
    return;
  }
  const d = keyDir();
  const file = join(d, "key-3.json");
  const script = `import { writeKeyFile } from ${JSON.stringify(join(DIST, "src/sdk/keyfile.js"))};
    const w = writeKeyFile(${JSON.stringify(file)}, 3, new Uint8Array(32).fill(3));
    process.stdout.write(w.ok ? "ok" : w.error.message);`;
  const r = spawnSync(
    "strace",
    [
      "-f",
      "-e",
      "trace=openat,fsync,link,linkat,rename,renameat,renameat2",
      process.execPath,
      "--input-type=module",
      "-e",
      script,
    ],
    { encoding: "utf8", timeout: 30_000 },
  );
  assert.equal(r.stdout, "ok", r.stderr.slice(-2000));
  const calls = r.stderr.split("\n").filter((l) => /fsync|link|rename|openat\(.*keys-/.test(l));
  const fdOf = (re: RegExp): string | undefined => calls.find((l) => re.test(l))?.match(/= (\d+)$/)?.[1];
  const tmpFd = fdOf(/openat\(.*\.key-3\.json\..*\.tmp/);
  const dirFd = fdOf(new RegExp(`openat\\(.*"${d.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}".*O_DIRECTORY`));
  assert.ok(tmpFd && dirFd, `the temporary file and the directory are opened:\n${calls.join("\n")}`);
  const at = (re: RegExp): number => calls.findIndex((l) => re.test(l));
  const fileSync = at(new RegExp(`fsync\\(${tmpFd}\\)`));
  const linked = at(/link(at)?\(.*key-3\.json/);
  const dirSync = calls.findLastIndex((l) => new RegExp(`fsync\\(${dirFd}\\)`).test(l));
  assert.ok(
    fileSync >= 0 && fileSync < linked && linked < dirSync,
    `fsync, link, fsync dir:\n${calls.join("\n")}`,
  );
  assert.deepEqual(
    readdirSync(d).filter((f) => f.endsWith(".tmp")),
    [],
    "no temporary file left",
  );
});
