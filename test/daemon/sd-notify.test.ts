import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mock, test } from "node:test";
import { createNotifier, startWatchdog, watchdogIntervalMs } from "../../src/daemon/sd-notify.js";

interface RecvSocket {
  bind(path: string): void;
  on(ev: "error", l: (e: Error) => void): void;
  close(): void;
}
const unixDgram = createRequire(import.meta.url)("unix-dgram") as {
  createSocket(type: "unix_dgram", l: (b: Buffer) => void): RecvSocket;
};

/** A datagram socket bound in a fresh folder, as systemd's notify socket would be. */
function receiver() {
  const dir = mkdtempSync(join(tmpdir(), "piled-notify-"));
  const path = join(dir, "notify.sock");
  const got: string[] = [];
  const waiters: Array<() => void> = [];
  const sock = unixDgram.createSocket("unix_dgram", (b) => {
    got.push(b.toString("utf8"));
    for (const w of waiters.splice(0)) w();
  });
  sock.on("error", (e) => assert.fail(e));
  sock.bind(path);
  const next = (n: number): Promise<void> =>
    got.length >= n ? Promise.resolve() : new Promise((r) => waiters.push(() => void next(n).then(r)));
  return {
    path,
    got,
    next,
    close: () => {
      sock.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test("READY, STATUS, WATCHDOG and STOPPING reach a real notify socket", async () => {
  const r = receiver();
  const errors: Error[] = [];
  const n = createNotifier({ NOTIFY_SOCKET: r.path }, (e) => errors.push(e));
  try {
    assert.equal(n.enabled, true);
    n.ready("listening\non ble");
    n.watchdog();
    n.status("charging");
    n.stopping();
    await r.next(4);
    assert.deepEqual(r.got, [
      "READY=1\nSTATUS=listening on ble",
      "WATCHDOG=1",
      "STATUS=charging",
      "STOPPING=1",
    ]);
    assert.deepEqual(errors, []);
  } finally {
    n.close();
    r.close();
  }
});

test("no NOTIFY_SOCKET: every call is a silent no-op", async () => {
  const errors: Error[] = [];
  const n = createNotifier({}, (e) => errors.push(e));
  assert.equal(n.enabled, false);
  n.ready();
  n.watchdog();
  await n.send("READY=1");
  n.close();
  assert.deepEqual(errors, []);
  assert.equal(createNotifier({ NOTIFY_SOCKET: "" }).enabled, false);
});

test("a notify socket that is gone reports an error, never throws", async () => {
  const dir = mkdtempSync(join(tmpdir(), "piled-notify-"));
  const errors: Error[] = [];
  const n = createNotifier({ NOTIFY_SOCKET: join(dir, "none.sock") }, (e) => errors.push(e));
  try {
    await n.send("READY=1");
    assert.equal(errors.length, 1);
  } finally {
    n.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("abstract socket names (@name) are reached", async (t) => {
  const which = spawnSync("socat", ["-V"], { stdio: "ignore" });
  assert.equal(which.error, undefined, "socat is missing: apt-get install socat (scripts/system-deps.txt)");
  const name = `piled-test-${process.pid}-${Date.now()}`;
  const child: ChildProcess = spawn("socat", ["-u", `ABSTRACT-RECV:${name}`, "STDOUT"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  t.after(() => {
    if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid);
  });
  let out = "";
  const received = new Promise<void>((resolve) =>
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("READY=1")) resolve();
    }),
  );
  // socat binds before it reads: retry the send until it is there.
  const errors: Error[] = [];
  const n = createNotifier({ NOTIFY_SOCKET: `@${name}` }, (e) => errors.push(e));
  let done = false;
  void received.then(() => {
    done = true;
  });
  for (let i = 0; i < 50 && !done; i++) {
    await n.send("READY=1");
    await new Promise((r) => setImmediate(r));
    if (!done) await Promise.race([received, new Promise((r) => setTimeout(r, 100))]);
  }
  await received;
  assert.match(out, /READY=1/);
});

test("watchdogIntervalMs: half of WATCHDOG_USEC, for this process only", () => {
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: "10000000" }, 42), 5000);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: "10000000", WATCHDOG_PID: "42" }, 42), 5000);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: "10000000", WATCHDOG_PID: "43" }, 42), undefined);
  assert.equal(watchdogIntervalMs({}, 42), undefined);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: "0" }, 42), undefined);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: "ten" }, 42), undefined);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: "-5" }, 42), undefined);
});

test("startWatchdog pings every half period while healthy, and stops", async () => {
  const r = receiver();
  const n = createNotifier({ NOTIFY_SOCKET: r.path });
  mock.timers.enable({ apis: ["setInterval"] });
  let healthy = true;
  try {
    const stop = startWatchdog(n, () => healthy, { WATCHDOG_USEC: "2000000", NOTIFY_SOCKET: r.path });
    mock.timers.tick(999);
    assert.equal(r.got.length, 0);
    mock.timers.tick(1);
    await r.next(1);
    mock.timers.tick(1000);
    await r.next(2);
    healthy = false;
    mock.timers.tick(5000);
    stop();
    healthy = true;
    mock.timers.tick(5000);
    await n.send("END=1");
    await r.next(3);
    assert.deepEqual(r.got, ["WATCHDOG=1", "WATCHDOG=1", "END=1"]);
  } finally {
    mock.timers.reset();
    n.close();
    r.close();
  }
});
