/**
 * The short fuzz run (the long one: `npm run prove -- fuzz`): a few hundred generated and
 * mutated inputs per surface, small samples over the real links, zero violations; and the core's
 * checker is seen to fail when one case carries a valid proof and code.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { newTally, runCase } from "../../prove/core-fuzz.js";
import { runFuzz } from "../../prove/fuzz.js";

test("a short fuzz run over every surface: no crash, no unlock, no output moved", async () => {
  const r = await runFuzz({ seed: 424242, n: 400, meterSample: 10, socketSample: 25, radioSample: 5 });
  assert.deepEqual(r.violations, [], JSON.stringify(r, null, 2));
  for (const [name, s] of Object.entries(r.surfaces)) {
    assert.ok(s.inputs > 0, `${name}: inputs went in`);
    assert.equal(s.answered + s.counted, s.inputs, `${name}: every input answered or counted`);
  }
});

test("the core checker reports an unlock when a case carries a valid proof and code", () => {
  const t = newTally();
  runCase([], t, { plantValid: true });
  assert.ok(
    t.violations.some((v) => v.includes("recordCode")),
    `planted valid PRESENT reported: ${t.violations.join("; ")}`,
  );
});
