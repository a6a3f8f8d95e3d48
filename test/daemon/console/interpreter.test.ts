import assert from "node:assert/strict";
import { test } from "node:test";
import {
  type ConsoleAction,
  ConsoleInterpreter,
  type Step,
} from "../../../src/daemon/console/interpreter.js";
import type { Clock } from "../../../src/hw/ports.js";

const SECRET = "correct horse";

function fakeClock() {
  let t = 1_000_000;
  const clock: Clock = { now: () => t, monotonic: () => t };
  return {
    clock,
    advance: (ms: number) => {
      t += ms;
    },
  };
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Drives an interpreter like the service does, with the secret check answered at once. */
function harness(
  opts: Partial<{ lockoutAfter: number; lockoutMs: number; idleLogoutMs: number; maxLine: number }> = {},
) {
  const c = fakeClock();
  const it = new ConsoleInterpreter({
    clock: c.clock,
    lockoutAfter: opts.lockoutAfter ?? 3,
    lockoutMs: opts.lockoutMs ?? 60_000,
    idleLogoutMs: opts.idleLogoutMs ?? 300_000,
    ...(opts.maxLine !== undefined ? { maxLine: opts.maxLine } : {}),
    pileId: "TEST-1",
  });
  let out = "";
  const actions: ConsoleAction[] = [];
  const commands: Array<{ name: string; args: string[] }> = [];
  const take = (s: Step): void => {
    out += s.output;
    for (const a of s.actions) {
      actions.push(a);
      if (a.kind === "verify") take(it.loginResult(a.secret === SECRET));
      if (a.kind === "command") commands.push({ name: a.name, args: a.args });
    }
  };
  take(it.start());
  return {
    it,
    ...c,
    type: (s: string | Uint8Array) => take(it.feed(typeof s === "string" ? enc(s) : s)),
    tick: () => take(it.tick()),
    done: (text: string) => take(it.commandDone({ ok: true, text })),
    fail: (code: string, message: string) => take(it.commandDone({ ok: false, code, message })),
    out: () => out,
    clearOut: () => {
      out = "";
    },
    audits: () => actions.flatMap((a) => (a.kind === "audit" ? [a.entry] : [])),
    verifies: () => actions.filter((a) => a.kind === "verify").length,
    commands,
  };
}

function loggedIn() {
  const h = harness();
  h.type(`${SECRET}\r`);
  assert.equal(h.it.loggedIn, true);
  h.clearOut();
  return h;
}

test("banner, masked secret echo, login, audit", () => {
  const h = harness();
  assert.match(h.out(), /technician console \(pile TEST-1\)\r\nsecret: $/);
  h.clearOut();
  h.type("abc");
  assert.equal(h.out(), "***");
  h.type("\x7f\x7fbc");
  assert.ok(!h.out().includes("abc"), "the secret is never echoed");
  h.type("\r");
  assert.equal(h.it.loggedIn, false);
  assert.match(h.out(), /login incorrect\r\nsecret: $/);
  h.type(`${SECRET}\n`);
  assert.equal(h.it.loggedIn, true);
  assert.match(h.out(), /logged in.*\r\npiled> $/);
  assert.deepEqual(
    h.audits().map((a) => [a.action, a.outcome]),
    [
      ["login", "BAD_SECRET"],
      ["login", "ok"],
    ],
  );
  assert.ok(!JSON.stringify(h.audits()).includes(SECRET));
});

test("lockout after N failures, refuses even the right secret, ends after lockoutMs, then doubles", () => {
  const h = harness({ lockoutAfter: 3, lockoutMs: 60_000 });
  for (let i = 0; i < 3; i++) h.type("wrong\r");
  assert.match(h.out(), /locked out for 60 s/);
  assert.equal(h.verifies(), 3);
  h.clearOut();
  h.type(`${SECRET}\r`);
  assert.equal(h.it.loggedIn, false);
  assert.equal(h.verifies(), 3, "no secret is even checked while locked out");
  assert.match(h.out(), /locked out; try again in 60 s/);
  assert.ok(!h.out().includes("*"), "keystrokes during a lockout are not echoed");
  h.advance(59_999);
  h.type(`${SECRET}\r`);
  assert.equal(h.it.loggedIn, false);
  h.advance(1);
  for (let i = 0; i < 3; i++) h.type("wrong again\r");
  assert.match(h.out(), /locked out for 120 s/, "the second lockout doubles");
  h.advance(120_000);
  h.type(`${SECRET}\r`);
  assert.equal(h.it.loggedIn, true);
  const lockouts = h.audits().filter((a) => a.action === "lockout");
  assert.deepEqual(
    lockouts.map((a) => [a.outcome, a.detail]),
    [
      ["LOCKED_OUT", "60 s"],
      ["LOCKED_OUT", "120 s"],
    ],
  );
  assert.equal(h.it.counters()["console.badLogin"], 6);
  assert.equal(h.it.counters()["console.lockout"], 2);
});

test("a good login resets the failure count", () => {
  const h = harness({ lockoutAfter: 3 });
  h.type("a\rb\r");
  h.type(`${SECRET}\r`);
  h.type("logout\r");
  h.type("c\rd\r");
  assert.ok(!h.out().includes("locked out"));
});

test("idle logout after idleLogoutMs, by tick or by the next keystroke", () => {
  const h = loggedIn();
  h.advance(299_999);
  h.tick();
  assert.equal(h.it.loggedIn, true);
  h.type("st");
  h.advance(300_000);
  h.tick();
  assert.equal(h.it.loggedIn, false);
  assert.match(h.out(), /idle: logged out\r\nsecret: $/);

  const g = loggedIn();
  g.advance(400_000);
  g.type("status\r");
  assert.equal(g.it.loggedIn, false);
  assert.equal(g.commands.length, 0, "keystrokes that wake an idle console run nothing");
  assert.equal(g.verifies(), 1, "…and are not taken as a secret");
  assert.deepEqual(g.audits().at(-1), { actor: "console", action: "logout", outcome: "IDLE" });
});

test("a running command does not count as idle time", () => {
  const h = loggedIn();
  h.type("stop\r");
  h.advance(400_000);
  h.tick();
  assert.equal(h.it.loggedIn, true);
  h.done("session stopped");
  assert.equal(h.it.loggedIn, true);
});

test("line editing: backspace, DEL, Ctrl-U, Ctrl-C, CR/LF/CRLF", () => {
  const h = loggedIn();
  h.type("statx\x08us\r");
  assert.deepEqual(h.commands.at(-1), { name: "status", args: [] });
  assert.ok(h.out().endsWith("statx\b \bus\r\n"));
  h.done("ok");
  h.type("garbage\x15faults\r\n");
  assert.deepEqual(h.commands.at(-1), { name: "faults", args: [] });
  h.done("");
  h.type("stop\x03");
  assert.match(h.out(), /\^C\r\npiled> $/);
  h.type("time\n");
  assert.deepEqual(h.commands.at(-1), { name: "time", args: [] });
  h.done("");
  h.type("  sessions   5  \r");
  assert.deepEqual(h.commands.at(-1), { name: "sessions", args: ["5"] });
  h.done("");
  h.type("\x7f\x7f\x7f\r");
  assert.equal(h.commands.length, 4, "backspace on an empty line, then Enter: nothing runs");
  h.type("\r\n\r\n");
  assert.equal(h.commands.length, 4);
});

test("Ctrl-D logs out on an empty line only", () => {
  const h = loggedIn();
  h.type("ti\x04");
  assert.equal(h.it.loggedIn, true);
  h.type("\x15\x04");
  assert.equal(h.it.loggedIn, false);
  assert.deepEqual(h.audits().at(-1), { actor: "console", action: "logout", outcome: "ok" });
});

test("escape sequences are consumed; up and down walk the history", () => {
  const h = loggedIn();
  h.type("time\r");
  h.done("");
  h.type("faults\r");
  h.done("");
  h.type("\x1b[D\x1b[C\x1b[3~\x1bOH");
  assert.equal(h.commands.length, 2);
  h.type("\x1b[A\r");
  assert.deepEqual(h.commands.at(-1), { name: "faults", args: [] });
  h.done("");
  h.type("\x1b[A\x1b[A\x1b[A\r");
  assert.deepEqual(h.commands.at(-1), { name: "time", args: [] });
  h.done("");
  h.type("\x1b[A\x1b[B\r");
  assert.equal(h.commands.length, 4, "down past the newest gives an empty line");
  assert.equal(h.it.counters()["console.binary"], 0);
});

test("a line carrying a key is kept out of the history", () => {
  const h = loggedIn();
  h.type(`keys add 7 ${"ab".repeat(32)}\r`);
  h.done("key 7 added");
  h.type("\x1b[A\r");
  assert.equal(h.commands.length, 1);
});

test("an overlong line gives one error line, is dropped, and is counted", () => {
  const h = harness({ maxLine: 16 });
  h.type(`${SECRET}\r`);
  h.clearOut();
  h.type(`status${"x".repeat(40)}\r`);
  assert.equal(h.commands.length, 0);
  assert.match(h.out(), /error: line longer than 16 characters, ignored\r\npiled> $/);
  assert.equal(h.it.counters()["console.overlong"], 1);
  h.type("status\r");
  assert.equal(h.commands.length, 1, "the next line works");
});

test("binary noise and invalid UTF-8: an error line, nothing runs, counted", () => {
  const h = loggedIn();
  const noises: Uint8Array[] = [
    Uint8Array.from([0x00, 0x01, 0x02]),
    Uint8Array.from([0xff, 0xfe]),
    Uint8Array.from([0xc3]), // lead byte, then a non-continuation
    Uint8Array.from([0xed, 0xa0, 0x80]), // a UTF-16 surrogate in UTF-8
    Uint8Array.from([0xc0, 0xaf]), // overlong encoding
    Uint8Array.from([0x80]),
  ];
  for (const n of noises) {
    h.type(enc("stop"));
    h.type(n);
    h.type("\r");
  }
  assert.equal(h.commands.length, 0);
  assert.equal(h.it.counters()["console.binary"], noises.length);
  assert.equal(
    h.out().match(/error: binary data or invalid UTF-8 on the line, ignored/g)?.length,
    noises.length,
  );
  // Valid UTF-8 text is text: it reaches the command (which the table will refuse).
  h.type("clear-fault ÉCHEC\r");
  assert.deepEqual(h.commands.at(-1), { name: "clear-fault", args: ["ÉCHEC"] });
});

test("random bytes never throw and never run anything before a login", () => {
  const h = harness();
  let seed = 7;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed & 0xff;
  };
  for (let i = 0; i < 2000; i++) {
    const len = 1 + (rnd() % 32);
    h.type(Uint8Array.from({ length: len }, rnd));
  }
  assert.equal(h.it.loggedIn, false);
  assert.equal(h.commands.length, 0);
});

test("unknown commands are refused, counted and audited without their words", () => {
  const h = loggedIn();
  h.type("reboot now\r");
  h.type(`${"ab".repeat(32)}\r`);
  h.type("meter-now\r");
  assert.equal(h.commands.length, 0);
  assert.equal(h.it.counters()["console.unknown"], 3);
  assert.match(h.out(), /unknown command; help lists the commands/);
  assert.doesNotMatch(
    h.out(),
    /unknown command[^\r]*reboot/,
    "the word is not repeated (it may be a secret)",
  );
  const unknown = h.audits().filter((a) => a.action === "unknown");
  assert.equal(unknown.length, 3);
  assert.ok(!JSON.stringify(unknown).includes("ab".repeat(32)));
});

test("help lists every command; logout ends the session", () => {
  const h = loggedIn();
  h.type("help\r");
  for (const c of [
    "status",
    "meter",
    "sessions",
    "faults",
    "clear-fault",
    "stop",
    "relay-test",
    "keys",
    "time",
    "log",
    "logout",
  ])
    assert.match(h.out(), new RegExp(`\\r\\n {2}${c}`), c);
  h.type("logout\r");
  assert.equal(h.it.loggedIn, false);
  assert.match(h.out(), /logged out\r\nsecret: $/);
});

test("keystrokes typed while a command runs are replayed after it", () => {
  const h = loggedIn();
  h.type("stop\rtime\r");
  assert.equal(h.commands.length, 1);
  h.done("session stopped");
  assert.deepEqual(
    h.commands.map((c) => c.name),
    ["stop", "time"],
  );
  h.fail("NO_SESSION", "no session to stop");
  assert.match(h.out(), /session stopped\r\npiled> time\r\nerror NO_SESSION: no session to stop\r\npiled> $/);
});

test("command output lines end in CRLF", () => {
  const h = loggedIn();
  h.type("status\r");
  h.done("line one\nline two");
  assert.match(h.out(), /line one\r\nline two\r\npiled> $/);
});

test("field report: a key or the secret typed at the shell prompt is not echoed back nor kept in the history", () => {
  const h = loggedIn();
  const half = "c3".repeat(16);
  // The secret typed again while logged in, a key pasted in the wrong place, split in halves,
  // its op in capitals.
  for (const line of [
    SECRET,
    `${half} ${half}`,
    `keys list ${half} ${half}`,
    `keys ADD 17 ${"C3".repeat(32)}`,
  ]) {
    h.clearOut();
    h.type(`${line}\r`);
    const echoed = h.out().split("\r\n").slice(1).join("\r\n");
    assert.ok(!echoed.includes(half) && !echoed.toLowerCase().includes(half), line);
    assert.ok(!echoed.includes("horse"), line);
    if (h.commands.length > 0 && h.it.loggedIn) h.fail("USAGE", "bad");
  }
  const ran = h.commands.length;
  // None of these lines can be recalled.
  h.type("\x1b[A\x1b[A\x1b[A\x1b[A\r");
  assert.equal(h.commands.length, ran, "history holds none of them: the recalled line is empty");
  assert.ok(!JSON.stringify(h.audits()).includes(half));
  assert.ok(!JSON.stringify(h.audits()).includes("horse"));
});
