import assert from "node:assert/strict";
import { mock, test } from "node:test";
import fc from "fast-check";
import {
  decodeClientMessage,
  deviceProof,
  encodeMessage,
  MsgType,
  type PileMessage,
  pileProof,
  Reason,
  Reassembler,
  type Status,
  stopProof,
} from "../../src/protocol/index.js";
import { nodeSuite } from "../../src/protocol/node-suite.js";
import {
  type CarrierAction,
  type CarrierCounters,
  type CarrierInput,
  type CarrierOutcome,
  type CarrierState,
  carrierStep,
  type ExchangeParams,
  stop,
  unlock,
} from "../../src/sdk/carrier.js";
import { forgeSuite } from "../../src/sdk/forge-suite.js";
import { Issuer } from "../../src/sdk/issuer.js";
import { memoryLinkPair } from "../../src/sdk/memory-link.js";
import { FakePile, type FakePileOptions } from "./fake-pile.js";

const KEY = nodeSuite.randomBytes(32);
const OTHER_KEY = nodeSuite.randomBytes(32);
const PILE = "PILE-SZ-0042";
const NOW = 1_767_225_600_000n;
const issuer = new Issuer({ keys: [{ keyId: 7, key: KEY }], clock: () => Number(NOW) });

function issue(over: Partial<Parameters<Issuer["issue"]>[0]> = {}) {
  const r = issuer.issue({ deviceId: "LSVAU2180N2183294", pileId: PILE, ...over });
  assert.ok(r.ok);
  return r.value;
}

/** Messages the carrier wrote, reassembled from the raw fragments the pile received. */
function writtenMessages(writes: Uint8Array[], mtu: number): Uint8Array[] {
  const r = new Reassembler(mtu);
  const out: Uint8Array[] = [];
  for (const w of writes) for (const o of r.push(w, 0)) if (o.kind === "message") out.push(o.message);
  return out;
}

function setup(mtu: number, opts: Partial<FakePileOptions> = {}) {
  const { link, pile } = memoryLinkPair(mtu);
  const fake = new FakePile(pile, { pileId: PILE, keys: [{ keyId: 7, key: KEY }], now: NOW, ...opts });
  return { link, pile, fake };
}

// ---------------------------------------------------------------- pure state machine

const CODE = issue();
const PARAMS: ExchangeParams = {
  mode: "unlock",
  keyId: CODE.keyId,
  codeId: CODE.codeId,
  verifySecret: CODE.verifySecret,
  pileId: PILE,
  code: CODE.code,
  suite: nodeSuite,
};
const CLIENT_NONCE = new Uint8Array(16).fill(0xc1);
const PILE_NONCE = new Uint8Array(16).fill(0x9e);
const goodChallenge: PileMessage = {
  type: "CHALLENGE",
  pileNonce: PILE_NONCE,
  pileProof: pileProof(nodeSuite, CODE.verifySecret, CODE.codeId, CLIENT_NONCE, PILE_NONCE, PILE),
};

test("step: start sends exactly the HELLO of the code's keyId and codeId", () => {
  const s = carrierStep(PARAMS, { stage: "idle" }, { kind: "start", clientNonce: CLIENT_NONCE });
  assert.equal(s.state.stage, "helloSent");
  assert.deepEqual(s.actions, [
    {
      kind: "send",
      message: encodeMessage({
        type: "HELLO",
        version: 1,
        keyId: 7,
        codeId: CODE.codeId,
        clientNonce: CLIENT_NONCE,
      }),
    },
  ]);
});

test("step: a verified CHALLENGE sends PRESENT with the deviceProof and the code", () => {
  const s = carrierStep(
    PARAMS,
    { stage: "helloSent", clientNonce: CLIENT_NONCE },
    { kind: "message", message: goodChallenge },
  );
  assert.equal(s.state.stage, "presentSent");
  const proof = deviceProof(nodeSuite, CODE.verifySecret, CODE.codeId, PILE_NONCE, CLIENT_NONCE);
  assert.deepEqual(s.actions, [
    { kind: "send", message: encodeMessage({ type: "PRESENT", deviceProof: proof, code: CODE.code }) },
  ]);
});

test("step: a CHALLENGE proving another pile, a wrong V or any flipped bit is a rogue pile, and nothing is sent", () => {
  const variants: PileMessage[] = [
    {
      ...goodChallenge,
      pileProof: pileProof(
        nodeSuite,
        CODE.verifySecret,
        CODE.codeId,
        CLIENT_NONCE,
        PILE_NONCE,
        "PILE-SZ-0043",
      ),
    },
    {
      ...goodChallenge,
      pileProof: pileProof(nodeSuite, new Uint8Array(32), CODE.codeId, CLIENT_NONCE, PILE_NONCE, PILE),
    },
  ];
  for (let bit = 0; bit < 256; bit += 37) {
    // new Uint8Array copies; .slice() of the Buffer node:crypto returns would be a view
    const p = new Uint8Array((goodChallenge as { pileProof: Uint8Array }).pileProof);
    p[bit >> 3]! ^= 1 << (bit & 7);
    variants.push({ ...goodChallenge, pileProof: p });
  }
  for (const message of variants) {
    const s = carrierStep(
      PARAMS,
      { stage: "helloSent", clientNonce: CLIENT_NONCE },
      { kind: "message", message },
    );
    assert.deepEqual(s.state, { stage: "done", outcome: { kind: "rogue-pile" } });
    assert.ok(!s.actions.some((a) => a.kind === "send"));
  }
});

test("step: STOP mode sends the stopProof after a verified CHALLENGE", () => {
  const p: ExchangeParams = { ...PARAMS, mode: "stop", code: undefined };
  const s = carrierStep(
    p,
    { stage: "helloSent", clientNonce: CLIENT_NONCE },
    { kind: "message", message: goodChallenge },
  );
  assert.equal(s.state.stage, "stopSent");
  const proof = stopProof(nodeSuite, CODE.verifySecret, CODE.codeId, PILE_NONCE);
  assert.deepEqual(s.actions, [{ kind: "send", message: encodeMessage({ type: "STOP", stopProof: proof }) }]);
  const r = carrierStep(p, s.state, { kind: "message", message: { type: "RESULT", reason: Reason.STOPPED } });
  assert.deepEqual(r.state, { stage: "done", outcome: { kind: "stopped" } });
  const f = carrierStep(p, s.state, { kind: "message", message: { type: "RESULT", reason: Reason.FAULTED } });
  assert.deepEqual(f.state, { stage: "done", outcome: { kind: "rejected", reason: "FAULTED" } });
});

test("step: RESULT and ERROR map to their outcomes", () => {
  const present: CarrierState = { stage: "presentSent" };
  for (const [reasonName, code] of Object.entries(Reason)) {
    if (code === Reason.ACCEPTED) continue;
    const r = carrierStep(PARAMS, present, { kind: "message", message: { type: "RESULT", reason: code } });
    assert.deepEqual(r.state, { stage: "done", outcome: { kind: "rejected", reason: reasonName } });
    const e = carrierStep(PARAMS, present, { kind: "message", message: { type: "ERROR", reason: code } });
    assert.deepEqual(e.state, { stage: "done", outcome: { kind: "error", reason: reasonName } });
    const h = carrierStep(
      PARAMS,
      { stage: "helloSent", clientNonce: CLIENT_NONCE },
      {
        kind: "message",
        message: { type: "ERROR", reason: code },
      },
    );
    assert.deepEqual(h.state, { stage: "done", outcome: { kind: "error", reason: reasonName } });
  }
  const sessionId = new Uint8Array(16).fill(5);
  const a = carrierStep(PARAMS, present, {
    kind: "message",
    message: { type: "RESULT", reason: Reason.ACCEPTED, sessionId },
  });
  assert.deepEqual(a.state, { stage: "session", sessionId });
  assert.deepEqual(a.actions, [{ kind: "outcome", outcome: { kind: "accepted", sessionId } }]);
});

test("step: deadline, disconnect, link error and abort end the exchange at the stage they hit", () => {
  const stages: CarrierState[] = [
    { stage: "idle" },
    { stage: "helloSent", clientNonce: CLIENT_NONCE },
    { stage: "presentSent" },
    { stage: "stopSent" },
  ];
  for (const st of stages) {
    assert.deepEqual(carrierStep(PARAMS, st, { kind: "deadline" }).state, {
      stage: "done",
      outcome: { kind: "timeout", stage: st.stage },
    });
    assert.deepEqual(carrierStep(PARAMS, st, { kind: "disconnected" }).state, {
      stage: "done",
      outcome: { kind: "disconnected", stage: st.stage },
    });
    assert.deepEqual(carrierStep(PARAMS, st, { kind: "link-error", message: "x" }).state, {
      stage: "done",
      outcome: { kind: "link-error", stage: st.stage, message: "x" },
    });
    assert.deepEqual(carrierStep(PARAMS, st, { kind: "abort" }).state, {
      stage: "done",
      outcome: { kind: "aborted", stage: st.stage },
    });
  }
  const session: CarrierState = { stage: "session", sessionId: new Uint8Array(16) };
  assert.deepEqual(carrierStep(PARAMS, session, { kind: "deadline" }), { state: session, actions: [] });
  const d = carrierStep(PARAMS, session, { kind: "disconnected" });
  assert.deepEqual(d.actions, [{ kind: "end" }], "a session's end settles nothing twice");
});

test("step: STATUS is delivered in a session and during a STOP, ignored before", () => {
  const status: Status = { type: "STATUS", state: 3, energyWh: 1, powerW: 2, elapsedS: 3 };
  const session: CarrierState = { stage: "session", sessionId: new Uint8Array(16) };
  assert.deepEqual(carrierStep(PARAMS, session, { kind: "message", message: status }).actions, [
    { kind: "status", status },
  ]);
  assert.deepEqual(carrierStep(PARAMS, { stage: "stopSent" }, { kind: "message", message: status }).actions, [
    { kind: "status", status },
  ]);
  for (const st of [
    { stage: "idle" },
    { stage: "helloSent", clientNonce: CLIENT_NONCE },
    { stage: "presentSent" },
  ] as CarrierState[]) {
    assert.deepEqual(carrierStep(PARAMS, st, { kind: "message", message: status }).actions, [
      { kind: "ignored", message: "STATUS" },
    ]);
  }
});

const arbReason = fc.constantFrom(...Object.values(Reason));
const arbMessage: fc.Arbitrary<PileMessage> = fc.oneof(
  fc.constant(goodChallenge),
  fc.record({
    type: fc.constant("CHALLENGE" as const),
    pileNonce: fc.uint8Array({ minLength: 16, maxLength: 16 }),
    pileProof: fc.uint8Array({ minLength: 32, maxLength: 32 }),
  }),
  arbReason.map((reason) =>
    reason === Reason.ACCEPTED
      ? { type: "RESULT" as const, reason, sessionId: new Uint8Array(16) }
      : { type: "RESULT" as const, reason },
  ),
  arbReason.map((reason) => ({ type: "ERROR" as const, reason })),
  fc.constant({ type: "STATUS" as const, state: 3, energyWh: 1, powerW: 1, elapsedS: 1 }),
);
const arbInput: fc.Arbitrary<CarrierInput> = fc.oneof(
  { weight: 1, arbitrary: fc.constant({ kind: "start" as const, clientNonce: CLIENT_NONCE }) },
  { weight: 6, arbitrary: arbMessage.map((message) => ({ kind: "message" as const, message })) },
  {
    weight: 1,
    arbitrary: fc.constantFrom<CarrierInput>(
      { kind: "deadline" },
      { kind: "disconnected" },
      { kind: "abort" },
    ),
  },
);

test("step (property): any input sequence settles at most once, sends PRESENT only after a verified CHALLENGE, and is silent once done", () => {
  fc.assert(
    fc.property(
      fc.constantFrom("unlock" as const, "stop" as const),
      fc.array(arbInput, { maxLength: 20 }),
      (mode, inputs) => {
        const p: ExchangeParams = mode === "unlock" ? PARAMS : { ...PARAMS, mode, code: undefined };
        let state: CarrierState = { stage: "idle" };
        let outcomes = 0;
        let verifiedChallenge = false;
        for (const input of inputs) {
          const wasDone = state.stage === "done";
          const prev = state;
          const s = carrierStep(p, state, input);
          if (wasDone) assert.deepEqual(s.actions, []);
          for (const a of s.actions as CarrierAction[]) {
            if (a.kind === "outcome") outcomes++;
            if (a.kind === "send" && a.message[0] === MsgType.PRESENT) {
              assert.equal(mode, "unlock");
              assert.equal(prev.stage, "helloSent");
              assert.ok(input.kind === "message" && input.message === goodChallenge);
              verifiedChallenge = true;
            }
            if (a.kind === "send" && a.message[0] === MsgType.STOP) assert.equal(mode, "stop");
          }
          state = s.state;
        }
        assert.ok(outcomes <= 1);
        if (state.stage === "presentSent") assert.ok(verifiedChallenge);
      },
    ),
    { numRuns: 2000 },
  );
});

// ---------------------------------------------------------------- runner over a memory link

for (const mtu of [23, 185, 256]) {
  test(`unlock at MTU ${mtu}: accepted, then STATUS keeps arriving until the link closes`, async () => {
    const { link, pile, fake } = setup(mtu, { statusesAfterAccept: 3 });
    const code = issue();
    const statuses: Status[] = [];
    const outcome = await unlock(link, {
      code: code.code,
      verifySecret: code.verifySecret,
      pileId: PILE,
      onStatus: (s) => statuses.push(s),
    });
    assert.equal(outcome.kind, "accepted");
    assert.equal((outcome as { sessionId: Uint8Array }).sessionId.length, 16);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(
      statuses.map((s) => s.energyWh),
      [0, 10, 20],
    );
    assert.deepEqual(
      fake.received.map((m) => m.type),
      ["HELLO", "PRESENT"],
    );
    for (const w of pile.writes) assert.ok(w.length <= mtu - 3, "every fragment fits the MTU");
    await link.close();
    pile.send(encodeMessage({ type: "STATUS", state: 3, energyWh: 99, powerW: 1, elapsedS: 1 }));
    await new Promise((r) => setImmediate(r));
    assert.equal(statuses.length, 3);
  });
}

const rejections: [string, Partial<Parameters<Issuer["issue"]>[0]>, Partial<FakePileOptions>, string][] = [
  ["a code for another pile", { pileId: "PILE-SZ-0099" }, {}, "WRONG_PILE"],
  ["an expired code", { issuedAtMs: NOW - 86_400_000n - 200_000n }, {}, "EXPIRED"],
  ["a code from the future", { issuedAtMs: NOW + 3_600_000n }, {}, "NOT_YET_VALID"],
];
for (const [what, req, pileOpts, reason] of rejections) {
  test(`unlock: ${what} is rejected with ${reason}`, async () => {
    const { link } = setup(23, pileOpts);
    // The carrier checks the pileProof against the pile the platform named; a code for another
    // pile still reaches this pile when the platform named this one.
    const code = issue(req);
    const outcome = await unlock(link, { code: code.code, verifySecret: code.verifySecret, pileId: PILE });
    assert.deepEqual(outcome, { kind: "rejected", reason });
  });
}

test("unlock: a replayed code is rejected REPLAYED the second time", async () => {
  const { link } = setup(64);
  const code = issue();
  const opts = { code: code.code, verifySecret: code.verifySecret, pileId: PILE };
  assert.equal((await unlock(link, opts)).kind, "accepted");
  assert.deepEqual(await unlock(link, opts), { kind: "rejected", reason: "REPLAYED" });
});

test("unlock: a pile without the key is reported rogue and never sees PRESENT or the code", async () => {
  for (const pileOpts of [{ rogueKey: true }, { proofPileId: "PILE-EVIL" }] as Partial<FakePileOptions>[]) {
    const { link, pile, fake } = setup(23, pileOpts);
    const code = issue();
    const outcome = await unlock(link, { code: code.code, verifySecret: code.verifySecret, pileId: PILE });
    assert.deepEqual(outcome, { kind: "rogue-pile" });
    await new Promise((r) => setImmediate(r));
    const sent = writtenMessages(pile.writes, 23);
    assert.deepEqual(
      sent.map((m) => m[0]),
      [MsgType.HELLO],
    );
    assert.deepEqual(
      fake.received.map((m) => m.type),
      ["HELLO"],
    );
  }
});

test("unlock: a carrier holding the wrong V or the wrong pileId never presents", async () => {
  const code = issue();
  for (const opts of [
    { code: code.code, verifySecret: nodeSuite.randomBytes(32), pileId: PILE },
    { code: code.code, verifySecret: code.verifySecret, pileId: "PILE-SZ-0043" },
  ]) {
    const { link, fake } = setup(23);
    assert.deepEqual(await unlock(link, opts), { kind: "rogue-pile" });
    assert.deepEqual(
      fake.received.map((m) => m.type),
      ["HELLO"],
    );
  }
});

test("unlock: a pile without the keyId answers ERROR UNKNOWN_KEY", async () => {
  const { link } = setup(23, { keys: [{ keyId: 8, key: OTHER_KEY }] });
  const code = issue();
  assert.deepEqual(await unlock(link, { code: code.code, verifySecret: code.verifySecret, pileId: PILE }), {
    kind: "error",
    reason: "UNKNOWN_KEY",
  });
});

test("unlock: malformed Event fragments and messages are dropped and counted; the exchange still completes", async () => {
  const { link } = setup(23, { garbage: true });
  const code = issue();
  const counters: CarrierCounters = { badFragments: 0, badMessages: 0, ignoredMessages: 0 };
  const outcome = await unlock(
    link,
    { code: code.code, verifySecret: code.verifySecret, pileId: PILE },
    counters,
  );
  assert.equal(outcome.kind, "accepted");
  assert.ok(counters.badFragments >= 2, `bad fragments ${counters.badFragments}`);
  assert.ok(counters.badMessages >= 2, `bad messages ${counters.badMessages}`);
});

test("unlock: a silent pile times out at helloSent (mock timers)", async () => {
  mock.timers.enable({ apis: ["setTimeout"] });
  try {
    const { link, fake } = setup(23, { silent: true });
    const code = issue();
    let outcome: CarrierOutcome | undefined;
    const p = unlock(link, {
      code: code.code,
      verifySecret: code.verifySecret,
      pileId: PILE,
      timeoutMs: 5000,
    }).then((o) => {
      outcome = o;
    });
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    mock.timers.tick(4999);
    await new Promise((r) => setImmediate(r));
    assert.equal(outcome, undefined);
    mock.timers.tick(1);
    await p;
    assert.deepEqual(outcome, { kind: "timeout", stage: "helloSent" });
    assert.deepEqual(
      fake.received.map((m) => m.type),
      ["HELLO"],
    );
  } finally {
    mock.timers.reset();
  }
});

test("unlock: the pile dropping the connection ends the exchange as disconnected", async () => {
  const { link } = setup(23, { dropOnHello: true });
  const code = issue();
  assert.deepEqual(await unlock(link, { code: code.code, verifySecret: code.verifySecret, pileId: PILE }), {
    kind: "disconnected",
    stage: "helloSent",
  });
});

test("unlock: a failing Control write is a link error", async () => {
  const { link, pile } = setup(23);
  pile.onWrite(() => {
    throw new Error("GATT write error 0x0e");
  });
  const code = issue();
  assert.deepEqual(await unlock(link, { code: code.code, verifySecret: code.verifySecret, pileId: PILE }), {
    kind: "link-error",
    stage: "helloSent",
    message: "GATT write error 0x0e",
  });
});

test("unlock: an abort signal ends the exchange; an aborted signal sends nothing", async () => {
  const code = issue();
  const opts = { code: code.code, verifySecret: code.verifySecret, pileId: PILE };
  const a = setup(23, { silent: true });
  const ctl = new AbortController();
  const p = unlock(a.link, { ...opts, signal: ctl.signal });
  await new Promise((r) => setImmediate(r));
  ctl.abort();
  assert.deepEqual(await p, { kind: "aborted", stage: "helloSent" });
  const b = setup(23);
  assert.deepEqual(await unlock(b.link, { ...opts, signal: AbortSignal.abort() }), {
    kind: "aborted",
    stage: "idle",
  });
  assert.equal(b.pile.writes.length, 0);
});

test("unlock and stop: bad arguments give bad-input and write nothing", async () => {
  const code = issue();
  const { link, pile } = setup(23);
  const bad: Parameters<typeof unlock>[1][] = [
    { code: code.code, verifySecret: new Uint8Array(31), pileId: PILE },
    { code: code.code, verifySecret: code.verifySecret, pileId: "" },
    { code: code.code, verifySecret: code.verifySecret, pileId: "x".repeat(65) },
    { code: code.code.subarray(0, 71), verifySecret: code.verifySecret, pileId: PILE },
    { code: new Uint8Array(300).fill(1), verifySecret: code.verifySecret, pileId: PILE },
    { code: "abc" as unknown as Uint8Array, verifySecret: code.verifySecret, pileId: PILE },
    { code: code.code, verifySecret: code.verifySecret, pileId: PILE, timeoutMs: 0 },
  ];
  for (const o of bad) assert.equal((await unlock(link, o)).kind, "bad-input");
  const badStop: Parameters<typeof stop>[1][] = [
    { codeId: new Uint8Array(15), keyId: 7, verifySecret: code.verifySecret, pileId: PILE },
    { codeId: code.codeId, keyId: -1, verifySecret: code.verifySecret, pileId: PILE },
    { codeId: code.codeId, keyId: 2 ** 32, verifySecret: code.verifySecret, pileId: PILE },
  ];
  for (const o of badStop) assert.equal((await stop(link, o)).kind, "bad-input");
  assert.equal(pile.writes.length, 0);
});

test("stop: ends the active session with STOPPED, delivering the final STATUS", async () => {
  const { link, fake } = setup(23);
  const code = issue();
  assert.equal(
    (await unlock(link, { code: code.code, verifySecret: code.verifySecret, pileId: PILE })).kind,
    "accepted",
  );
  const statuses: Status[] = [];
  const outcome = await stop(link, {
    codeId: code.codeId,
    keyId: code.keyId,
    verifySecret: code.verifySecret,
    pileId: PILE,
    onStatus: (s) => statuses.push(s),
  });
  assert.deepEqual(outcome, { kind: "stopped" });
  assert.deepEqual(
    statuses.map((s) => s.state),
    [4],
  );
  assert.equal(fake.activeCodeId, undefined);
});

test("stop: without an active session the pile answers OUT_OF_ORDER; a fault is reported as FAULTED", async () => {
  const code = issue();
  const args = { codeId: code.codeId, keyId: code.keyId, verifySecret: code.verifySecret, pileId: PILE };
  const a = setup(23);
  assert.deepEqual(await stop(a.link, args), { kind: "rejected", reason: "OUT_OF_ORDER" });
  const b = setup(23, { faultOnStop: true });
  assert.equal(
    (await unlock(b.link, { code: code.code, verifySecret: code.verifySecret, pileId: PILE })).kind,
    "accepted",
  );
  assert.deepEqual(await stop(b.link, args), { kind: "rejected", reason: "FAULTED" });
});

test("stop: a rogue pile never receives a stopProof", async () => {
  const code = issue();
  const { link, fake } = setup(23, { rogueKey: true });
  assert.deepEqual(
    await stop(link, {
      codeId: code.codeId,
      keyId: code.keyId,
      verifySecret: code.verifySecret,
      pileId: PILE,
    }),
    { kind: "rogue-pile" },
  );
  assert.deepEqual(
    fake.received.map((m) => m.type),
    ["HELLO"],
  );
});

test("unlock over the forge suite and the node suite give the same wire bytes for the same nonces", () => {
  const st: CarrierState = { stage: "helloSent", clientNonce: CLIENT_NONCE };
  const a = carrierStep(PARAMS, st, { kind: "message", message: goodChallenge });
  const b = carrierStep({ ...PARAMS, suite: forgeSuite }, st, { kind: "message", message: goodChallenge });
  assert.deepEqual(a, b);
  const sent = a.actions[0];
  assert.ok(sent?.kind === "send");
  assert.equal(decodeClientMessage(sent.message).ok, true);
});
