/**
 * The short soak (the long one: `npm run prove -- soak`): a few sessions back to back over the
 * radio with faults mixed in, zero violations and the figures reported; then the checker is seen
 * to fail on a planted acceptance of a "bad" proof.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { runSoak } from "../../prove/soak.js";

test("a short soak: sessions with faults mixed in, the pile back to AVAILABLE after each", async () => {
  const r = await runSoak({ seed: 77, sessions: 6 });
  assert.deepEqual(r.violations, [], JSON.stringify(r, null, 2));
  assert.ok(r.accepted >= 1);
  assert.ok(r.end.rssKb > 0 && r.end.fds > 0, "figures read from /proc");
  assert.ok(
    r.end.rssAnonKb > 0 && r.end.rssAnonKb + r.end.rssFileKb <= r.end.rssKb + 4,
    "RSS split read from /proc",
  );
  assert.ok(r.ledgerRows <= r.accepted);
  assert.equal(r.settled?.afterSessions, 1, "a tenth of 6 sessions, rounded up");
  assert.equal(r.growth.sinceSettled?.sessions, 5);
});

test("field report: a soak weld is made on contacts that read closed, and latched as WELD", async () => {
  // CHARGING is entered as the contactor is told to close; a weld injected before the contacts
  // close never welds them, and the pile rightly went back to AVAILABLE unnoticed by the soak
  const r = await runSoak({ seed: 5, sessions: 2, mix: ["weld"] });
  assert.equal(r.faults.weld, 2);
  assert.deepEqual(r.violations, [], JSON.stringify(r, null, 2));
});

test("the soak checker reports a bad proof accepted", async () => {
  const r = await runSoak({ seed: 1, sessions: 1, plantBadProof: true });
  assert.ok(
    r.violations.some((v) => v.includes("bad proof was accepted")),
    r.violations.join("; "),
  );
});
