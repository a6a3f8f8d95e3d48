/**
 * A store opened after a kill makes durable what the killed process wrote but never synced,
 * before it reads it (found by the crash campaign, seed 12, kill 215: a session shown finished
 * after a restart came back "interrupted" after a later power cut). Power cuts are modelled by
 * the campaign's fsync shadow shim (prove/fsync_shadow.c, built here with gcc): each file rolls
 * back to its content at its last fsync.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { openStore } from "../../src/store/index.js";

const here = dirname(fileURLToPath(import.meta.url));
const SHIM_SRC = join(here, "../../../prove/fsync_shadow.c");
const CHILD = join(here, "fixtures/durable-open-child.js");

function buildShim(dir: string): string {
  const out = join(dir, "fsync_shadow.so");
  const r = spawnSync("gcc", ["-shared", "-fPIC", "-O2", "-o", out, SHIM_SRC, "-ldl", "-lpthread"], {
    encoding: "utf8",
  });
  assert.equal(
    r.status,
    0,
    `gcc could not build the fsync shadow shim (bash scripts/ensure-system-deps.sh installs gcc): ${r.stderr || String(r.error)}`,
  );
  return out;
}

test("field report: a session's end a killed process never synced is made durable by the next open, before it is read", (t) => {
  const work = mkdtempSync(join(tmpdir(), "piled-dopen-"));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  const state = join(work, "state");
  const shadow = join(work, "shadow");
  mkdirSync(state);
  mkdirSync(shadow);
  const shim = buildShim(work);
  const db = join(state, "piled.db");
  const step = (name: string, seen: boolean) => {
    const env: NodeJS.ProcessEnv = { ...process.env, LD_PRELOAD: shim, SHADOW_ROOT: state };
    if (seen) env["SHADOW_DIR"] = shadow;
    else delete env["SHADOW_DIR"];
    const r = spawnSync(process.execPath, [CHILD, name, db], { env, encoding: "utf8" });
    assert.equal(r.signal, "SIGKILL", `${name}: ${r.stderr}`);
    return JSON.parse(r.stdout) as { status: string | null };
  };
  assert.equal(step("begin", true).status, "active");
  assert.equal(step("finish", false).status, "finished"); // written, killed before its fsync
  assert.equal(step("read", true).status, "finished"); // what the next daemon reads and reports
  // the power cut: every file back to its last synced content
  for (const f of readdirSync(state)) {
    if (existsSync(join(shadow, f))) copyFileSync(join(shadow, f), join(state, f));
    else unlinkSync(join(state, f));
  }
  const store = openStore(db);
  try {
    const s = store.sessions.get(new Uint8Array(16).fill(7));
    assert.equal(s?.status, "finished", "the end a restarted pile had shown is still there after the cut");
    assert.equal(s?.stopReason, "CARRIER_STOP");
  } finally {
    store.close();
  }
});
