#!/usr/bin/env node
// Plays the kernel's part of legacy sysfs GPIO export on a tree of plain files:
//   node export-helper.mjs <gpio-root>
// A number written to <root>/export creates <root>/gpioN/{direction,value,edge,active_low}
// (an input reading 0, as a fresh export does); one written to <root>/unexport removes it.
// Writes are noticed by inotify (fs.watch) and, should an event be missed, by a 5 ms stat poll.
// Prints "ready" once watching. Exits on SIGTERM/SIGINT.
import {
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  watch,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";

const root = process.argv[2];
if (!root) {
  console.error("usage: export-helper.mjs <gpio-root>");
  process.exit(2);
}

const seen = new Map();

function changed(name) {
  try {
    const st = statSync(join(root, name));
    const stamp = `${st.mtimeMs}:${st.size}:${st.ctimeMs}`;
    if (seen.get(name) === stamp) return undefined;
    seen.set(name, stamp);
    const text = readFileSync(join(root, name), "utf8").trim();
    return /^\d+$/.test(text) ? Number(text) : undefined;
  } catch {
    return undefined;
  }
}

function onExport() {
  const n = changed("export");
  if (n === undefined) return;
  const dir = join(root, `gpio${n}`);
  if (existsSync(dir)) return;
  const tmp = join(root, `.gpio${n}.tmp`);
  mkdirSync(tmp, { recursive: true });
  writeFileSync(join(tmp, "direction"), "in\n");
  writeFileSync(join(tmp, "value"), "0\n");
  writeFileSync(join(tmp, "edge"), "none\n");
  writeFileSync(join(tmp, "active_low"), "0\n");
  // appear at once with every file in place, as the kernel's directory does
  renameSync(tmp, dir);
}

function onUnexport() {
  const n = changed("unexport");
  if (n === undefined) return;
  rmSync(join(root, `gpio${n}`), { recursive: true, force: true });
}

// the files as they are now were written before this helper started: not requests
changed("export");
changed("unexport");

const watchers = [watch(join(root, "export"), onExport), watch(join(root, "unexport"), onUnexport)];
const poll = setInterval(() => {
  onExport();
  onUnexport();
}, 5);

function stop() {
  clearInterval(poll);
  for (const w of watchers) w.close();
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.stdout.write("ready\n");
