/**
 * The port over the daemon's PileControl and command table: commands run through the table
 * (so they are audited as at the console), the secret is checked by the console's scrypt
 * verifier, and status changes become events.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { hashSecret } from "../../src/daemon/console/secret.js";
import { ControlPort } from "../../src/site/control-adapter.js";
import type { SiteEvent } from "../../src/site/port.js";
import { fakePileControl } from "../daemon/fake-pile-control.js";

test("commands go through the command table and its audit; the secret through the console's verifier", async () => {
  const pile = fakePileControl();
  const port = new ControlPort({
    pile,
    secretHash: await hashSecret("tech secret 1", { N: 1024, r: 8, p: 1 }),
    watchMs: 0,
  });
  assert.equal(await port.verifyTechnician("tech secret 1"), true);
  assert.equal(await port.verifyTechnician("tech secret 2"), false);
  const snap = await port.snapshot();
  assert.equal(snap.status.state, "CHARGING");
  assert.deepEqual(snap.links, { "ble.badFragment": 2 });
  assert.equal(snap.meter?.ok, true);
  assert.deepEqual(await port.relayTest("dashboard"), {
    ok: false,
    code: "BUSY",
    message: "a session is running",
  });
  assert.deepEqual(await port.stop("dashboard"), { ok: true, detail: "session stopped" });
  assert.deepEqual(await port.stop("dashboard"), {
    ok: false,
    code: "NO_SESSION",
    message: "no session to stop",
  });
  const bad = await port.clearFault("NOT A CODE!", "dashboard");
  assert.equal(bad.ok, false);
  assert.equal(!bad.ok && bad.code, "USAGE");
  assert.deepEqual(await port.clearFault("all", "mqtt"), { ok: true, detail: "cleared all" });
  assert.deepEqual(await port.setAvailability(false, "mqtt"), { ok: true, detail: "pile out of service" });
  assert.deepEqual(pile.calls.slice(-1), ["setAvailable false mqtt"]);
  assert.deepEqual(
    pile.audits.map((a) => `${a.actor} ${a.action} ${a.outcome}`),
    [
      "dashboard relay-test BUSY",
      "dashboard stop ok",
      "dashboard stop NO_SESSION",
      "dashboard clear-fault USAGE",
      "mqtt clear-fault ok",
      "mqtt available ok",
    ],
  );
});

test("status changes become state, fault and session events", async () => {
  const pile = fakePileControl();
  const port = new ControlPort({ pile, secretHash: "x", watchMs: 20 });
  const events: SiteEvent[] = [];
  const off = port.subscribe((e) => events.push(e));
  try {
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(events.length, 0, "nothing changed, nothing sent");
    await pile.stop("test");
    await pile.clearFault("all", "test");
    const end = Date.now() + 5000;
    while (events.length < 3 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(events.map((e) => e.kind).sort(), ["fault", "session", "state"]);
    const s = events.find((e) => e.kind === "session");
    assert.equal(s?.kind === "session" && s.phase, "ended");
  } finally {
    off();
  }
});

test("the running session shows the energy the pile holds, not its stored progress", async () => {
  const pile = fakePileControl();
  const stored = pile.sessions(1)[0]!;
  pile.sessions = () => [{ ...stored, codeId: "aa".repeat(16), status: "active", energyWh: 100 }, stored];
  const port = new ControlPort({ pile, secretHash: "x", watchMs: 0 });
  const snap = await port.snapshot();
  assert.equal(snap.status.session?.energyWh, 120);
  assert.deepEqual(
    snap.sessions.map((s) => s.energyWh),
    [120, 7200],
    "the active one from the pile, the finished one as stored",
  );
});

test("the snapshot carries the pile's pilot state, link counters and the session's limits", async () => {
  const pile = fakePileControl();
  const base = pile.status();
  const limits = { maxEnergyWh: 20_000, maxDurationMs: 3_600_000, maxCurrentA: 16 };
  pile.status = () => ({
    ...base,
    links: { "meter.crcErrors": 3 },
    pilot: {
      state: "C",
      permit: true,
      why: [],
      pwm: true,
      dutyPermille: 267,
      diode: "ok",
      firmware: "1",
      lastReset: "POR",
      resets: 0,
      counters: {},
    } as unknown as NonNullable<typeof base.pilot>,
    session: { codeId: "aa".repeat(16), startedAt: 0, energyWh: 120, limits },
  });
  const snap = await new ControlPort({ pile, secretHash: "x", watchMs: 0 }).snapshot();
  assert.equal(snap.pilot, "C");
  assert.deepEqual(snap.limits, limits);
  assert.equal(snap.links["meter.crcErrors"], 3);
  assert.equal(snap.links["ble.badFragment"], 2);
});
