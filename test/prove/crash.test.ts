/**
 * The short crash campaign (the long one: `npm run prove -- crash`): a handful of SIGKILLs of the
 * built daemon over its phases, with skipped stop steps and power cuts, and zero violations. Then
 * the checkers are seen to fail: a planted replay (a refused replay counted as accepted) and a
 * planted change to a finished session are both reported.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { runCrash } from "../../prove/crash.js";

test("a short crash campaign: every kill point leaves the promises kept", async () => {
  const r = await runCrash({ seed: 20261202, kills: 8 });
  assert.deepEqual(r.violations, [], JSON.stringify(r, null, 2));
  assert.equal(
    Object.values(r.perPhase).reduce((a, b) => a + b, 0),
    8,
  );
  assert.ok(r.sessions > 0, "some kills came with a session on record");
});

test("the crash checkers fail on a planted replay and on a planted change to a session", async () => {
  const replay = await runCrash({ seed: 11, kills: 3, plant: "replay" });
  assert.ok(
    replay.violations.some((v) => v.includes("replay")),
    `planted replay reported: ${replay.violations.join("; ")} (sessions ${replay.sessions})`,
  );
  const tamper = await runCrash({ seed: 11, kills: 3, plant: "tamper" });
  assert.ok(
    tamper.violations.some((v) => v.includes("changed")),
    `planted change reported: ${tamper.violations.join("; ")}`,
  );
});
