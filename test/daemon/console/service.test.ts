import assert from "node:assert/strict";
import { test } from "node:test";
import { hashSecret, parseHash, verifySecret } from "../../../src/daemon/console/secret.js";
import { startConsole } from "../../../src/daemon/console/service.js";
import type { ConsoleLink } from "../../../src/hw/ports.js";
import { fakePileControl } from "../fake-pile-control.js";

const FAST = { N: 1024, r: 8, p: 1 };

function memoryLink() {
  let listener: ((b: Uint8Array) => void) | undefined;
  let out = "";
  let closed = false;
  const link: ConsoleLink = {
    onData: (l) => {
      listener = l;
      return () => {
        listener = undefined;
      };
    },
    write: (t) => {
      out += t;
    },
    close: async () => {
      closed = true;
    },
  };
  return {
    link,
    type: (s: string) => listener?.(new TextEncoder().encode(s)),
    out: () => out,
    closed: () => closed,
  };
}

test("hashSecret/verifySecret: scrypt$N$r$p$salt$hash, right and wrong secrets, malformed hashes", async () => {
  const h = await hashSecret("s3cret-pile", FAST);
  assert.match(h, /^scrypt\$1024\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
  assert.ok(!h.includes("s3cret-pile"));
  assert.notEqual(await hashSecret("s3cret-pile", FAST), h, "salted");
  assert.equal(await verifySecret(h, "s3cret-pile"), true);
  assert.equal(await verifySecret(h, "s3cret-pilE"), false);
  assert.equal(await verifySecret(h, ""), false);
  for (const bad of [
    "",
    "scrypt$1000$8$1$AAAAAAAAAAA=$BBBBBBBBBBBBBBBBBBBBBB==",
    "bcrypt$x",
    h.replace("$8$", "$99$"),
    "s3cret-pile",
  ])
    assert.equal(await verifySecret(bad, "s3cret-pile"), false, bad);
  assert.equal(parseHash("scrypt$2097152$8$1$AAAAAAAAAAA=$BBBBBBBBBBBBBBBBBBBBBB=="), undefined, "N too big");
});

test("the console over a link: login, every command, audit entries with actor console", async () => {
  const secretHash = await hashSecret("tech-secret", FAST);
  const pile = fakePileControl();
  const m = memoryLink();
  const svc = startConsole({
    link: m.link,
    pile,
    secretHash,
    lockoutAfter: 3,
    lockoutMs: 60_000,
    idleLogoutMs: 300_000,
  });
  try {
    assert.match(m.out(), /secret: $/);
    m.type("tech-secret\r");
    await svc.idle();
    assert.match(m.out(), /piled> $/);
    const lines = [
      "status",
      "meter",
      "sessions 3",
      "faults",
      "clear-fault all",
      "stop",
      "relay-test",
      "keys",
      `keys add 9 ${"cd".repeat(32)}`,
      "keys retire 9",
      "time",
      "log 2",
    ];
    for (const l of lines) {
      m.type(`${l}\r`);
      await svc.idle();
    }
    const out = m.out();
    assert.match(out, /pile TEST-1 {2}state CHARGING/);
    assert.match(out, /bad input: .*console\.binary=0/);
    assert.match(out, /energy 12345 Wh/);
    assert.match(out, /session stopped/);
    assert.match(out, /key 9 added/);
    assert.ok(!out.includes("cdcd cdcd"), "sanity");
    const cmds = pile.audits.filter((a) => a.action !== "login");
    // What changes something is audited; the read-only queries are not.
    assert.deepEqual(
      cmds.map((a) => a.action),
      ["clear-fault", "stop", "relay-test", "keys", "keys"],
    );
    for (const a of pile.audits) assert.equal(a.actor, "console");
    assert.ok(!JSON.stringify(pile.audits).includes("cd".repeat(32)));
    assert.ok(pile.calls.includes("stop console"));
  } finally {
    await svc.close();
  }
  assert.equal(m.closed(), true);
});

test("the console keeps working after a failed secret check throws", async () => {
  const pile = fakePileControl();
  const m = memoryLink();
  const svc = startConsole({
    link: m.link,
    pile,
    secretHash: "not-a-hash",
    lockoutAfter: 3,
    lockoutMs: 60_000,
    idleLogoutMs: 300_000,
    verify: async () => {
      throw new Error("scrypt failed");
    },
  });
  try {
    m.type("anything\r");
    await svc.idle();
    assert.match(m.out(), /login incorrect\r\nsecret: $/);
  } finally {
    await svc.close();
  }
});

test("field report: a console link whose writes throw is contained and counted; nothing reaches the process (whose crash handler would end a charging session)", async () => {
  const escaped: unknown[] = [];
  const onEscape = (e: unknown) => escaped.push(e);
  process.on("uncaughtException", onEscape);
  process.on("unhandledRejection", onEscape);
  const secretHash = await hashSecret("tech-secret", FAST);
  const m = memoryLink();
  let broken = false;
  const write = m.link.write;
  m.link.write = (t) => {
    if (broken) throw Object.assign(new Error("write EIO"), { code: "EIO" });
    write(t);
  };
  const svc = startConsole({
    link: m.link,
    pile: fakePileControl(),
    secretHash,
    lockoutAfter: 3,
    lockoutMs: 60_000,
    idleLogoutMs: 300_000,
    tickMs: 5,
  });
  try {
    m.type("tech-secret\r");
    await svc.idle();
    broken = true;
    assert.doesNotThrow(() => m.type("status\r"), "a command whose echo cannot be written");
    await svc.idle();
    await new Promise((r) => setTimeout(r, 30)); // a few idle ticks on the broken link
    broken = false;
    const before = m.out().length;
    m.type("status\r");
    await svc.idle();
    assert.match(m.out().slice(before), /CHARGING|AVAILABLE|state/i, `the console goes on: ${m.out()}`);
    assert.ok((svc.counters()["console.errors"] ?? 0) >= 1, JSON.stringify(svc.counters()));
    assert.deepEqual(escaped, [], "no error reached the process");
  } finally {
    process.off("uncaughtException", onEscape);
    process.off("unhandledRejection", onEscape);
    await svc.close();
  }
});
