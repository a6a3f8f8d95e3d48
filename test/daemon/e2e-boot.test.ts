/**
 * Field report this guards against: "a start-up step failed after the hardware was opened and
 * the daemon hung until systemd's start timeout; the fatal line never reached the journal; a
 * broken log output ended a charging session".
 *
 * The BUILT daemon runs as its own process on the simulated plant. A real cause makes a boot step
 * fail once the lines are open: the database is held in a write transaction by another process
 * (a sqlite3 shell left in BEGIN IMMEDIATE), so recording the interrupted sessions at boot fails
 * after its busy timeout. The daemon must then exit non-zero at once, outputs driven safe, the
 * fatal line on stdout. Then a daemon whose stdout is /dev/full (every log write fails with
 * ENOSPC, as on a full disk) must come up, charge, and go on charging.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { simPileConfig } from "../../src/daemon/sim-config.js";
import { writeKeyFile } from "../../src/sdk/keyfile.js";
import { central, counter, unlockOver } from "../e2e/air.js";
import { PILED, type PileProc, startPile } from "../helpers/pile-proc.js";

const HOLD = fileURLToPath(new URL("./fixtures/hold-store.js", import.meta.url));
const children: ChildProcess[] = [];
const dirs: string[] = [];
const cleanups: (() => Promise<void>)[] = [];

after(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  for (const c of children)
    if (c.exitCode === null && c.signalCode === null && c.pid !== undefined) process.kill(c.pid, "SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function exited(
  c: ChildProcess,
  ms: number,
): Promise<{ code: number | null; signal: string | null } | undefined> {
  return new Promise((resolve) => {
    if (c.exitCode !== null || c.signalCode !== null)
      return resolve({ code: c.exitCode, signal: c.signalCode });
    const t = setTimeout(() => resolve(undefined), ms);
    c.once("exit", (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal });
    });
  });
}

const logLines = (out: string): Record<string, unknown>[] =>
  out
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

test("field report: a boot step failing once the hardware is open ends the daemon at once, outputs safe, the fatal line written", async () => {
  const dir = mkdtempSync(join(tmpdir(), "piled-boot-"));
  dirs.push(dir);
  mkdirSync(join(dir, "keys"), { mode: 0o700 });
  assert.ok(writeKeyFile(join(dir, "keys", "key-1.json"), 1, crypto.getRandomValues(new Uint8Array(32))).ok);
  mkdirSync(join(dir, "state"), { mode: 0o750 });
  const configPath = join(dir, "piled.json");
  writeFileSync(configPath, JSON.stringify(simPileConfig({ pileId: "BOOT-1", dir })));

  const holder = spawn(process.execPath, [HOLD, join(dir, "state", "piled.db")], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.push(holder);
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: holder.stdout! }).on("line", (l) => l === "locked" && resolve());
    holder.once("exit", (code) => reject(new Error(`the store holder exited (${code})`)));
  });

  let out = "";
  const started = Date.now();
  const piled = spawn(process.execPath, [PILED, "--config", configPath], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(piled);
  piled.stdout!.on("data", (b: Buffer) => {
    out += b.toString();
  });
  piled.stderr!.on("data", (b: Buffer) => {
    out += b.toString();
  });
  // The store's busy timeout is 5 s; a daemon still up a minute later is the hang of the report.
  const end = await exited(piled, 60_000);
  const elapsed = Date.now() - started;
  process.stdout.write(`# boot failure: the daemon exited after ${elapsed} ms\n`);
  if (end === undefined && piled.pid !== undefined) process.kill(piled.pid, "SIGKILL");
  assert.ok(end, `the daemon was still running 60 s after a failed start:\n${out}`);
  assert.equal(end.code, 70, `exit status of a failed start with the hardware open:\n${out}`);

  const lines = logLines(out);
  const fatal = lines.find((l) => l["level"] === 60);
  assert.ok(fatal, `a fatal line before the exit:\n${out}`);
  assert.match(String(fatal["msg"]), /start-up failed with the hardware open/);
  const safe = lines.find((l) => l["msg"] === "outputs driven safe");
  assert.ok(safe, `outputs driven safe before the exit:\n${out}`);
  assert.equal(safe["contactorClosed"], false, "the contactor reads open");
  assert.equal(safe["lock"], "released", "no weld latched: the lock goes to its configured rest");
  assert.ok(!lines.some((l) => l["msg"] === "ready"), "never reported ready");
});

test("field report: a failing log destination (stdout on a full device) leaves a session charging", async () => {
  // /dev/full refuses every write with ENOSPC: a log on a full disk.
  const pile: PileProc = await startPile({ pileId: "BOOT-LOG", stdoutTo: "/dev/full" });
  cleanups.push(() => pile.stop());
  const up = await pile.status();
  assert.ok(counter(up, "log.writeErrors") >= 1, `the boot lines failed: ${JSON.stringify(up.counters)}`);
  const c = await central(pile);
  cleanups.push(c.close);
  const issued = pile.issuer.issue({ deviceId: "VIN-LOG", pileId: pile.pileId, validForS: 600 });
  assert.ok(issued.ok);
  const one = await unlockOver(c.central, issued.value);
  assert.equal(one.outcome.kind, "accepted", JSON.stringify(one.outcome));
  await pile.waitStatus((s) => s.state === "CHARGING", 20_000);
  const charging = await pile.status();
  // Each SIGHUP (a key reload) writes a log line, and each write fails.
  for (let i = 0; i < 5; i++) {
    process.kill(pile.pid, "SIGHUP");
    await new Promise((r) => setTimeout(r, 200));
  }
  const later = await pile.waitStatus(
    (x) => counter(x, "log.writeErrors") > counter(charging, "log.writeErrors"),
  );
  assert.equal(later.state, "CHARGING", "still charging with the log failing");
  assert.equal(later.contactor, "closed");
  assert.ok(later.session, "the session is still open");
  assert.match(pile.output(), /log destination failing \(ENOSPC\)/, "reported once on stderr");
  assert.equal(pile.output().split("log destination failing").length - 1, 1, "reported once only");
  one.stopStatus();
});
