#!/usr/bin/env node
// Builds the project's own native addon (src/native/peercred.c) into dist/src/native/peercred.node
// with gcc: no node-gyp and no Node headers (the addon declares the N-API functions it uses).
// Run by `npm run build` after tsc. Under dist/src so the Debian package (which ships dist/src)
// carries it.
import { spawnSync } from "node:child_process";
import { mkdirSync, renameSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const top = join(dirname(fileURLToPath(import.meta.url)), "..");
const src = join(top, "src/native/peercred.c");
const out = join(top, "dist/src/native/peercred.node");
const cc = process.env.CC ?? "gcc";

mkdirSync(dirname(out), { recursive: true });
const tmp = `${out}.tmp-${process.pid}`;
const r = spawnSync(cc, ["-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-o", tmp, src], {
  stdio: "inherit",
});
if (r.error) {
  const missing = r.error.code === "ENOENT";
  console.error(
    `build-native: cannot run ${cc}${missing ? " (not installed: apt-get install gcc libc6-dev)" : `: ${r.error.message}`}`,
  );
  process.exit(1);
}
if (r.status !== 0) {
  console.error(`build-native: ${cc} failed building ${src} (exit ${r.status})`);
  process.exit(1);
}
renameSync(tmp, out);
