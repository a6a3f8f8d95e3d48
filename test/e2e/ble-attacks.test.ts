/**
 * End to end over the emulated radio, the attacks of the field: a rogue pile, a carrier with the
 * wrong V, a sniffed code replayed without V, a code presented twice, for another pile, expired,
 * not yet valid. The built daemon is its own process; carriers and a raw client run in the test
 * process, each on its own controller. (Rate limiting has its own daemon: ble-rate-limit.test.ts.)
 *
 * Needs bluez-test-tools, socat, gcc and unshare (root or user namespaces); fails naming what is
 * missing.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, afterEach, before, test } from "node:test";
import type { StatusView } from "../../src/control/index.js";
import type { IssuedCode, IssueRequest } from "../../src/sdk/issuer.js";
import { type PileProc, startPile } from "../helpers/pile-proc.js";
import { assertAnswer, assertOutcome, central, counter, RawClient, stopOver, unlockOver } from "./air.js";

const PILE_ID = "SZ-E2E-2";
let pile: PileProc;
const cleanups: Array<() => Promise<void>> = [];

before(async () => {
  pile = await startPile({ pileId: PILE_ID });
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

after(async () => {
  await pile?.stop();
});

const DAY_MS = 86_400_000;

function issue(req: Partial<IssueRequest> = {}): IssuedCode {
  const r = pile.issuer.issue({ deviceId: "LSVAU2180N2183294", pileId: PILE_ID, validForS: 600, ...req });
  assert.ok(r.ok, r.ok ? "" : `${r.error.code}: ${r.error.message}`);
  return r.value;
}

/** The counters an attack must leave alone: nothing accepted, no session, contactor open. */
function assertNothingUnlocked(before: StatusView, now: StatusView): void {
  assert.equal(counter(now, "pile.accepted"), counter(before, "pile.accepted"));
  assert.equal(counter(now, "pile.sessions"), counter(before, "pile.sessions"));
  assert.equal(now.session, null);
  assert.equal(now.contactor, "open");
  assert.equal(now.state, "AVAILABLE");
}

async function carrierCentral(p: PileProc = pile) {
  const c = await central(p);
  cleanups.push(c.close);
  return c.central;
}

test("a carrier holding a wrong V refuses the pile at CHALLENGE (rogue-pile) and never sends the code", async () => {
  const code = issue();
  const before = await pile.status();
  const c = await carrierCentral();
  const r = await unlockOver(c, code, { verifySecret: new Uint8Array(randomBytes(32)) });
  assertOutcome(r.outcome, "rogue-pile");
  await r.link.close();
  const now = await pile.status();
  assert.equal(counter(now, "pile.messages"), counter(before, "pile.messages") + 1, "only the HELLO arrived");
  assert.equal(
    counter(now, "pile.badProofs"),
    counter(before, "pile.badProofs"),
    "no PRESENT reached the pile",
  );
  assertNothingUnlocked(before, now);
});

test("a rogue pile (same pileId, another key) is refused at CHALLENGE: it never receives the code", async () => {
  // The rogue runs on an air of its own so that the carrier deterministically finds it, not the
  // real pile of the same name.
  const rogue = await startPile({ pileId: PILE_ID, key: new Uint8Array(randomBytes(32)) });
  cleanups.push(() => rogue.stop());
  const realBefore = await pile.status();
  const rogueBefore = await rogue.status();
  const code = issue(); // issued by the platform under the REAL pile's key
  const c = await carrierCentral(rogue);
  const r = await unlockOver(c, code);
  assertOutcome(r.outcome, "rogue-pile");
  await r.link.close();
  const rogueNow = await rogue.status();
  assert.equal(counter(rogueNow, "ble.connections"), counter(rogueBefore, "ble.connections") + 1);
  assert.equal(counter(rogueNow, "pile.messages"), counter(rogueBefore, "pile.messages") + 1, "HELLO only");
  assert.equal(counter(rogueNow, "pile.badProofs"), 0);
  assert.equal(counter(rogueNow, "pile.badMessages"), counter(rogueBefore, "pile.badMessages"));
  assertNothingUnlocked(rogueBefore, rogueNow);
  // The real pile saw nothing at all and unlocked nothing.
  const realNow = await pile.status();
  assert.equal(counter(realNow, "pile.messages"), counter(realBefore, "pile.messages"));
  assertNothingUnlocked(realBefore, realNow);
  // The same code still unlocks the real pile afterwards: it was never spent.
  const real = await carrierCentral();
  const ok = await unlockOver(real, code);
  assertOutcome(ok.outcome, "accepted");
  await pile.waitStatus((s) => s.state === "CHARGING");
  ok.stopStatus();
  assertOutcome(await stopOver(ok.link, code), "stopped");
  await ok.link.close();
  await pile.waitStatus((s) => s.state === "AVAILABLE" && s.session === null, 20_000);
});

test("a sniffed code replayed by a client without V → RESULT BAD_PROOF; nothing unlocked", async () => {
  const code = issue();
  const before = await pile.status();
  const c = await carrierCentral();
  const raw = await RawClient.connect(c, PILE_ID);
  assertAnswer(await raw.present(code, undefined), "RESULT", "BAD_PROOF");
  await raw.close();
  const now = await pile.status();
  assert.equal(counter(now, "pile.badProofs"), counter(before, "pile.badProofs") + 1);
  assert.equal(counter(now, "pile.reason.BAD_PROOF"), counter(before, "pile.reason.BAD_PROOF") + 1);
  assertNothingUnlocked(before, now);
});

test("the same code presented twice → REPLAYED (while its session runs, and after it ended)", async () => {
  const code = issue();
  const c = await carrierCentral();
  const first = await unlockOver(c, code);
  assertOutcome(first.outcome, "accepted");
  await pile.waitStatus((s) => s.state === "CHARGING");
  first.stopStatus();
  await first.link.close();

  const other = await carrierCentral();
  const second = await unlockOver(other, code);
  assertOutcome(second.outcome, "rejected", "REPLAYED");
  assertOutcome(await stopOver(second.link, code), "stopped");
  await second.link.close();
  const idle = await pile.waitStatus((s) => s.state === "AVAILABLE" && s.session === null, 20_000);

  const third = await unlockOver(other, code);
  assertOutcome(third.outcome, "rejected", "REPLAYED");
  await third.link.close();
  assertNothingUnlocked(idle, await pile.status());
});

test("a code for another pile → WRONG_PILE", async () => {
  const code = issue({ pileId: "SZ-E2E-OTHER" });
  const before = await pile.status();
  const c = await carrierCentral();
  // The carrier verifies the pile it talks to (this one); the code inside names another.
  const r = await unlockOver(c, code, { pileId: PILE_ID, verifySecret: code.verifySecret });
  assertOutcome(r.outcome, "rejected", "WRONG_PILE");
  await r.link.close();
  assertNothingUnlocked(before, await pile.status());
});

test("an expired code → EXPIRED; a code not yet valid → NOT_YET_VALID", async () => {
  const before = await pile.status();
  const c = await carrierCentral();
  const expired = issue({ issuedAtMs: Date.now() - 2 * DAY_MS, validForS: 60 });
  const r1 = await unlockOver(c, expired);
  assertOutcome(r1.outcome, "rejected", "EXPIRED");
  await r1.link.close();
  const early = issue({ issuedAtMs: Date.now() + DAY_MS, validForS: 600 });
  const r2 = await unlockOver(c, early);
  assertOutcome(r2.outcome, "rejected", "NOT_YET_VALID");
  await r2.link.close();
  const now = await pile.status();
  assertNothingUnlocked(before, now);
  // Refused codes do not move the pile's time floor.
  const t = (await pile.control("time")) as { floor: number };
  assert.ok(t.floor < Date.now() + DAY_MS / 2, `time floor ${t.floor}`);
});
