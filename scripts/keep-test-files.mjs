// Preloaded into every Node process of a test run (NODE_OPTIONS=--import, set by
// scripts/run-tests.mjs): what a test deletes under the run's temp directory is moved aside
// into PILED_TEST_ARTIFACTS/kept/ instead, so scripts/secrets-scan.mjs sees every log, database
// and history the suite wrote. The deleted path is gone as before (a test that checks a
// removal still sees it removed). Outside the run's temp directory nothing changes.
// Node has no hook for this; fs.rm/rmSync/promises.rm are wrapped and the ES module bindings
// re-synced (module.syncBuiltinESMExports), so `import { rmSync } from "node:fs"` sees it too.
import fs from "node:fs";
import { syncBuiltinESMExports } from "node:module";
import { basename, join, resolve, sep } from "node:path";

const root = process.env.PILED_TEST_ARTIFACTS;
const tmp = process.env.TMPDIR;
if (root && tmp && resolve(tmp).startsWith(resolve(root) + sep)) {
  const kept = join(root, "kept");
  const under = (p) => typeof p === "string" && resolve(p).startsWith(resolve(tmp) + sep);
  let n = 0;
  /** Moves `p` into kept/; false when there is nothing to move (the real rm then decides). */
  const keep = (p) => {
    if (!under(p)) return false;
    try {
      fs.lstatSync(p);
    } catch {
      return false;
    }
    fs.mkdirSync(kept, { recursive: true });
    const to = join(kept, `${process.pid}-${++n}-${basename(p)}`);
    try {
      fs.renameSync(p, to);
    } catch (e) {
      // Another file system (a test's own tmpfs): copy what can be read, then the real rm.
      if (e.code !== "EXDEV") return false;
      try {
        fs.cpSync(p, to, { recursive: true, dereference: false, errorOnExist: false });
      } catch {}
      return false;
    }
    return true;
  };
  const { rm, rmSync } = fs;
  const prm = fs.promises.rm;
  fs.rmSync = function (p, ...rest) {
    if (keep(p)) return;
    return rmSync.call(this, p, ...rest);
  };
  fs.rm = function (p, ...rest) {
    const cb = rest[rest.length - 1];
    if (typeof cb === "function" && keep(p)) return process.nextTick(cb, null);
    return rm.call(this, p, ...rest);
  };
  fs.promises.rm = async function (p, ...rest) {
    if (keep(p)) return;
    return prm.call(this, p, ...rest);
  };
  syncBuiltinESMExports();
}
