import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ControlSocketError, groupId, startControlSocket } from "../../src/daemon/control-socket.js";
import { fakePileControl, repoRoot } from "./fake-pile-control.js";

const KEY = "5a".repeat(32);

interface Run {
  code: number;
  out: string;
  err: string;
}

async function pilectl(args: string[]): Promise<Run> {
  const root = await repoRoot(import.meta.url);
  const bin = join(root, "dist/src/cli/pilectl.js");
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { env: { ...process.env, PILED_SOCKET: "" } }, (e, out, err) =>
      resolve({ code: e ? ((e as { code?: number }).code ?? -1) : 0, out, err }),
    );
  });
}

/** Sends raw lines on the socket and collects the reply lines. */
function raw(path: string, payload: string, replies: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const s = createConnection(path);
    let buf = "";
    s.setEncoding("utf8");
    s.on("connect", () => s.write(payload));
    s.on("data", (d: string) => {
      buf += d;
      const lines = buf.split("\n").filter((l) => l.length > 0);
      if (lines.length >= replies) {
        s.destroy();
        resolve(lines);
      }
    });
    s.on("error", reject);
    s.on("close", () => resolve(buf.split("\n").filter((l) => l.length > 0)));
  });
}

async function withServer(
  fn: (path: string, pile: ReturnType<typeof fakePileControl>, dir: string) => Promise<void>,
) {
  const dir = mkdtempSync(join(tmpdir(), "piled-ctl-"));
  const path = join(dir, "control.sock");
  const pile = fakePileControl();
  const srv = await startControlSocket({ path, mode: 0o660, group: String(process.getgid!()), pile });
  try {
    await fn(path, pile, dir);
  } finally {
    await srv.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test("socket is made with the configured mode and group", async () => {
  await withServer(async (path) => {
    const st = statSync(path);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o660);
    assert.equal(st.gid, process.getgid!());
  });
});

test("pilectl against the socket: human output, --json, exit codes, audit", async () => {
  await withServer(async (path, pile) => {
    const s = await pilectl(["status", "--socket", path]);
    assert.equal(s.code, 0, s.err);
    assert.match(s.out, /pile TEST-1 {2}state CHARGING/);
    assert.match(s.out, /control\.badRequest=0/);

    const j = await pilectl(["status", "--socket", path, "--json"]);
    assert.equal(j.code, 0);
    const lines = j.out.trim().split("\n");
    assert.equal(lines.length, 1, "--json prints one line");
    const reply = JSON.parse(lines[0]!) as { ok: boolean; result: { pileId: string } };
    assert.equal(reply.ok, true);
    assert.equal(reply.result.pileId, "TEST-1");

    assert.match((await pilectl(["meter-now", "--socket", path])).out, /energy 12345 Wh/);
    assert.match(
      (await pilectl(["sessions", "1", "--socket", path])).out,
      /a1b2c3d4 .* vehicle VIN-1 code 00112233 7200 Wh finished STOPPED_BY_CARRIER/,
    );
    assert.match((await pilectl(["faults", "--socket", path])).out, /CONTACTOR_WELDED .*LATCHED/);
    assert.match((await pilectl(["time", "--socket", path])).out, /skew {2}300000 ms/);

    const stop = await pilectl(["stop", "--socket", path]);
    assert.equal(stop.code, 0);
    assert.match(stop.out, /session stopped/);
    const again = await pilectl(["stop", "--socket", path]);
    assert.equal(again.code, 1, "refused by the daemon");
    assert.match(again.err, /NO_SESSION/);
    const againJson = await pilectl(["stop", "--socket", path, "--json"]);
    assert.equal(againJson.code, 1);
    assert.equal((JSON.parse(againJson.out) as { error: { code: string } }).error.code, "NO_SESSION");

    assert.equal((await pilectl(["clear-fault", "all", "--socket", path])).code, 0);
    assert.equal((await pilectl(["relay-test", "--socket", path])).code, 0);
    const add = await pilectl(["keys", "add", "42", KEY, "--socket", path]);
    assert.equal(add.code, 0, add.err);
    assert.ok(!add.out.includes(KEY));
    const list = await pilectl(["keys", "--socket", path]);
    assert.match(list.out, /key 42 \(0x0000002a\)/);
    assert.ok(!list.out.includes(KEY));
    assert.equal((await pilectl(["keys", "retire", "42", "--socket", path])).code, 0);
    const log = await pilectl(["log", "5", "--socket", path]);
    assert.match(log.out, /pilectl\(uid \d+ pid \d+\) keys add 42 \[redacted\] → ok/);

    const usage = await pilectl(["sessions", "0", "--socket", path]);
    assert.equal(usage.code, 2);
    assert.match(usage.err, /USAGE/);

    assert.equal(pile.keyHex.get(42), KEY);
    assert.ok(pile.audits.every((a) => a.actor === "pilectl"));
    assert.ok(!JSON.stringify(pile.audits).includes(KEY));
    assert.ok(pile.calls.includes("stop pilectl"));
  });
});

test("pilectl with no daemon: exit 2, naming the socket path", async () => {
  const dir = mkdtempSync(join(tmpdir(), "piled-ctl-"));
  try {
    const path = join(dir, "nothing.sock");
    const r = await pilectl(["status", "--socket", path]);
    assert.equal(r.code, 2);
    assert.ok(r.err.includes(path), r.err);
    const bad = await pilectl(["status", "--bogus"]);
    assert.equal(bad.code, 2);
    const help = await pilectl(["status", "--help"]);
    assert.equal(help.code, 0);
    assert.match(help.out, /^ {2}meter-now {2,}read the energy meter now$/m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("bad requests get a typed error, are counted, and change nothing", async () => {
  await withServer(async (path, pile) => {
    const replies = await raw(
      path,
      [
        "not json",
        "[1,2]",
        JSON.stringify({ id: 1 }),
        JSON.stringify({ id: 2, cmd: "stop", args: [1] }),
        JSON.stringify({ id: 3, cmd: "stop", extra: true }),
        JSON.stringify({ id: 4, cmd: "status" }),
        "",
      ].join("\n"),
      6,
    );
    const parsed = replies.map(
      (l) => JSON.parse(l) as { id: unknown; ok: boolean; error?: { code: string }; result?: unknown },
    );
    assert.deepEqual(
      parsed.map((p) => [p.id, p.ok ? "ok" : p.error!.code]),
      [
        [null, "BAD_REQUEST"],
        [null, "BAD_REQUEST"],
        [1, "BAD_REQUEST"],
        [2, "BAD_REQUEST"],
        [3, "BAD_REQUEST"],
        [4, "ok"],
      ],
    );
    const status = parsed[5]!.result as { counters: Record<string, number>; state: string };
    assert.equal(status.counters["control.badRequest"], 5);
    assert.equal(status.state, "CHARGING", "nothing was stopped");
    assert.ok(!pile.calls.some((c) => c.startsWith("stop")));

    const long = await raw(path, "x".repeat(70_000), 1);
    assert.equal((JSON.parse(long[0]!) as { error: { code: string } }).error.code, "TOO_LONG");
  });
});

test("a stale socket file is replaced; a live one, or a file that is not a socket, is not", async () => {
  const dir = mkdtempSync(join(tmpdir(), "piled-ctl-"));
  try {
    const path = join(dir, "control.sock");
    // A socket file with nothing behind it, as a killed daemon leaves.
    const dgram = createRequire(import.meta.url)("unix-dgram") as {
      createSocket(t: "unix_dgram"): { bind(p: string): void; close(): void };
    };
    const d = dgram.createSocket("unix_dgram");
    d.bind(path);
    d.close();
    assert.ok(statSync(path).isSocket());
    const pile = fakePileControl();
    const srv = await startControlSocket({ path, mode: 0o600, pile });
    try {
      assert.equal((await pilectl(["time", "--socket", path])).code, 0);
      await assert.rejects(
        startControlSocket({ path, mode: 0o600, pile }),
        (e: unknown) => e instanceof ControlSocketError && e.code === "IN_USE",
      );
      assert.equal((await pilectl(["time", "--socket", path])).code, 0, "the first daemon still answers");
    } finally {
      await srv.close();
    }
    const file = join(dir, "plain");
    writeFileSync(file, "keep me");
    await assert.rejects(
      startControlSocket({ path: file, mode: 0o600, pile }),
      (e: unknown) => e instanceof ControlSocketError && e.code === "NOT_A_SOCKET",
    );
    assert.equal(readFileSync(file, "utf8"), "keep me");
    await assert.rejects(
      startControlSocket({ path: join(dir, "g.sock"), mode: 0o600, group: "no-such-group-piled", pile }),
      (e: unknown) => e instanceof ControlSocketError && e.code === "NO_GROUP",
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("groupId reads names from the group file and takes numbers as they are", () => {
  const dir = mkdtempSync(join(tmpdir(), "piled-ctl-"));
  try {
    const f = join(dir, "group");
    writeFileSync(f, "root:x:0:\ngpio:x:997:piled\npiled:x:998:\n");
    assert.equal(groupId("gpio", f), 997);
    assert.equal(groupId("piled", f), 998);
    assert.equal(groupId("nope", f), undefined);
    assert.equal(groupId("123", f), 123);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("field report: a request whose handling throws is answered INTERNAL and counted; nothing reaches the process (whose crash handler would end a charging session)", async () => {
  const escaped: unknown[] = [];
  const onEscape = (e: unknown) => escaped.push(e);
  process.on("unhandledRejection", onEscape);
  process.on("uncaughtException", onEscape);
  const dir = mkdtempSync(join(tmpdir(), "piled-ctl-"));
  const path = join(dir, "control.sock");
  const pile = fakePileControl();
  const status = pile.status.bind(pile);
  let poisoned = true;
  // A reply that cannot be serialised (a BigInt where a number belongs): the handler throws.
  pile.status = () =>
    poisoned ? ({ ...status(), uptimeMs: 1n } as unknown as ReturnType<typeof status>) : status();
  const srv = await startControlSocket({ path, mode: 0o600, pile });
  const noAnswer = (ms: number) =>
    new Promise<string[]>((r) => setTimeout(() => r(["(no answer)"]), ms).unref());
  try {
    const [a] = await Promise.race([raw(path, '{"id":1,"cmd":"status"}\n', 1), noAnswer(5000)]);
    const r = JSON.parse(a!.startsWith("{") ? a! : "{}") as {
      id?: unknown;
      ok?: boolean;
      error?: { code?: string };
    };
    assert.equal(r.ok, false, `answer: ${a}`);
    assert.equal(r.id, 1);
    assert.equal(r.error?.code, "INTERNAL");
    poisoned = false;
    const [b] = await Promise.race([raw(path, '{"id":2,"cmd":"status"}\n', 1), noAnswer(5000)]);
    assert.equal((JSON.parse(b!) as { ok: boolean }).ok, true, "the socket goes on serving");
    assert.equal(srv.counters()["control.errors"], 1);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(escaped, [], "no error reached the process");
  } finally {
    process.off("unhandledRejection", onEscape);
    process.off("uncaughtException", onEscape);
    await srv.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

const until = async (cond: () => boolean): Promise<void> => {
  while (!cond()) await new Promise((r) => setTimeout(r, 20));
};

async function withLimited(
  limits: Parameters<typeof startControlSocket>[0]["limits"],
  fn: (
    path: string,
    srv: Awaited<ReturnType<typeof startControlSocket>>,
    pile: ReturnType<typeof fakePileControl>,
    clock: { t: number },
  ) => Promise<void>,
) {
  const dir = mkdtempSync(join(tmpdir(), "piled-ctl-"));
  const path = join(dir, "control.sock");
  const pile = fakePileControl();
  const clock = { t: 0 };
  const srv = await startControlSocket({
    path,
    mode: 0o600,
    pile,
    ...(limits ? { limits } : {}),
    monotonic: () => clock.t,
  });
  try {
    await fn(path, srv, pile, clock);
  } finally {
    await srv.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const connect = (path: string): Promise<ReturnType<typeof createConnection>> =>
  new Promise((resolve, reject) => {
    const s = createConnection(path);
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });

test("field report: idle connections are capped; one more is told BUSY and the daemon keeps answering", {
  timeout: 30_000,
}, async () => {
  await withLimited({ maxConnections: 4 }, async (path, srv) => {
    const idle = await Promise.all([1, 2, 3, 4].map(() => connect(path)));
    await until(() => srv.connections().open === 4);
    const extra = await raw(path, "", 1);
    assert.equal((JSON.parse(extra[0]!) as { error: { code: string } }).error.code, "BUSY");
    assert.equal(srv.connections().open, 4, "the extra one holds no descriptor");
    assert.equal(srv.counters()["control.refusedConnection"], 1);
    idle[0]!.destroy();
    await until(() => srv.connections().open === 3);
    assert.equal((await pilectl(["time", "--socket", path])).code, 0, "room again: pilectl answers");
    for (const s of idle) s.destroy();
  });
});

test("field report: an idle client is disconnected", { timeout: 30_000 }, async () => {
  await withLimited({ idleTimeoutMs: 100 }, async (path, srv) => {
    const s = await connect(path);
    await new Promise((r) => s.once("close", r));
    assert.equal(srv.counters()["control.idleClosed"], 1);
    await until(() => srv.connections().open === 0);
  });
});

test("field report: replies a client does not read stop its requests being read; memory stays bounded", {
  timeout: 60_000,
}, async () => {
  const N = 20_000;
  const high = 64 * 1024;
  await withLimited({ burst: 1e9, perSecond: 1e9, highWaterBytes: high }, async (path, srv, pile) => {
    const s = await connect(path);
    s.pause(); // reads nothing
    s.write(`${JSON.stringify({ id: 1, cmd: "status", args: [] })}\n`.repeat(N));
    // Wait until the server stops making progress (or has answered everything, unbounded).
    let last = -1;
    let maxBuffered = 0;
    let still = 0;
    while (still < 10) {
      await new Promise((r) => setTimeout(r, 30));
      maxBuffered = Math.max(maxBuffered, srv.connections().buffered);
      const n = pile.calls.filter((c) => c === "status").length;
      if (n === N) break;
      still = n === last ? still + 1 : 0;
      last = n;
    }
    const handled = pile.calls.filter((c) => c === "status").length;
    const replyBytes = (await raw(path, `${JSON.stringify({ id: 1, cmd: "status", args: [] })}\n`, 1))[0]!
      .length;
    console.log(
      `handled ${handled} of ${N} unread requests; max queued ${maxBuffered} bytes (reply ${replyBytes} bytes)`,
    );
    assert.ok(handled < N, "the server stopped reading the client's requests");
    assert.ok(maxBuffered <= high + 2 * replyBytes, `queued ${maxBuffered} bytes`);
    // Once the client reads, every reply comes.
    let got = 0;
    let buf = "";
    s.setEncoding("utf8");
    s.on("data", (d: string) => {
      buf += d;
      const parts = buf.split("\n");
      buf = parts.pop()!;
      got += parts.length;
    });
    s.resume();
    await until(() => got === N);
    s.destroy();
  });
});

test("field report: a client that floods is rate-limited and its extra requests run nothing", async () => {
  await withLimited({ burst: 5, perSecond: 1 }, async (path, srv, pile, clock) => {
    const req = `${JSON.stringify({ id: 1, cmd: "status", args: [] })}\n`;
    const codes = async (n: number): Promise<string[]> =>
      (await raw(path, req.repeat(n), n)).map((l) => {
        const r = JSON.parse(l) as { ok: boolean; error?: { code: string } };
        return r.ok ? "ok" : r.error!.code;
      });
    const first = await codes(10);
    assert.deepEqual(first, [...Array(5).fill("ok"), ...Array(5).fill("RATE_LIMITED")]);
    assert.equal(pile.calls.filter((c) => c === "status").length, 5);
    assert.equal(srv.counters()["control.rateLimited"], 5);
    clock.t += 1000;
    const later = await codes(5);
    assert.deepEqual(later, ["ok", "ok", "ok", "ok", "ok"], "a new connection has its own bucket");
  });
});

test("field report: a socket mode writable by others is refused", async () => {
  const dir = mkdtempSync(join(tmpdir(), "piled-ctl-"));
  try {
    const path = join(dir, "control.sock");
    await assert.rejects(
      startControlSocket({ path, mode: 0o666, pile: fakePileControl() }),
      (e: unknown) => e instanceof ControlSocketError && e.code === "MODE",
    );
    assert.throws(() => statSync(path), "no socket was made");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
