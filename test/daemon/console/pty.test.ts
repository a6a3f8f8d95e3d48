/**
 * The console over a real pty, driven by a real terminal program: socat makes a pty pair, the
 * console's serial adapter opens one end, picocom runs on the other inside tmux, and the test
 * types with `tmux send-keys` and reads the screen with `tmux capture-pane`. Needs socat, tmux
 * and picocom (scripts/system-deps.txt). The console's clock is a fake one: the lockout ends
 * when the test says so, not after a real minute.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readlinkSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { hashSecret } from "../../../src/daemon/console/secret.js";
import { startConsole } from "../../../src/daemon/console/service.js";
import { openSerialConsole } from "../../../src/hw/console/serial-link.js";
import type { Clock } from "../../../src/hw/ports.js";
import { waitFor } from "../../helpers/poll.js";
import { fakePileControl } from "../fake-pile-control.js";

function requireTool(cmd: string, args: string[], pkg: string): void {
  const r = spawnSync(cmd, args, { stdio: "ignore" });
  assert.equal(r.error, undefined, `${cmd} is missing: apt-get install ${pkg} (scripts/system-deps.txt)`);
}

const until = <T>(what: string, probe: () => T | undefined, screen: () => string): Promise<T> =>
  waitFor(what, probe, { timeoutMs: 10_000, everyMs: 50, detail: () => `screen:\n${screen()}` });

test("technician at a terminal: lockout, login, line editing, commands, audit", async (t) => {
  requireTool("socat", ["-V"], "socat");
  requireTool("tmux", ["-V"], "tmux");
  requireTool("picocom", ["--help"], "picocom");

  const dir = mkdtempSync(join(tmpdir(), "piled-pty-"));
  const consoleEnd = join(dir, "console");
  const termEnd = join(dir, "term");
  const tmuxSock = join(dir, "tmux.sock");
  const children: ChildProcess[] = [];
  t.after(() => {
    spawnSync("tmux", ["-S", tmuxSock, "kill-server"], { stdio: "ignore" });
    for (const c of children) if (c.pid !== undefined && c.exitCode === null) process.kill(c.pid);
    rmSync(dir, { recursive: true, force: true });
  });

  const socat = spawn("socat", [`PTY,raw,echo=0,link=${consoleEnd}`, `PTY,raw,echo=0,link=${termEnd}`], {
    stdio: "ignore",
  });
  children.push(socat);
  await until(
    "the pty pair",
    () => (existsSync(consoleEnd) && existsSync(termEnd) ? true : undefined),
    () => "",
  );

  let now = 1_000_000;
  const clock: Clock = { now: () => now, monotonic: () => now };
  const pile = fakePileControl();
  const secret = "pile-tech-2024";
  const svc = startConsole({
    link: openSerialConsole({ path: consoleEnd, baud: 115200 }),
    pile,
    secretHash: await hashSecret(secret, { N: 1024, r: 8, p: 1 }),
    lockoutAfter: 2,
    lockoutMs: 60_000,
    idleLogoutMs: 300_000,
    pileId: "TEST-1",
    clock,
  });
  t.after(() => svc.close());

  const env = { ...process.env, TERM: "xterm" };
  const tmux = (...args: string[]) => spawnSync("tmux", ["-S", tmuxSock, ...args], { encoding: "utf8", env });
  const started = tmux(
    "new-session",
    "-d",
    "-s",
    "pile",
    "-x",
    "120",
    "-y",
    "50",
    `picocom --quiet -b 115200 ${termEnd}`,
  );
  assert.equal(started.status, 0, started.stderr);
  const screen = () => tmux("capture-pane", "-p", "-t", "pile", "-S", "-500").stdout;
  const type = (text: string) => tmux("send-keys", "-t", "pile", "-l", text);
  const key = (k: string) => tmux("send-keys", "-t", "pile", k);
  const see = (re: RegExp, n = 1) =>
    until(
      `${re} ×${n}`,
      () => ((screen().match(new RegExp(re, "g"))?.length ?? 0) >= n ? true : undefined),
      screen,
    );

  // Keys typed before picocom holds its end of the pty are lost: wait until it does.
  const panePid = tmux("list-panes", "-t", "pile", "-F", "#{pane_pid}").stdout.trim();
  const ptyPath = realpathSync(termEnd);
  await until(
    "picocom to open its end of the pty",
    () => {
      try {
        const fds = readdirSync(`/proc/${panePid}/fd`);
        return fds.some((fd) => {
          try {
            return readlinkSync(`/proc/${panePid}/fd/${fd}`) === ptyPath;
          } catch {
            return false;
          }
        })
          ? true
          : undefined;
      } catch {
        return undefined;
      }
    },
    screen,
  );
  // The console prints its banner at start, before picocom is there: Enter asks for a prompt.
  key("Enter");
  await see(/secret:/);

  type("wrong-one");
  await see(/\*{9}/);
  assert.ok(!screen().includes("wrong-one"), "the secret is not echoed");
  key("Enter");
  await see(/login incorrect/);
  type("wrong-two");
  key("Enter");
  await see(/locked out for 60 s/);

  type(secret);
  key("Enter");
  await see(/locked out; try again in 60 s/);

  now += 60_000;
  type(secret);
  key("Enter");
  await see(/logged in/);
  await see(/piled>/);

  type("status");
  key("Enter");
  await see(/state CHARGING/);

  // Line editing from the terminal: a typo, two backspaces, the right ending.
  type("stpo");
  key("BSpace");
  key("BSpace");
  type("op");
  key("Enter");
  await see(/session stopped/);

  // Ctrl-U kills a half-typed line; an unknown command is refused.
  type("relay");
  key("C-u");
  type("frobnicate");
  key("Enter");
  await see(/unknown command; help lists the commands/);

  const keyHex = "9f".repeat(32);
  type(`keys add 5 ${keyHex}`);
  key("Enter");
  await see(/key 5 added/);

  type("logout");
  key("Enter");
  await see(/logged out/);
  await svc.idle();

  const trail = pile.audits.map((a) => `${a.action}:${a.outcome}`);
  assert.deepEqual(trail, [
    "login:BAD_SECRET",
    "login:BAD_SECRET",
    "lockout:LOCKED_OUT",
    "login:ok",
    "stop:ok",
    "unknown:UNKNOWN_COMMAND",
    "keys:ok",
    "logout:ok",
  ]);
  assert.ok(pile.audits.every((a) => a.actor === "console"));
  assert.ok(!JSON.stringify(pile.audits).includes(keyHex), "no key bytes in the audit log");
  assert.ok(!JSON.stringify(pile.audits).includes(secret), "no secret in the audit log");
  assert.equal(pile.keyHex.get(5), keyHex);
});
