/**
 * End to end over the emulated radio, the link going away at every step of an exchange, and
 * garbage on Control: the built daemon is its own process; carriers and a raw client run in the
 * test process, each on its own controller. After every disruption a clean exchange succeeds.
 *
 * Needs bluez-test-tools, socat, gcc and unshare (root or user namespaces); fails naming what is
 * missing.
 */
import assert from "node:assert/strict";
import { after, afterEach, before, test } from "node:test";
import { fragment } from "../../src/protocol/fragments.js";
import { encodeMessage } from "../../src/protocol/messages.js";
import { deviceProof } from "../../src/protocol/proofs.js";
import { forgeSuite } from "../../src/sdk/forge-suite.js";
import type { IssuedCode } from "../../src/sdk/issuer.js";
import { type PileProc, startPile } from "../helpers/pile-proc.js";
import {
  assertAnswer,
  assertOutcome,
  central,
  counter,
  describe,
  RawClient,
  sleep,
  stopOver,
  unlockOver,
} from "./air.js";

let pile: PileProc;
const cleanups: Array<() => Promise<void>> = [];

before(async () => {
  pile = await startPile({ pileId: "SZ-E2E-3" });
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

after(async () => {
  await pile?.stop();
});

const available = () => pile.waitStatus((s) => s.state === "AVAILABLE" && s.session === null, 20_000);

function issue(deviceId = "LSVAU2180N2183294"): IssuedCode {
  const r = pile.issuer.issue({ deviceId, pileId: pile.pileId, validForS: 600 });
  assert.ok(r.ok);
  return r.value;
}

const count = (text: string, needle: string) => text.split(needle).length - 1;

/** Waits until the daemon has logged as many disconnections as connections. */
async function pileSawEveryLinkGo(): Promise<void> {
  const end = Date.now() + 10_000;
  for (;;) {
    const out = pile.output();
    const connected = count(out, '"msg":"central connected"');
    const gone = count(out, '"msg":"central disconnected"');
    if (connected > 0 && connected === gone) return;
    if (Date.now() > end) assert.fail(`the pile logged ${connected} connections but ${gone} disconnections`);
    await sleep(50);
  }
}

/** A clean unlock → STOP on a fresh connection; the code's session ends CARRIER_STOP. */
async function cleanExchange(code: IssuedCode, mtu?: number): Promise<void> {
  const c = await central(pile, mtu ? { mtu } : {});
  cleanups.push(c.close);
  const one = await unlockOver(c.central, code);
  assertOutcome(one.outcome, "accepted");
  await pile.waitStatus((s) => s.state === "CHARGING");
  one.stopStatus();
  assertOutcome(await stopOver(one.link, code), "stopped");
  await one.link.close();
  await available();
  const [s] = await pile.sessions(1);
  assert.equal(s?.codeId, Buffer.from(code.codeId).toString("hex"));
  assert.equal(s?.reason, "CARRIER_STOP");
}

test("link dropped right after connect: the pile notices, and a clean exchange follows", async () => {
  const before = await pile.status();
  const c = await central(pile);
  cleanups.push(c.close);
  const link = await c.central.connect(pile.pileId, { timeoutMs: 10_000 });
  await link.close();
  await pileSawEveryLinkGo();
  const s = await pile.status();
  assert.equal(s.state, "AVAILABLE");
  assert.equal(counter(s, "ble.connections"), counter(before, "ble.connections") + 1);
  assert.equal(counter(s, "pile.messages"), counter(before, "pile.messages"));
  await cleanExchange(issue());
});

test("link dropped after HELLO: the exchange is dropped, the code is not spent and unlocks on a new link", async () => {
  const code = issue();
  const c = await central(pile);
  cleanups.push(c.close);
  const raw = await RawClient.connect(c.central, pile.pileId);
  const { clientNonce, answer } = await raw.hello(code);
  assert.ok(RawClient.challengeVerifies(code, clientNonce, answer), `HELLO answered ${describe(answer)}`);
  await raw.close();
  await pileSawEveryLinkGo();
  assert.equal((await pile.status()).state, "AVAILABLE");
  await cleanExchange(code);
});

test("link dropped mid-fragment of a PRESENT at MTU 23: nothing is unlocked, the code still works afterwards", async () => {
  const code = issue();
  const before = await pile.status();
  const c = await central(pile, { mtu: 23 });
  cleanups.push(c.close);
  const raw = await RawClient.connect(c.central, pile.pileId);
  assert.equal(raw.link.mtu, 23);
  const { clientNonce, answer } = await raw.hello(code);
  assert.equal(answer?.type, "CHALLENGE");
  if (answer?.type !== "CHALLENGE") return;
  const proof = deviceProof(forgeSuite, code.verifySecret, code.codeId, answer.pileNonce, clientNonce);
  const frags = fragment(encodeMessage({ type: "PRESENT", deviceProof: proof, code: code.code }), 23);
  assert.ok(frags.length > 2, "a PRESENT takes several fragments at MTU 23");
  await raw.write(frags[0]!); // the first fragment only, then the link drops
  await raw.close();
  await pileSawEveryLinkGo();
  const s = await pile.status();
  assert.equal(s.state, "AVAILABLE");
  assert.equal(s.contactor, "open");
  assert.equal(counter(s, "pile.accepted"), counter(before, "pile.accepted"));
  assert.equal(counter(s, "pile.messages"), counter(before, "pile.messages") + 1, "only the HELLO arrived");
  await cleanExchange(code, 23);
});

test("link dropped right after the PRESENT is written: the session runs, a later connection STOPs it", async () => {
  const code = issue();
  const c = await central(pile);
  cleanups.push(c.close);
  const raw = await RawClient.connect(c.central, pile.pileId);
  const { clientNonce, answer } = await raw.hello(code);
  assert.equal(answer?.type, "CHALLENGE");
  if (answer?.type !== "CHALLENGE") return;
  const proof = deviceProof(forgeSuite, code.verifySecret, code.codeId, answer.pileNonce, clientNonce);
  await raw.send(encodeMessage({ type: "PRESENT", deviceProof: proof, code: code.code }));
  await raw.close(); // without reading the RESULT
  const charging = await pile.waitStatus((s) => s.state === "CHARGING");
  assert.equal(charging.session?.codeId, Buffer.from(code.codeId).toString("hex"));

  const again = await c.central.connect(pile.pileId, { timeoutMs: 10_000 });
  assertOutcome(await stopOver(again, code), "stopped");
  await again.close();
  await available();
  const [s] = await pile.sessions(1);
  assert.equal(s?.codeId, Buffer.from(code.codeId).toString("hex"));
  assert.equal(s?.reason, "CARRIER_STOP");
});

test("link dropped after ACCEPTED: the session keeps charging; a later connection STOPs it → STOPPED", async () => {
  const code = issue();
  const c = await central(pile);
  cleanups.push(c.close);
  const one = await unlockOver(c.central, code);
  assertOutcome(one.outcome, "accepted");
  one.stopStatus();
  await one.link.close();
  await pileSawEveryLinkGo();
  const s1 = await pile.waitStatus((s) => s.state === "CHARGING" && (s.session?.energyWh ?? 0) > 0);
  assert.equal(s1.session?.codeId, Buffer.from(code.codeId).toString("hex"));

  const later = await central(pile);
  cleanups.push(later.close);
  const link = await later.central.connect(pile.pileId, { timeoutMs: 10_000 });
  assertOutcome(await stopOver(link, code), "stopped");
  await link.close();
  await available();
  const [s] = await pile.sessions(1);
  assert.equal(s?.codeId, Buffer.from(code.codeId).toString("hex"));
  assert.equal(s?.reason, "CARRIER_STOP");
  assert.ok((s?.energyWh ?? 0) > 0);
});

/** A small deterministic generator, so a failing flood can be replayed. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x1_0000_0000;
  };
}

test("garbage on Control (wrong fragment order, oversize, unknown type, 200 random writes) → ERROR BAD_MESSAGE, counted; nothing unlocked; a clean exchange follows", async () => {
  const before = await pile.status();
  const c = await central(pile);
  cleanups.push(c.close);
  const raw = await RawClient.connect(c.central, pile.pileId);
  const mtu = raw.link.mtu;
  assert.equal(mtu, 256);

  // Wrong fragment order: index 1 with nothing before it.
  await raw.write(Uint8Array.of(0x01, 0x01, 0x02, 0x03));
  assertAnswer(await raw.next(), "ERROR", "BAD_MESSAGE");
  // Index 0, then index 2 (index 1 skipped).
  await raw.write(Uint8Array.of(0x00, 0x01, 0x01));
  await raw.write(Uint8Array.of(0x82, 0x01, 0x01));
  assertAnswer(await raw.next(), "ERROR", "BAD_MESSAGE");

  // Oversize: non-final fragments growing the message past 512 bytes.
  const body = mtu - 4;
  for (let i = 0; i * body <= 512; i++) {
    const f = new Uint8Array(1 + body).fill(0x5a);
    f[0] = i;
    await raw.write(f);
  }
  assertAnswer(await raw.next(), "ERROR", "BAD_MESSAGE");

  // Unknown message type; a HELLO one byte short.
  await raw.write(Uint8Array.of(0x80, 0x42, 0x00, 0x00));
  assertAnswer(await raw.next(), "ERROR", "BAD_MESSAGE");
  await raw.write(Uint8Array.of(0x80, 0x01, ...new Uint8Array(36)));
  assertAnswer(await raw.next(), "ERROR", "BAD_MESSAGE");

  const mid = await pile.status();
  assert.ok(counter(mid, "pile.fragmentErrors") >= counter(before, "pile.fragmentErrors") + 3);
  assert.ok(counter(mid, "pile.badMessages") >= counter(before, "pile.badMessages") + 2);
  assert.ok(counter(mid, "ble.fragment.BAD_INDEX") > counter(before, "ble.fragment.BAD_INDEX"));
  assert.ok(counter(mid, "ble.fragment.OVERSIZE") > counter(before, "ble.fragment.OVERSIZE"));

  // A flood of 200 random writes (1..MTU−3 bytes each).
  const seed = 0x9e3779b9;
  const rnd = prng(seed);
  for (let i = 0; i < 200; i++) {
    const n = 1 + Math.floor(rnd() * (mtu - 3));
    const f = new Uint8Array(n);
    for (let k = 0; k < n; k++) f[k] = Math.floor(rnd() * 256);
    await raw.write(f);
  }
  const answers = await raw.drain(1500);
  assert.ok(answers.length > 0, "the flood was answered");
  for (const a of answers) assertAnswer(a, "ERROR", "BAD_MESSAGE");
  const afterFlood = await pile.status();
  const bad = (s: typeof before) =>
    counter(s, "pile.fragmentErrors") + counter(s, "pile.badMessages") + counter(s, "ble.fragment.dropped");
  assert.ok(bad(afterFlood) > bad(mid), `seed ${seed}: the flood is counted`);
  assert.ok(
    counter(afterFlood, "pile.reason.BAD_MESSAGE") >=
      counter(before, "pile.reason.BAD_MESSAGE") + 5 + answers.length,
  );
  assert.equal(afterFlood.state, "AVAILABLE");
  assert.equal(afterFlood.contactor, "open");
  assert.equal(afterFlood.session, null);
  assert.equal(counter(afterFlood, "pile.accepted"), counter(before, "pile.accepted"));
  await raw.close();

  await cleanExchange(issue());
});
