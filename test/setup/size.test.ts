/**
 * The size rule of src/ (every file at most 400 lines, every function at most 80), checked by
 * scripts/check-size.mjs: the tree passes, and a planted oversize file or function fails.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const top = resolve(fileURLToPath(new URL(".", import.meta.url)), "../../..");
const check = (dir?: string) =>
  spawnSync(process.execPath, [join(top, "scripts/check-size.mjs"), ...(dir ? [dir] : [])], {
    cwd: top,
    encoding: "utf8",
  });

test("size: every file under src/ is at most 400 lines and every function at most 80", () => {
  const r = check();
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

test("size: a planted long file and a planted long function fail the check", () => {
  const dir = mkdtempSync(join(tmpdir(), "piled-size-"));
  try {
    writeFileSync(join(dir, "long.ts"), `${"export const x = 1;\n".repeat(401)}`);
    writeFileSync(
      join(dir, "fn.ts"),
      `export function f(): number {\n${"  let a = 1;\n".repeat(81)}  return 1;\n}\n`,
    );
    const r = check(dir);
    assert.notEqual(r.status, 0);
    assert.match(r.stdout + r.stderr, /long\.ts: 401 lines/);
    assert.match(r.stdout + r.stderr, /function f is \d+ lines/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
