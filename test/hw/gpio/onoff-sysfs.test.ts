/**
 * The real onoff adapters against a fake legacy sysfs in a private mount namespace
 * (scripts/fake-sysfs/run.sh). Needs root and util-linux's unshare; fails, naming them, without.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { after, before, test } from "node:test";
import { repoRoot } from "./fixtures/export-helper.js";

type Files = { direction: string; value: string; active_low: string; edge: string } | null;
let report: Record<string, unknown> = {};
const started: number[] = [];

function preconditions(): void {
  if (process.getuid?.() !== 0) {
    assert.fail("the fake-sysfs tier must run as root (it mounts tmpfs inside a private mount namespace)");
  }
  for (const tool of ["unshare", "mount", "umount", "mountpoint"]) {
    const r = spawnSync(tool, ["--version"], { stdio: "ignore" });
    if (r.error)
      assert.fail(`${tool} not found: install the Debian package util-linux (scripts/system-deps.txt)`);
  }
}

before(
  async () => {
    preconditions();
    const child = spawn(
      "unshare",
      [
        "-m",
        "--propagation",
        "private",
        "bash",
        `${repoRoot}scripts/fake-sysfs/run.sh`,
        process.execPath,
        `${repoRoot}dist/test/hw/gpio/fixtures/onoff-child.js`,
      ],
      { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NODE: process.execPath } },
    );
    if (child.pid !== undefined) started.push(child.pid);
    let out = "";
    let err = "";
    child.stdout.on("data", (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on("data", (c: Buffer) => {
      err += c.toString();
      const m = /helper-pid (\d+)/.exec(err);
      if (m && !started.includes(Number(m[1]))) started.push(Number(m[1]));
    });
    const status = await new Promise<number | null>((resolve) =>
      child.once("close", (code) => resolve(code)),
    );
    assert.equal(status, 0, `fake-sysfs run failed (exit ${status}):\n${err}\n${out}`);
    const last = out.trim().split("\n").pop() ?? "";
    report = JSON.parse(last) as Record<string, unknown>;
  },
  { timeout: 120_000 },
);

after(() => {
  for (const pid of started) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone, as it should be
    }
  }
});

const files = (key: string): Files => report[key] as Files;

test("an output is exported by chip label + offset at a non-zero base, already at its safe level", () => {
  assert.equal(report["contactor.number"], 529);
  assert.deepEqual(files("contactor.initial"), {
    direction: "low",
    value: "0",
    active_low: "0",
    edge: "none",
  });
});

test("writes reach the value file", () => {
  assert.equal(files("contactor.afterOn")?.value, "1");
  assert.equal(files("contactor.afterOff")?.value, "0");
});

test("active-low outputs: active_low set, and the raw direction word gives the safe pin level", () => {
  // safe = inactive on an active-low line: raw high
  assert.equal(files("lockActiveLowSafeReleased.initial")?.direction, "high");
  assert.equal(files("lockActiveLowSafeReleased.initial")?.active_low, "1");
  // logical levels go to value; the kernel inverts them at the pin
  assert.equal(files("lockActiveLowSafeReleased.afterEngage")?.value, "1");
  // safe = active on an active-low line: raw low
  assert.equal(files("lockActiveLowSafeEngaged.initial")?.direction, "low");
  // safe = active on an active-high line: raw high
  assert.equal(files("activeHighSafeOn.initial")?.direction, "high");
});

test("a line left exported and driven is reconfigured to its safe level", () => {
  assert.equal(files("leftOn.reopened")?.direction, "low");
});

test("watch() is refused by the fake attribute, so inputs fall back to sampling", () => {
  assert.equal(typeof report["onoff.watchRefused"], "string");
  assert.equal(report["feedback.mode"], "sampled");
  assert.deepEqual(files("feedback.files"), { direction: "in", value: "0", active_low: "0", edge: "both" });
});

test("a sampled input reports changes of the value file", () => {
  assert.equal(report["feedback.initialRead"], false);
  assert.equal(report["feedback.sawRise"], true);
  assert.equal(report["feedback.readAfterRise"], true);
  assert.equal(report["feedback.sawFall"], true);
  assert.deepEqual(report["feedback.heard"], [true, false]);
});

test("an active-low input gets active_low 1", () => {
  assert.equal(files("activeLowInput.files")?.active_low, "1");
});

test("an unknown chip and an offset past the chip are typed errors", () => {
  assert.equal(report["error.noChip"], "NO_CHIP");
  assert.equal(report["error.range"], "LINE_RANGE");
});

test("linesFromConfig opens the pile's lines, the lock at its configured rest position", () => {
  assert.deepEqual(files("lines.contactor"), { direction: "low", value: "0", active_low: "0", edge: "none" });
  // active-low lock resting engaged: raw low
  assert.deepEqual(files("lines.lock"), { direction: "low", value: "0", active_low: "1", edge: "none" });
  assert.equal(report["lines.plugPresentBefore"], false);
  assert.deepEqual(report["lines.plugSeen"], [true]);
  assert.equal(files("lines.emergencyStopFiles")?.direction, "in");
});

test("closing unexports inputs and leaves outputs exported at their level", () => {
  assert.equal(report["lines.inputsUnexported"], true);
  assert.equal(report["lines.outputsKept"], true);
  assert.equal(report["closed.inputUnexported"], true);
  assert.equal(report["closed.outputKept"], true);
});

test("a line failing half-way through linesFromConfig closes what was opened and is typed", () => {
  assert.equal(report["lines.failure"], "LINE_RANGE");
  assert.equal(report["lines.failureFeedbackUnexported"], true);
});
