/**
 * The runtime's performed effects as site events: state, a session's phases (the store's row
 * with the effect's newer figures on top), faults (a row not yet written still shown), unlock
 * outcomes from the RESULTs sent (STOPPED answers a stop and is not one), the held meter reading
 * only when it changed.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { PileEffect } from "../../src/pile/index.js";
import { fromHex } from "../../src/protocol/bytes.js";
import { Reason } from "../../src/protocol/reasons.js";
import { EffectFeed } from "../../src/site/effect-feed.js";
import type { SiteEvent } from "../../src/site/port.js";
import { fakePileControl } from "../daemon/fake-pile-control.js";

const SID = "a1b2c3d4e5f60718293a4b5c6d7e8f90";

test("effects become the front ends' events", () => {
  const pile = fakePileControl();
  const events: SiteEvent[] = [];
  const feed = new EffectFeed({ pile, emit: (e) => events.push(e), now: () => 5, meterEveryMs: 0 });
  const sid = fromHex(SID)!;
  const result = (reason: number): PileEffect => ({
    type: "send",
    connId: "c1",
    message: { type: "RESULT", reason: reason as never },
  });
  const effects: PileEffect[] = [
    { type: "contactor", closed: true },
    { type: "state", state: "CHARGING" },
    result(Reason.ACCEPTED),
    result(Reason.REPLAYED),
    result(Reason.STOPPED),
    { type: "sessionUpdate", record: { sessionId: sid, state: "CHARGING", energyWh: 9000, powerW: 7000 } },
    {
      type: "sessionEnded",
      record: {
        sessionId: sid,
        codeId: new Uint8Array(16),
        stopReason: "TECHNICIAN",
        endedAt: 77n,
        energyWh: 9100,
        energyStopWh: 10_100,
        faults: ["WELD"],
      },
    },
    {
      type: "sessionUpdate",
      record: { sessionId: new Uint8Array(16), state: "CHARGING", energyWh: 1, powerW: 1 },
    },
    { type: "fault", code: "WELD", detail: "contactor reads closed" },
    { type: "faultCleared", codes: ["WELD"] },
  ];
  for (const e of effects) feed.effect(e);
  feed.stop();
  const brief = events.map((e) =>
    e.kind === "state"
      ? `state ${e.state}`
      : e.kind === "unlock"
        ? `unlock ${e.outcome}`
        : e.kind === "session"
          ? `session ${e.phase} ${e.session.status} ${e.session.energyWh} ${e.session.reason}`
          : e.kind === "fault"
            ? `fault ${e.faults.map((f) => f.code).join(",")}`
            : e.kind,
  );
  assert.deepEqual(brief, [
    "state CHARGING",
    "unlock ok",
    "unlock REPLAYED",
    "session progress active 9000 STOPPED_BY_CARRIER",
    "session ended finished 9100 TECHNICIAN",
    "fault CONTACTOR_WELDED,WELD",
    "fault CONTACTOR_WELDED",
  ]);
  const ended = events[4];
  assert.ok(ended?.kind === "session");
  assert.equal(ended.session.endedAt, 77);
  assert.equal(ended.session.meterStopWh, 10_100);
  assert.deepEqual(ended.session.faults, ["WELD"]);
  assert.equal(ended.session.id, SID);
});

test("the held meter reading is sent when it changed, not on every look", async () => {
  const pile = fakePileControl();
  const events: SiteEvent[] = [];
  const feed = new EffectFeed({ pile, emit: (e) => events.push(e), meterEveryMs: 10 });
  try {
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(events.filter((e) => e.kind === "meter").length, 1, "the same reading once");
    pile.meterFails = true;
    await new Promise((r) => setTimeout(r, 40));
    assert.equal(events.length, 1, "no reading, no event");
  } finally {
    feed.stop();
  }
});
