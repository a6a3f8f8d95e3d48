/**
 * End to end over the emulated radio: brute force against the built daemon. After 5 failed
 * proofs the pile answers every HELLO with ERROR RATE_LIMITED (for 30 s, so this file has a
 * daemon of its own and the block is its last act).
 *
 * Needs bluez-test-tools, socat, gcc and unshare (root or user namespaces); fails naming what is
 * missing.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, afterEach, before, test } from "node:test";
import { type PileProc, startPile } from "../helpers/pile-proc.js";
import { assertAnswer, assertOutcome, central, counter, RawClient, unlockOver } from "./air.js";

let pile: PileProc;
const cleanups: Array<() => Promise<void>> = [];

before(async () => {
  pile = await startPile({ pileId: "SZ-E2E-4" });
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

after(async () => {
  await pile?.stop();
});

test("brute force: 5 failed proofs, then HELLO → ERROR RATE_LIMITED, for every client; nothing unlocked", async () => {
  const code = pile.issuer.issue({ deviceId: "LSVAU2180N2183294", pileId: pile.pileId, validForS: 600 });
  assert.ok(code.ok);
  const before = await pile.status();
  assert.equal(counter(before, "pile.badProofs"), 0, "a fresh pile has seen no failed proof");

  const c = await central(pile);
  cleanups.push(c.close);
  const raw = await RawClient.connect(c.central, pile.pileId);
  for (let i = 0; i < 5; i++) {
    // A guessed proof each time (no V), as brute force would.
    assertAnswer(await raw.present(code.value, undefined), "RESULT", "BAD_PROOF");
  }
  const { answer } = await raw.hello(code.value);
  assertAnswer(answer, "ERROR", "RATE_LIMITED");
  await raw.close();

  // The limit is global: the rightful carrier with the right V is refused at HELLO too.
  const honest = await central(pile);
  cleanups.push(honest.close);
  const r = await unlockOver(honest.central, code.value);
  assertOutcome(r.outcome, "error", "RATE_LIMITED");
  await r.link.close();

  const now = await pile.status();
  assert.equal(counter(now, "pile.badProofs"), 5);
  assert.equal(counter(now, "pile.rateLimited"), 2);
  assert.equal(counter(now, "pile.reason.RATE_LIMITED"), 2);
  assert.equal(counter(now, "pile.accepted"), 0);
  assert.equal(now.session, null);
  assert.equal(now.contactor, "open");
  // A different wrong secret changes nothing: still refused before any CHALLENGE.
  const third = await central(pile);
  cleanups.push(third.close);
  const r3 = await unlockOver(third.central, code.value, { verifySecret: new Uint8Array(randomBytes(32)) });
  assertOutcome(r3.outcome, "error", "RATE_LIMITED");
  await r3.link.close();
});
