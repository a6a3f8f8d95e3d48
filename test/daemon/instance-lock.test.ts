/**
 * One daemon per state directory (field report: a first daemon whose control socket failed let a
 * second one drive the same GPIO). The lock is the kernel's: a holder killed with SIGKILL frees it.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { takeInstanceLock } from "../../src/daemon/instance-lock.js";

const LOCK = resolve(fileURLToPath(import.meta.url), "..", "..", "..", "src", "daemon", "instance-lock.js");
const dir = mkdtempSync(join(tmpdir(), "piled-lock-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("field report: the state directory lock refuses a second holder by pid and is freed by SIGKILL of the first", async () => {
  const script = `import { takeInstanceLock } from ${JSON.stringify(LOCK)};
    const l = takeInstanceLock(${JSON.stringify(dir)});
    process.stdout.write(l.ok ? "held\\n" : l.error.message + "\\n");
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const first = await new Promise<string>((res) =>
    child.stdout!.once("data", (b: Buffer) => res(b.toString())),
  );
  assert.equal(first, "held\n");

  const second = takeInstanceLock(dir);
  assert.ok(!second.ok, "a second holder is refused while the first lives");
  assert.equal(second.error.code, "HELD");
  assert.match(second.error.message, new RegExp(`another piled holds .*piled\\.lock \\(pid ${child.pid}\\)`));

  const gone = new Promise((r) => child.once("exit", r));
  process.kill(child.pid!, "SIGKILL");
  await gone;
  const third = takeInstanceLock(dir);
  assert.ok(third.ok, `the kernel freed the lock of the killed holder: ${!third.ok && third.error.message}`);
  third.value.release();
});
