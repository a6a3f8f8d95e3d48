/** The fragment paragraph of PROTOCOL.md §3, rule by rule, and the round trip at every MTU. */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import {
  FINAL,
  fragment,
  MAX_MESSAGE_LENGTH,
  maxFragmentBody,
  PARTIAL_TIMEOUT_MS,
  type PushOutcome,
  Reassembler,
} from "../../src/protocol/index.js";

const frag = (index: number, final: boolean, body: number[]) =>
  Uint8Array.of((final ? FINAL : 0) | index, ...body);
const msg = (m: PushOutcome[]) =>
  m.map((o) => (o.kind === "message" ? { kind: "message", bytes: [...o.message] } : o));

test("round trip: any message of 1..512 bytes at any MTU 23..256", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 23, max: 256 }),
      fc
        .integer({ min: 1, max: MAX_MESSAGE_LENGTH })
        .chain((n) => fc.uint8Array({ minLength: n, maxLength: n })),
      (mtu, m) => {
        const frags = fragment(m, mtu);
        assert.equal(frags.length, Math.ceil(m.length / (mtu - 4)));
        const r = new Reassembler(mtu);
        frags.forEach((f, i) => {
          assert.ok(f.length >= 2 && f.length <= mtu - 3, "1..MTU−4 bytes of body");
          assert.equal(f[0]! & 0x7f, i, "indices count up from 0");
          assert.equal((f[0]! & FINAL) !== 0, i === frags.length - 1, "only the last is final");
          const out = r.push(f, 1000);
          if (i < frags.length - 1) assert.deepEqual(out, [{ kind: "partial" }]);
          else assert.deepEqual(msg(out), [{ kind: "message", bytes: [...m] }]);
        });
        assert.equal(r.busy, false);
      },
    ),
    { numRuns: 400 },
  );
});

test("fragment refuses an empty or oversize message (caller error)", () => {
  assert.throws(() => fragment(new Uint8Array(), 23), RangeError);
  assert.throws(() => fragment(new Uint8Array(513), 23), RangeError);
  assert.equal(fragment(new Uint8Array(512), 23).length, 27);
  assert.equal(maxFragmentBody(23), 19);
  assert.equal(maxFragmentBody(10), 19, "below the BLE minimum MTU counts as 23");
});

test("a wrong index discards the partial and is an error; the rest is dropped until index 0", () => {
  const r = new Reassembler(23);
  assert.deepEqual(r.push(frag(0, false, [1]), 0), [{ kind: "partial" }]);
  assert.deepEqual(r.push(frag(2, false, [2]), 1), [{ kind: "error", why: "BAD_INDEX" }]);
  assert.deepEqual(r.push(frag(3, true, [3]), 2), [{ kind: "dropped" }]);
  assert.deepEqual(msg(r.push(frag(0, true, [9]), 3)), [{ kind: "message", bytes: [9] }]);
  // a first fragment with a non-zero index
  assert.deepEqual(new Reassembler(23).push(frag(1, true, [1]), 0), [{ kind: "error", why: "BAD_INDEX" }]);
});

test("index 0 in the middle of a message: the partial is answered with an error and the new message starts", () => {
  const r = new Reassembler(23);
  r.push(frag(0, false, [1, 2]), 0);
  r.push(frag(1, false, [3]), 0);
  assert.deepEqual(r.push(frag(0, false, [7]), 0), [
    { kind: "error", why: "BAD_INDEX" },
    { kind: "partial" },
  ]);
  assert.deepEqual(msg(r.push(frag(1, true, [8]), 0)), [{ kind: "message", bytes: [7, 8] }]);
  const s = new Reassembler(23);
  s.push(frag(0, false, [1]), 0);
  assert.deepEqual(msg(s.push(frag(0, true, [5]), 0)), [
    { kind: "error", why: "BAD_INDEX" },
    { kind: "message", bytes: [5] },
  ]);
});

test("a partial whose first fragment is more than 2 s old is discarded silently", () => {
  const r = new Reassembler(23);
  r.push(frag(0, false, [1]), 10_000);
  assert.deepEqual(
    r.push(frag(1, false, [2]), 10_000 + PARTIAL_TIMEOUT_MS),
    [{ kind: "partial" }],
    "2 s exactly is not stale",
  );
  assert.deepEqual(msg(r.push(frag(0, true, [3]), 10_000 + PARTIAL_TIMEOUT_MS + 1)), [
    { kind: "message", bytes: [3] },
  ]);
  assert.equal(r.expired, 1);
  // the stale partial's continuation is then out of sequence
  const s = new Reassembler(23);
  s.push(frag(0, false, [1]), 0);
  assert.deepEqual(s.push(frag(1, true, [2]), 2001), [{ kind: "error", why: "BAD_INDEX" }]);
  assert.equal(s.expired, 1);
});

test("an empty write is an error, then everything up to the next index-0 fragment is dropped", () => {
  const r = new Reassembler(23);
  r.push(frag(0, false, [1]), 0);
  assert.deepEqual(r.push(new Uint8Array(), 0), [{ kind: "error", why: "EMPTY" }]);
  assert.deepEqual(r.push(frag(1, true, [2]), 0), [{ kind: "dropped" }]);
  assert.deepEqual(msg(r.push(frag(0, true, [4]), 0)), [{ kind: "message", bytes: [4] }]);
  assert.deepEqual(new Reassembler(23).push(new Uint8Array(), 0), [{ kind: "error", why: "EMPTY" }]);
});

test("a message growing past 512 bytes is an error, then dropped to the next index 0", () => {
  const r = new Reassembler(256);
  const body = new Array(252).fill(1);
  assert.deepEqual(r.push(frag(0, false, body), 0), [{ kind: "partial" }]);
  assert.deepEqual(r.push(frag(1, false, body), 0), [{ kind: "partial" }]);
  assert.deepEqual(r.push(frag(2, true, new Array(9).fill(1)), 0), [{ kind: "error", why: "OVERSIZE" }]);
  assert.deepEqual(r.push(frag(3, true, [1]), 0), [{ kind: "dropped" }]);
  assert.deepEqual(msg(r.push(frag(0, true, [6]), 0)), [{ kind: "message", bytes: [6] }]);
  // exactly 512 is fine
  const s = new Reassembler(256);
  s.push(frag(0, false, body), 0);
  s.push(frag(1, false, body), 0);
  assert.equal(msg(s.push(frag(2, true, new Array(8).fill(1)), 0))[0]!.kind, "message");
  // 128 one-byte fragments without a final one cannot be a message either
  const t = new Reassembler(23);
  let last: PushOutcome[] = [];
  for (let i = 0; i < 128; i++) last = t.push(frag(i, false, [0]), 0);
  assert.deepEqual(last, [{ kind: "error", why: "OVERSIZE" }]);
});

test("a fragment body longer than MTU−4, or empty, is an error", () => {
  for (const mtu of [23, 100, 256]) {
    const r = new Reassembler(mtu);
    assert.deepEqual(r.push(frag(0, true, new Array(mtu - 3).fill(0)), 0), [
      { kind: "error", why: "BODY_LENGTH" },
    ]);
    assert.equal(msg(r.push(frag(0, true, new Array(mtu - 4).fill(0)), 0))[0]!.kind, "message");
    assert.deepEqual(r.push(Uint8Array.of(FINAL), 0), [{ kind: "error", why: "BODY_LENGTH" }]);
  }
  const r = new Reassembler(23);
  r.setMtu(256);
  assert.equal(
    msg(r.push(frag(0, true, new Array(252).fill(0)), 0))[0]!.kind,
    "message",
    "setMtu raises the limit",
  );
});

test("the reassembler never throws on arbitrary fragment streams", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 23, max: 256 }),
      fc.array(fc.tuple(fc.uint8Array({ maxLength: 260 }), fc.nat({ max: 3000 })), { maxLength: 60 }),
      (mtu, stream) => {
        const r = new Reassembler(mtu);
        let t = 0;
        for (const [f, dt] of stream) {
          t += dt;
          for (const o of r.push(f, t)) {
            assert.ok(["partial", "message", "error", "dropped"].includes(o.kind));
            if (o.kind === "message") assert.ok(o.message.length >= 1 && o.message.length <= 512);
          }
        }
      },
    ),
    { numRuns: 500 },
  );
});
