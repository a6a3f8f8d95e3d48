#!/usr/bin/env node
// Prints the node_modules directories the package needs at run time, one a line, relative to the
// project root: the closure of package.json "dependencies" (and each one's dependencies and
// optional dependencies that are installed), resolved the way Node resolves them (nested
// node_modules first, then upwards). `npm ls --omit=dev` is not used: it also lists extraneous
// packages present in a shared node_modules.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";

const root = process.argv[2] ?? process.cwd();
const readPkg = (dir) => JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));

/** Node's lookup: <from>/node_modules/<name>, then each parent's, up to the project root. */
function resolveFrom(from, name) {
  let dir = from;
  for (;;) {
    const cand = join(dir, "node_modules", name);
    if (existsSync(join(cand, "package.json"))) return cand;
    if (dir === root || dirname(dir) === dir) return undefined;
    dir = dirname(dir);
    // a package's dir is <...>/node_modules/<name> or <...>/node_modules/@scope/<name>
    if (dir.endsWith("/node_modules")) dir = dirname(dir);
    else if (dirname(dir).endsWith("/node_modules") && dir.split("/").pop().startsWith("@"))
      dir = dirname(dirname(dir));
  }
}

const seen = new Set();
const queue = [];
const top = readPkg(root);
const missing = [];
for (const name of Object.keys(top.dependencies ?? {})) queue.push({ from: root, name, required: true });
while (queue.length > 0) {
  const { from, name, required } = queue.shift();
  const dir = resolveFrom(from, name);
  if (dir === undefined) {
    if (required) missing.push(name);
    continue;
  }
  if (seen.has(dir)) continue;
  seen.add(dir);
  const p = readPkg(dir);
  for (const d of Object.keys(p.dependencies ?? {})) queue.push({ from: dir, name: d, required: true });
  for (const d of Object.keys(p.optionalDependencies ?? {}))
    queue.push({ from: dir, name: d, required: false });
}
if (missing.length > 0) {
  process.stderr.write(`prod-modules: not installed: ${missing.join(", ")} (run npm ci)\n`);
  process.exit(1);
}
for (const d of [...seen].sort()) process.stdout.write(`${relative(root, d)}\n`);
