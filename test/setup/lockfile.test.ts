/**
 * Set-up tier: `npm install` on a fresh clone must not rewrite the committed package-lock.json.
 * The lockfile is written without registry URLs ("resolved"); npm's default writes them, so the
 * project's .npmrc asks every npm for the committed form, whatever the user's own npm config.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

test("field report: npm install on a fresh clone writes the lockfile in its committed form (no resolved URLs)", () => {
  const lock = JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8")) as {
    packages: Record<string, { resolved?: string }>;
  };
  const withUrl = Object.entries(lock.packages).filter(([, p]) => p.resolved !== undefined);
  assert.deepEqual(withUrl, [], "the committed lockfile carries no resolved URLs");
  // What an npm with empty user and global configs would do in this project.
  const empty = mkdtempSync(join(tmpdir(), "piled-npmrc-"));
  writeFileSync(join(empty, "user"), "");
  writeFileSync(join(empty, "global"), "");
  const args = ["--userconfig", join(empty, "user"), "--globalconfig", join(empty, "global")];
  const r = spawnSync("npm", ["config", "get", "omit-lockfile-registry-resolved", ...args], {
    cwd: root,
    encoding: "utf8",
  });
  rmSync(empty, { recursive: true, force: true });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), "true", "the project's .npmrc keeps resolved URLs out of the lockfile");
});
