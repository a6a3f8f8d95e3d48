/**
 * The slow-disk tier: every fsync and fdatasync of the process takes 500 ms (an LD_PRELOAD shim,
 * fixtures/slow_fsync.c, built here with gcc), as on an SD card that stalls its flushes. The real
 * runtime, the real store and its write worker on a real file charge while the disk crawls; an
 * emergency stop, a plug pulled and a silent meter must still open the contactor at once
 * (target: within 20 ms; asserted with a generous bound, the figures printed).
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const SHIM_SRC = join(here, "../../../test/daemon/fixtures/slow_fsync.c");
const CHILD = join(here, "slow-disk-child.js");
const FSYNC_MS = 500;
const BOUND_MS = 200;

function buildShim(dir: string): string {
  assert.ok(existsSync(SHIM_SRC), `shim source missing: ${SHIM_SRC}`);
  const out = join(dir, "slow_fsync.so");
  const r = spawnSync("gcc", ["-shared", "-fPIC", "-O2", "-o", out, SHIM_SRC, "-ldl"], { encoding: "utf8" });
  assert.equal(
    r.status,
    0,
    `gcc could not build the slow-fsync shim (bash scripts/ensure-system-deps.sh installs gcc): ${r.stderr || String(r.error)}`,
  );
  return out;
}

function runChild(shim: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CHILD], {
      env: { ...process.env, LD_PRELOAD: shim, SLOW_FSYNC_MS: String(FSYNC_MS) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 150_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test("field report: with a 500 ms fsync, an emergency stop, a pulled plug and a stale meter open the contactor at once while charging", {
  timeout: 180_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), "piled-slowdisk-"));
  try {
    const r = await runChild(buildShim(dir));
    assert.equal(r.code, 0, `slow-disk run failed:\n${r.stderr}`);
    const m = JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}") as Record<string, number>;
    const f = (n: number | undefined) => (n === undefined ? "?" : n.toFixed(1));
    console.log(
      `slow disk (fsync ${f(m["fsyncMs"])} ms, a synchronous store write ${f(m["storeWriteMs"])} ms): ` +
        `contactor written open ${f(m["emergencyStopMs"])} ms after the emergency stop, ` +
        `${f(m["plugRemovedMs"])} ms after the plug was pulled, ${f(m["staleMeterMs"])} ms after the meter went stale; ` +
        `${m["offLoopWrites"]} writes went to the worker, ${m["liveSyncWrites"]} synchronous writes while live`,
    );
    // the shim is in force: the disk really is slow for this process
    assert.ok((m["fsyncMs"] ?? 0) >= FSYNC_MS * 0.9, `fsync took ${m["fsyncMs"]} ms`);
    assert.ok((m["storeWriteMs"] ?? 0) >= FSYNC_MS * 0.9, `a store write took ${m["storeWriteMs"]} ms`);
    assert.ok((m["offLoopWrites"] ?? 0) > 0, "progress went to the write worker");
    assert.equal(m["liveSyncWrites"], 0);
    for (const k of ["emergencyStopMs", "plugRemovedMs", "staleMeterMs"]) {
      assert.ok(typeof m[k] === "number" && m[k] >= 0 && m[k] < BOUND_MS, `${k}: ${m[k]} ms`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
