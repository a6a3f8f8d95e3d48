#!/usr/bin/env node
// Runs every compiled test file under dist/test with node's test runner.
// Tiers that need system tools (socat, python3 peers, btvirt, unshare) check for them
// themselves and fail saying what is missing; scripts/ensure-system-deps.sh installs them.
//
// Each run gets a fresh PILED_TEST_ARTIFACTS=$TMPDIR/piled-test-artifacts/<run> (runs over 6 h
// old are removed): the tests' TMPDIR is <run>/tmp, what they delete there is kept in
// <run>/kept (scripts/keep-test-files.mjs, preloaded into every Node process), the runner's
// output goes to <run>/test-output.log as well, and scripts/secrets-scan.mjs then checks the
// whole directory for the suite's keys, V values and secrets. The exit code is the tests', or
// the scan's when the tests passed and the scan did not.
import { spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  createWriteStream,
  mkdirSync,
  readdirSync,
  rmSync,
  statSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const top = resolve(dirname(fileURLToPath(import.meta.url)), "..");

function walk(dir, out) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith(".test.js")) out.push(p);
  }
  return out;
}

const filter = process.argv.slice(2);
let files = walk("dist/test", []);
if (filter.length > 0) files = files.filter((f) => filter.some((s) => f.includes(s)));
if (files.length === 0) {
  console.error("no test files found under dist/test (did the build run?)");
  process.exit(1);
}

// Under the system's temporary directory, not the checkout: unix socket paths under TMPDIR must
// stay within 108 bytes wherever the checkout sits, and tiers that run as another user (nobody)
// must be able to reach the tests' TMPDIR, which a checkout under /root would not allow.
const artifactsTop = join(tmpdir(), "piled-test-artifacts");
// Runs left from earlier days go; a run still going (another checkout, another user) is left alone.
mkdirSync(artifactsTop, { recursive: true });
for (const old of readdirSync(artifactsTop)) {
  const p = join(artifactsTop, old);
  if (Date.now() - statSync(p).mtimeMs > 6 * 3600_000) rmSync(p, { recursive: true, force: true });
}
const run = join(artifactsTop, `r${Math.floor(Date.now() / 1000)}-${process.pid}`);
mkdirSync(join(run, "tmp"), { recursive: true, mode: 0o755 });
// Reachable by the tiers that run as another user (nobody), whatever the umask.
for (const d of [artifactsTop, run]) {
  try {
    chmodSync(d, 0o755);
  } catch {
    // another user's folder: left as it is
  }
}
chmodSync(join(run, "tmp"), 0o1777);
// The preload is copied into the run's folder: a process the tests start as another user
// (nobody) must be able to read it, which a checkout under /root would not allow.
const keeper = join(run, "keep-test-files.mjs");
copyFileSync(join(top, "scripts/keep-test-files.mjs"), keeper);
chmodSync(keeper, 0o644);
const env = {
  ...process.env,
  PILED_TEST_ARTIFACTS: run,
  TMPDIR: join(run, "tmp"),
  NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --import=${keeper}`.trim(),
};
const log = createWriteStream(join(run, "test-output.log"));
// A test that hangs fails by name after TEST_TIMEOUT_MS (the longest runs about a minute), and a
// file whose tests are done exits even with a handle left open: neither can hold the run.
const TEST_TIMEOUT_MS = 300_000;
const args = [
  "--test",
  "--test-reporter=spec",
  "--test-concurrency=2",
  `--test-timeout=${TEST_TIMEOUT_MS}`,
  "--test-force-exit",
  ...files,
];
const child = spawn(process.execPath, args, {
  stdio: ["inherit", "pipe", "pipe"],
  env,
});
child.stdout.on("data", (d) => {
  process.stdout.write(d);
  log.write(d);
});
child.stderr.on("data", (d) => {
  process.stderr.write(d);
  log.write(d);
});
const status = await new Promise((res) => child.on("close", (code) => res(code ?? 1)));
await new Promise((res) => log.end(res));

console.log(`\nsecrets scan of ${run}`);
const scan = spawnSync(process.execPath, [join(top, "scripts/secrets-scan.mjs"), run], { stdio: "inherit" });
process.exit(status !== 0 ? status : (scan.status ?? 1));
