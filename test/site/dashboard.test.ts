/**
 * The dashboard's HTTP surface with bad input of every kind: no login, a wrong login and the
 * lockout, a forged or missing CSRF token, huge bodies, a flood of connections. Each is a clear
 * refusal, counted, audited where it could have moved the pile, and the pile never moves.
 */
import assert from "node:assert/strict";
import { connect } from "node:net";
import { test } from "node:test";
import { TECH_SECRET } from "./fake-port.js";
import { post, startRig } from "./rig.js";

async function login(url: string): Promise<{ cookie: string; csrf: string }> {
  const r = await post(`${url}/api/login`, { secret: TECH_SECRET });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const cookie = r.cookie ?? "";
  assert.match(cookie, /HttpOnly/);
  assert.match(cookie, /SameSite=Strict/);
  return { cookie: cookie.split(";")[0]!, csrf: String(r.body.csrf) };
}

test("read-only snapshot without login; the page is served with its security headers", async () => {
  const rig = await startRig();
  try {
    rig.port.startSession();
    const r = await fetch(`${rig.url}/api/snapshot`);
    const s = (await r.json()) as { status: { state: string }; sessions: unknown[] };
    assert.equal(s.status.state, "CHARGING");
    assert.equal(s.sessions.length, 1);
    const page = await fetch(`${rig.url}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-security-policy") ?? "", /default-src 'self'/);
    assert.match(await page.text(), /<script src="\/app.js"/);
  } finally {
    await rig.close();
  }
});

test("a command without login, with a forged CSRF token or without one is refused, counted, audited", async () => {
  const rig = await startRig();
  try {
    rig.port.startSession();
    const none = await post(`${rig.url}/api/command`, { command: "stop" });
    assert.equal(none.status, 401);
    assert.equal(none.body.code, "LOGIN");
    const { cookie, csrf } = await login(rig.url);
    const forged = await post(
      `${rig.url}/api/command`,
      { command: "stop" },
      { cookie, "x-csrf-token": `${csrf.slice(0, -2)}AA` },
    );
    assert.equal(forged.status, 403);
    assert.equal(forged.body.code, "BAD_CSRF");
    const missing = await post(`${rig.url}/api/command`, { command: "stop" }, { cookie });
    assert.equal(missing.status, 403);
    const crossSite = await post(
      `${rig.url}/api/command`,
      { command: "stop" },
      { cookie, "x-csrf-token": csrf, origin: "http://evil.example" },
    );
    assert.equal(crossSite.status, 403);
    const forgedCookie = await post(
      `${rig.url}/api/command`,
      { command: "stop" },
      { cookie: "piled_sid=abc", "x-csrf-token": csrf },
    );
    assert.equal(forgedCookie.status, 401);
    assert.deepEqual(rig.port.calls, [], "nothing reached the pile");
    assert.equal(rig.port.state, "CHARGING");
    assert.equal(rig.counters.get("http.noLogin"), 2);
    assert.equal(rig.counters.get("http.badCsrf"), 3);
    assert.ok(rig.port.audits.filter((a) => a.outcome === "BAD_CSRF").length === 3);
    const good = await post(`${rig.url}/api/command`, { command: "stop" }, { cookie, "x-csrf-token": csrf });
    assert.equal(good.status, 200, JSON.stringify(good.body));
    assert.deepEqual(rig.port.calls, ["stop:dashboard"]);
    const bad = await post(
      `${rig.url}/api/command`,
      { command: "format-disk" },
      { cookie, "x-csrf-token": csrf },
    );
    assert.equal(bad.status, 400);
    assert.equal(rig.counters.get("http.badCommand"), 1);
  } finally {
    await rig.close();
  }
});

test("wrong logins lock the dashboard out like the console; the right secret is then refused too", async () => {
  const rig = await startRig({ lockoutAfter: 3, lockoutMs: 60_000 });
  try {
    for (let i = 0; i < 2; i++) {
      const r = await post(`${rig.url}/api/login`, { secret: "wrong secret" });
      assert.equal(r.status, 401);
      assert.equal(r.body.code, "BAD_LOGIN");
      assert.equal(r.cookie, null);
    }
    const third = await post(`${rig.url}/api/login`, { secret: "wrong again" });
    assert.equal(third.body.code, "LOCKED_OUT");
    const right = await post(`${rig.url}/api/login`, { secret: TECH_SECRET });
    assert.equal(right.status, 401);
    assert.equal(right.body.code, "LOCKED_OUT");
    assert.equal(right.cookie, null);
    assert.equal(rig.counters.get("http.badLogin"), 2);
    assert.equal(rig.counters.get("http.lockout"), 1);
    assert.ok(rig.port.audits.some((a) => a.action === "lockout" && a.outcome === "LOCKED_OUT"));
    const text = JSON.stringify(rig.port.audits);
    assert.ok(!text.includes(TECH_SECRET) && !text.includes("wrong secret"), "no secret in the audit trail");
  } finally {
    await rig.close();
  }
});

test("huge and malformed bodies are refused before they are read whole", async () => {
  const rig = await startRig({ maxBodyBytes: 1024 });
  try {
    const huge = await post(`${rig.url}/api/login`, { secret: "x".repeat(100_000) });
    assert.equal(huge.status, 413);
    assert.equal(huge.body.code, "TOO_LARGE");
    const notJson = await post(`${rig.url}/api/login`, "{secret:");
    assert.equal(notJson.status, 400);
    const wrongType = await fetch(`${rig.url}/api/login`, { method: "POST", body: "secret=x" });
    assert.equal(wrongType.status, 415);
    assert.equal(rig.counters.get("http.tooLarge"), 1);
    assert.equal(rig.counters.get("http.badBody"), 2);
    assert.equal(rig.port.audits.length, 0, "no login was even tried");
  } finally {
    await rig.close();
  }
});

test("a flood of connections above the cap gets a 503 and is counted; the dashboard still answers after", async () => {
  const rig = await startRig({ maxConnections: 4 });
  const port = Number(new URL(rig.url).port);
  const held: ReturnType<typeof connect>[] = [];
  try {
    for (let i = 0; i < 4; i++) {
      const s = connect(port, "127.0.0.1");
      await new Promise((r) => s.once("connect", r));
      held.push(s);
    }
    await new Promise((r) => setTimeout(r, 50));
    const extra = connect(port, "127.0.0.1");
    const reply = await new Promise<string>((resolve) => {
      let got = "";
      extra.on("data", (d) => {
        got += d.toString();
      });
      extra.on("close", () => resolve(got));
    });
    assert.match(reply, /^HTTP\/1.1 503/);
    assert.ok(rig.counters.get("http.connectionRefused") >= 1);
    for (const s of held) s.destroy();
    await new Promise((r) => setTimeout(r, 100));
    const after = await fetch(`${rig.url}/api/snapshot`);
    assert.equal(after.status, 200);
  } finally {
    for (const s of held) s.destroy();
    await rig.close();
  }
});

test("live views above the cap are refused and counted; each open view gets the pile's events", async () => {
  const rig = await startRig({ maxEventClients: 2 });
  const streams: AbortController[] = [];
  try {
    const open = async () => {
      const c = new AbortController();
      streams.push(c);
      return fetch(`${rig.url}/events`, { signal: c.signal });
    };
    const a = await open();
    const b = await open();
    assert.equal(a.status, 200);
    assert.equal(b.headers.get("content-type"), "text/event-stream");
    const third = await open();
    assert.equal(third.status, 503);
    assert.equal(((await third.json()) as { code: string }).code, "BUSY");
    assert.equal(rig.counters.get("http.streamRefused"), 1);
    const reader = a.body!.getReader();
    let text = "";
    rig.port.startSession();
    while (!text.includes('"state":"CHARGING"')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    assert.match(text, /event: snapshot\ndata: .*"state":"CHARGING"/);
  } finally {
    for (const c of streams) c.abort();
    await rig.close();
  }
});

test("a live view that does not read is dropped once its backlog is over the cap, counted; the others go on", async () => {
  const rig = await startRig();
  const reader = new AbortController();
  const stalled = connect(Number(new URL(rig.url).port), "127.0.0.1");
  try {
    // Big frames: a snapshot with many sessions.
    for (let i = 0; i < 200; i++) rig.port.startSession(`5e551${String(i).padStart(27, "0")}`);
    await new Promise((r) => stalled.once("connect", r));
    stalled.write("GET /events HTTP/1.1\r\nHost: x\r\n\r\n");
    stalled.pause(); // never reads: the server's writes pile up behind it
    const live = await fetch(`${rig.url}/events`, { signal: reader.signal });
    const body = live.body!.getReader();
    let last = "";
    void (async () => {
      for (;;) {
        const { value, done } = await body.read();
        if (done) return;
        last = (last + new TextDecoder().decode(value)).slice(-100_000);
      }
    })().catch(() => undefined);
    // At most 500 pushes (30 MB to the stalled one without a cap).
    for (let i = 0; i < 500 && rig.counters.get("http.slowStream") === 0; i++) {
      rig.port.setState(i % 2 === 0 ? "UNAVAILABLE" : "CHARGING");
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(rig.counters.get("http.slowStream"), 1, "the stalled view is dropped");
    rig.port.setState("AVAILABLE");
    while (!/"state":"AVAILABLE"[^\n]*\n\n$/.test(last)) await new Promise((r) => setTimeout(r, 10));
    assert.equal(rig.counters.get("http.slowStream"), 1, "the reading view is kept");
  } finally {
    stalled.destroy();
    reader.abort();
    await rig.close();
  }
});
