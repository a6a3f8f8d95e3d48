/** Property tests of the code format and the message decoders, over both crypto suites. */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import {
  type CodeClaims,
  decodeClientMessage,
  decodeInfo,
  decodePileMessage,
  deriveVerifySecret,
  deviceProof,
  encodeMessage,
  encodePlaintext,
  equalBytes,
  KeyRing,
  MAX_VALID_FOR_S,
  openCode,
  pileProof,
  sealCode,
  stopProof,
  U64_MAX,
  utf8,
} from "../../src/protocol/index.js";
import { nodeSuite } from "../../src/protocol/node-suite.js";
import { forgeSuite } from "../../src/sdk/forge-suite.js";

const KEY = nodeSuite.randomBytes(32);
const nodeRing = new KeyRing(nodeSuite);
nodeRing.add(7, KEY);
const forgeRing = new KeyRing(forgeSuite);
forgeRing.add(7, KEY);

/** A string of 1..64 UTF-8 bytes, mixing 1- to 4-byte characters. */
const arbId = fc
  .array(fc.constantFrom("a", "Z", "0", "-", "é", "ß", "中", "€", "😀", "𝄞"), { minLength: 1, maxLength: 64 })
  .map((cs) => {
    let s = "";
    for (const c of cs) if (utf8(s + c).length <= 64) s += c;
    return s;
  });
const arbU32 = fc.integer({ min: 0, max: 0xffffffff });
const arbClaims: fc.Arbitrary<CodeClaims> = fc.record({
  issuedAt: fc.oneof(fc.constantFrom(0n, U64_MAX, 1_767_225_600_000n), fc.bigInt({ min: 0n, max: U64_MAX })),
  validFor: fc.oneof(fc.constantFrom(1, MAX_VALID_FOR_S), fc.integer({ min: 1, max: MAX_VALID_FOR_S })),
  maxEnergyWh: fc.oneof(fc.constantFrom(0, 0xffffffff), arbU32),
  maxDurationS: fc.oneof(fc.constantFrom(0, 0xffffffff), arbU32),
  carrier: fc.constantFrom("vehicle" as const, "mobile" as const),
  deviceId: fc.oneof(fc.constantFrom("😀".repeat(16), "é".repeat(32), "x", "x".repeat(64)), arbId),
  pileId: fc.oneof(fc.constantFrom("😀".repeat(16), "é".repeat(32), "P", "中".repeat(21)), arbId),
});
const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });

function seal(claims: CodeClaims, codeId: Uint8Array, nonce: Uint8Array): Uint8Array {
  const r = sealCode(nodeSuite, nodeRing.get(7)!, codeId, nonce, claims);
  assert.ok(r.ok, r.ok ? "" : r.error);
  return r.value;
}

test("seal/open round-trips over every field's whole range, both suites", () => {
  fc.assert(
    fc.property(arbClaims, bytes(16), bytes(12), (claims, codeId, nonce) => {
      const code = seal(claims, codeId, nonce);
      const viaForge = sealCode(forgeSuite, forgeRing.get(7)!, codeId, nonce, claims);
      assert.ok(viaForge.ok);
      assert.ok(equalBytes(viaForge.value, code), "both suites seal the same bytes");
      for (const [suite, ring] of [
        [nodeSuite, nodeRing],
        [forgeSuite, forgeRing],
      ] as const) {
        const o = openCode(suite, ring, code);
        assert.ok(o.ok);
        assert.deepEqual(o.value.claims, { ...claims });
        assert.ok(equalBytes(o.value.codeId, codeId));
      }
    }),
    { numRuns: 300 },
  );
});

test("identifiers exactly at 64 bytes and at 1 byte seal; 65 bytes are refused", () => {
  const base: CodeClaims = {
    issuedAt: 0n,
    validFor: 1,
    maxEnergyWh: 0,
    maxDurationS: 0,
    carrier: "vehicle",
    deviceId: "d",
    pileId: "p",
  };
  for (const id of ["😀".repeat(16), "é".repeat(32), "a".repeat(64), "a", "中".repeat(21) + "a"]) {
    assert.equal(utf8(id).length === 64 || utf8(id).length === 1, true);
    for (const c of [
      { ...base, deviceId: id },
      { ...base, pileId: id },
    ]) {
      const code = seal(c, new Uint8Array(16), new Uint8Array(12));
      const o = openCode(nodeSuite, nodeRing, code);
      assert.ok(o.ok);
      assert.deepEqual(o.value.claims, c);
    }
  }
  for (const id of ["a".repeat(65), `${"😀".repeat(16)}a`, `${"é".repeat(32)}e`, "中".repeat(22)]) {
    assert.equal(utf8(id).length > 64, true);
    assert.deepEqual(encodePlaintext({ ...base, deviceId: id }), { ok: false, error: "DEVICE_ID_LENGTH" });
    assert.deepEqual(encodePlaintext({ ...base, pileId: id }), { ok: false, error: "PILE_ID_LENGTH" });
  }
  assert.deepEqual(encodePlaintext({ ...base, deviceId: "" }), { ok: false, error: "DEVICE_ID_LENGTH" });
  assert.deepEqual(encodePlaintext({ ...base, validFor: 0 }), { ok: false, error: "VALID_FOR_RANGE" });
  assert.deepEqual(encodePlaintext({ ...base, validFor: MAX_VALID_FOR_S + 1 }), {
    ok: false,
    error: "VALID_FOR_RANGE",
  });
  assert.deepEqual(encodePlaintext({ ...base, issuedAt: U64_MAX + 1n }), {
    ok: false,
    error: "ISSUED_AT_RANGE",
  });
  assert.deepEqual(encodePlaintext({ ...base, issuedAt: -1n }), { ok: false, error: "ISSUED_AT_RANGE" });
});

const arbCode = fc.tuple(arbClaims, bytes(16), bytes(12)).map(([c, id, n]) => seal(c, id, n));

test("any single-bit flip of a valid code gives a reason, never OK, never a throw", () => {
  fc.assert(
    fc.property(arbCode, fc.nat(), (code, pick) => {
      const bit = pick % (code.length * 8);
      const t = new Uint8Array(code);
      t[bit >> 3]! ^= 1 << (bit & 7);
      for (const [suite, ring] of [
        [nodeSuite, nodeRing],
        [forgeSuite, forgeRing],
      ] as const) {
        const o = openCode(suite, ring, t);
        assert.equal(o.ok, false);
        if (!o.ok) assert.ok(o.error === "BAD_CODE" || o.error === "UNKNOWN_KEY");
        // keyId bytes 1..4: another keyId is unknown; anywhere else the AEAD or the version fails
        if (!o.ok) assert.equal(o.error, bit >= 8 && bit < 40 ? "UNKNOWN_KEY" : "BAD_CODE");
      }
    }),
    { numRuns: 500 },
  );
});

test("truncating or appending to a valid code gives BAD_CODE, never a throw", () => {
  fc.assert(
    fc.property(arbCode, fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 64 }), (code, cut, extra) => {
      const truncated = code.subarray(0, cut % code.length);
      const appended = new Uint8Array(code.length + extra.length);
      appended.set(code);
      appended.set(extra, code.length);
      for (const t of [truncated, appended]) {
        for (const [suite, ring] of [
          [nodeSuite, nodeRing],
          [forgeSuite, forgeRing],
        ] as const) {
          assert.deepEqual(openCode(suite, ring, t), { ok: false, error: "BAD_CODE" });
        }
      }
    }),
    { numRuns: 300 },
  );
});

test("openCode of arbitrary bytes never throws and is never OK", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), (b, asV1) => {
      if (asV1 && b.length > 0) {
        b[0] = 1;
        if (b.length >= 5) b.set([0, 0, 0, 7], 1);
      }
      const o = openCode(nodeSuite, nodeRing, b);
      assert.equal(o.ok, false);
      assert.equal(openCode(forgeSuite, forgeRing, b).ok, false);
    }),
    { numRuns: 1000 },
  );
});

test("message decoders never throw on any bytes and return a typed result", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 600 }),
        fc
          .tuple(
            fc.constantFrom(0x01, 0x02, 0x03, 0x81, 0x82, 0x83, 0x8f, 0x90),
            fc.uint8Array({ maxLength: 250 }),
          )
          .map(([t, rest]) => Uint8Array.of(t, ...rest)),
      ),
      (b) => {
        for (const r of [decodeClientMessage(b), decodePileMessage(b), decodeInfo(b)]) {
          assert.equal(typeof r.ok, "boolean");
          if (!r.ok) assert.equal(r.error, "BAD_MESSAGE");
        }
      },
    ),
    { numRuns: 3000 },
  );
});

test("bit flips and length changes of valid messages never throw; re-encoding a decoded message gives the same bytes", () => {
  const arbMsg = fc.oneof(
    fc
      .tuple(fc.nat({ max: 255 }), arbU32, bytes(16), bytes(16))
      .map(([version, keyId, codeId, clientNonce]) =>
        encodeMessage({ type: "HELLO", version, keyId, codeId, clientNonce }),
      ),
    fc
      .tuple(bytes(32), arbCode)
      .map(([deviceProof, code]) => encodeMessage({ type: "PRESENT", deviceProof, code })),
    bytes(32).map((stopProof) => encodeMessage({ type: "STOP", stopProof })),
    fc
      .tuple(bytes(16), bytes(32))
      .map(([pileNonce, pileProof]) => encodeMessage({ type: "CHALLENGE", pileNonce, pileProof })),
    bytes(16).map((sessionId) => encodeMessage({ type: "RESULT", reason: 0, sessionId })),
    fc.integer({ min: 1, max: 0x11 }).map((reason) => encodeMessage({ type: "RESULT", reason: reason as 1 })),
    fc.integer({ min: 0, max: 0x11 }).map((reason) => encodeMessage({ type: "ERROR", reason: reason as 1 })),
    fc
      .tuple(fc.integer({ min: 0, max: 6 }), arbU32, arbU32, arbU32)
      .map(([state, energyWh, powerW, elapsedS]) =>
        encodeMessage({ type: "STATUS", state, energyWh, powerW, elapsedS }),
      ),
    fc
      .tuple(arbId, fc.array(arbU32, { maxLength: 16 }), fc.nat({ max: 6 }))
      .map(([pileId, keyIds, state]) => encodeMessage({ type: "INFO", version: 1, state, pileId, keyIds })),
  );
  fc.assert(
    fc.property(
      arbMsg,
      fc.nat(),
      fc.nat(),
      fc.uint8Array({ minLength: 1, maxLength: 8 }),
      (m, pick, cut, extra) => {
        const decoders = [decodeClientMessage, decodePileMessage, decodeInfo];
        const decoded = decoders.map((d) => d(m)).find((r) => r.ok);
        assert.ok(decoded?.ok, "a valid message decodes");
        assert.ok(equalBytes(encodeMessage(decoded.value), m), "round trip");
        const flipped = new Uint8Array(m);
        const bit = pick % (m.length * 8);
        flipped[bit >> 3]! ^= 1 << (bit & 7);
        const appended = Uint8Array.of(...m, ...extra);
        for (const t of [flipped, m.subarray(0, cut % m.length), appended]) {
          for (const d of decoders) {
            const r = d(t);
            if (!r.ok) assert.equal(r.error, "BAD_MESSAGE");
          }
        }
        // fixed-length messages: any length change is BAD_MESSAGE in every decoder
        if ([0x01, 0x03, 0x81, 0x82, 0x83, 0x8f, 0x90].includes(m[0]!)) {
          for (const t of [m.subarray(0, cut % m.length), appended])
            for (const d of decoders)
              assert.equal(d(t).ok, false, `type 0x${m[0]!.toString(16)} len ${t.length}`);
        }
      },
    ),
    { numRuns: 1000 },
  );
});

test("node:crypto and forge agree on HKDF, HMAC, AEAD and the three proofs for random inputs", () => {
  fc.assert(
    fc.property(
      bytes(32),
      fc.option(fc.uint8Array({ maxLength: 80 }), { nil: undefined }),
      fc.uint8Array({ maxLength: 80 }),
      fc.integer({ min: 0, max: 200 }),
      fc.array(fc.uint8Array({ maxLength: 100 }), { maxLength: 5 }),
      fc.uint8Array({ maxLength: 300 }),
      bytes(12),
      (k, salt, info, len, parts, pt, nonce) => {
        assert.ok(equalBytes(nodeSuite.hkdf(k, salt, info, len), forgeSuite.hkdf(k, salt, info, len)));
        assert.ok(equalBytes(nodeSuite.hmac(info, parts), forgeSuite.hmac(info, parts)));
        const a = nodeSuite.seal(k, nonce, pt, info);
        assert.ok(equalBytes(a, forgeSuite.seal(k, nonce, pt, info)));
        assert.ok(equalBytes(forgeSuite.open(k, nonce, a, info)!, pt));
        assert.ok(equalBytes(nodeSuite.open(k, nonce, a, info)!, pt));
        const t = new Uint8Array(a);
        t[len % t.length]! ^= 0x80;
        assert.equal(forgeSuite.open(k, nonce, t, info), undefined);
        assert.equal(forgeSuite.open(k, nonce, a.subarray(0, 15), info), undefined);
        const codeId = info.length >= 16 ? info.subarray(0, 16) : new Uint8Array(16);
        const vN = deriveVerifySecret(nodeSuite, k, codeId);
        assert.ok(equalBytes(vN, deriveVerifySecret(forgeSuite, k, codeId)));
        const n1 = nonce.subarray(0, 12);
        assert.ok(
          equalBytes(
            pileProof(nodeSuite, vN, codeId, n1, n1, "P"),
            pileProof(forgeSuite, vN, codeId, n1, n1, "P"),
          ),
        );
        assert.ok(
          equalBytes(deviceProof(nodeSuite, vN, codeId, n1, n1), deviceProof(forgeSuite, vN, codeId, n1, n1)),
        );
        assert.ok(equalBytes(stopProof(nodeSuite, vN, codeId, n1), stopProof(forgeSuite, vN, codeId, n1)));
      },
    ),
    { numRuns: 200 },
  );
  assert.equal(forgeSuite.timingSafeEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2)), true);
  assert.equal(forgeSuite.timingSafeEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 3)), false);
  assert.equal(forgeSuite.timingSafeEqual(Uint8Array.of(1, 2), Uint8Array.of(1)), false);
  assert.equal(forgeSuite.randomBytes(33).length, 33);
});
