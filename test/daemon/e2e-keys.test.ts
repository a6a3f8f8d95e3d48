/**
 * Key rotation on a running pile: a key file dropped into the key directory and a SIGHUP make
 * it usable; a key file with loose permissions makes the reload refuse, by name, and the keys held
 * stay as they were; `keys add` / `keys retire` over the control socket never show key bytes.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { requestControl } from "../../src/control/index.js";
import { simPileConfig } from "../../src/daemon/sim-config.js";
import { writeKeyFile } from "../../src/sdk/keyfile.js";
import * as poll from "../helpers/poll.js";

const PILED = resolve(fileURLToPath(import.meta.url), "..", "..", "..", "src", "daemon", "piled.js");
const work = mkdtempSync(join(tmpdir(), "piled-keys-"));
const socket = join(work, "control.sock");
const keys = join(work, "keys");
let daemon: ChildProcess;
let log = "";

async function control(
  cmd: string,
  args: string[] = [],
): Promise<{ ok: boolean; result?: unknown; error?: { code: string } }> {
  const r = await requestControl(socket, cmd, args, 5000);
  if (!r.ok) throw r.error;
  return r.value as { ok: boolean; result?: unknown; error?: { code: string } };
}

async function keyIds(): Promise<number[]> {
  const r = await control("keys");
  assert.ok(r.ok);
  return (r.result as { keyId: number }[]).map((k) => k.keyId);
}

/** A probe that fails only means "not yet" here (the daemon may still be starting). */
const waitFor = (what: string, probe: () => Promise<boolean>): Promise<true> =>
  poll.waitFor(what, () => probe().catch(() => false) as Promise<boolean>, {
    timeoutMs: 20_000,
    everyMs: 100,
    detail: () => `log:\n${log.slice(-3000)}`,
  }) as Promise<true>;

before(async () => {
  mkdirSync(keys, { mode: 0o700 });
  assert.ok(writeKeyFile(join(keys, "key-1.json"), 1, new Uint8Array(32).fill(1)).ok);
  const config = join(work, "piled.json");
  writeFileSync(config, JSON.stringify(simPileConfig({ pileId: "KEYS-1", dir: work })));
  daemon = spawn(process.execPath, [PILED, "--config", config], { stdio: ["ignore", "pipe", "pipe"] });
  daemon.stdout!.on("data", (b: Buffer) => {
    log += b.toString();
  });
  daemon.stderr!.on("data", (b: Buffer) => {
    log += b.toString();
  });
  await waitFor("the control socket", async () => (await control("status")).ok);
});

after(async () => {
  if (daemon?.pid && daemon.exitCode === null) {
    const gone = new Promise((r) => daemon.once("exit", r));
    process.kill(daemon.pid, "SIGTERM");
    await gone;
  }
  rmSync(work, { recursive: true, force: true });
});

test("SIGHUP loads a new key file; a loose-permission file refuses the reload by name and keeps the keys held", async () => {
  assert.deepEqual(await keyIds(), [1]);
  assert.ok(writeKeyFile(join(keys, "key-2.json"), 2, new Uint8Array(32).fill(2)).ok);
  process.kill(daemon.pid!, "SIGHUP");
  await waitFor("key 2", async () => (await keyIds()).join() === "1,2");

  writeFileSync(join(keys, "key-3.json"), JSON.stringify({ keyId: 3, key: "03".repeat(32) }));
  chmodSync(join(keys, "key-3.json"), 0o644);
  process.kill(daemon.pid!, "SIGHUP");
  await waitFor("the refusal in the log", async () => log.includes("key reload refused"));
  assert.match(log, /key-3\.json/);
  assert.deepEqual(await keyIds(), [1, 2], "the keys held stay as they were");
  rmSync(join(keys, "key-3.json"));
  const audit = await control("log", ["5"]);
  assert.ok(audit.ok);
  assert.ok(
    (audit.result as { action: string; outcome: string }[]).some(
      (e) => e.action === "reload-keys" && e.outcome === "BAD_FILE",
    ),
  );
  assert.equal((await control("status")).ok, true, "the daemon is still serving");
});

test("keys add / retire over the control socket: written 0600, never echoed, retired file kept aside", async () => {
  const hex = "a5".repeat(32);
  const added = await control("keys", ["add", "7", hex]);
  assert.ok(added.ok, JSON.stringify(added));
  assert.ok(!JSON.stringify(added).includes(hex), "the reply does not echo the key");
  const file = join(keys, "key-7.json");
  assert.equal(JSON.parse(readFileSync(file, "utf8")).keyId, 7);
  const { statSync } = await import("node:fs");
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.deepEqual(await keyIds(), [1, 2, 7]);
  const audit = await control("log", ["10"]);
  assert.ok(!JSON.stringify(audit).includes(hex), "the audit log does not hold the key");
  assert.ok(!log.includes(hex), "the daemon log does not hold the key");
  const retired = await control("keys", ["retire", "7"]);
  assert.ok(retired.ok);
  assert.deepEqual(await keyIds(), [1, 2]);
  const dup = await control("keys", ["add", "1", hex]);
  assert.equal(dup.ok, false);
});

test("a second daemon on the same pile refuses to start and touches nothing", async () => {
  const { spawnSync } = await import("node:child_process");
  const r = spawnSync(process.execPath, [PILED, "--config", join(work, "piled.json")], {
    encoding: "utf8",
    timeout: 20_000,
  });
  assert.equal(r.status, 2, r.stderr);
  assert.match(
    r.stderr,
    new RegExp(`another piled holds .*piled\\.lock \\(pid ${daemon.pid}\\); nothing was touched`),
  );
  assert.equal((await control("status")).ok, true, "the first daemon still serves");
});

test("field report: a second daemon on the same state directory is refused by the lock even when the first one's socket does not answer", async () => {
  const { spawnSync } = await import("node:child_process");
  // Same pile, same state directory, another control socket: nothing answers where the second
  // one looks, as when the first daemon's socket failed to start.
  const cfg = JSON.parse(readFileSync(join(work, "piled.json"), "utf8")) as {
    controlSocket: { path: string };
  };
  cfg.controlSocket.path = join(work, "other.sock");
  const file = join(work, "piled-other.json");
  writeFileSync(file, JSON.stringify(cfg));
  const r = spawnSync(process.execPath, [PILED, "--config", file], { encoding: "utf8", timeout: 20_000 });
  assert.equal(r.status, 2, `exit 2 before any line is touched; stderr:\n${r.stderr}`);
  assert.match(r.stderr, new RegExp(`another piled holds .*piled\\.lock \\(pid ${daemon.pid}\\)`));
  assert.doesNotMatch(
    r.stdout,
    /"msg":"(lines open|ready|control socket listening)/,
    "nothing of the pile started",
  );
  assert.equal((await control("status")).ok, true, "the first daemon still serves");
});
