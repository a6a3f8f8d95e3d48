import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import {
  checkClaims,
  deriveVerifySecret,
  fromBase64Url,
  KeyRing,
  openCode,
  toHex,
  U64_MAX,
} from "../../src/protocol/index.js";
import { nodeSuite } from "../../src/protocol/node-suite.js";
import { SdkError } from "../../src/sdk/errors.js";
import { Issuer, route } from "../../src/sdk/issuer.js";

const K7 = nodeSuite.randomBytes(32);
const K9 = nodeSuite.randomBytes(32);
const ring = new KeyRing(nodeSuite);
ring.add(7, K7);
ring.add(9, K9);
const NOW = 1_767_225_600_000;
const issuer = new Issuer({
  keys: [
    { keyId: 7, key: K7 },
    { keyId: 9, key: K9 },
  ],
  clock: () => NOW,
});

test("issue: the pile (node:crypto) opens the code, V matches, defaults applied", () => {
  const r = issuer.issue({ deviceId: "LSVAU2180N2183294", pileId: "PILE-SZ-0042" });
  assert.ok(r.ok);
  const c = r.value;
  assert.equal(c.keyId, 9, "the last key listed is the default");
  assert.deepEqual(fromBase64Url(c.codeText), c.code);
  const opened = openCode(nodeSuite, ring, c.code);
  assert.ok(opened.ok);
  assert.deepEqual(opened.value.claims, {
    issuedAt: BigInt(NOW),
    validFor: 86_400,
    maxEnergyWh: 0,
    maxDurationS: 0,
    carrier: "vehicle",
    deviceId: "LSVAU2180N2183294",
    pileId: "PILE-SZ-0042",
  });
  assert.deepEqual(opened.value.claims, c.claims);
  assert.equal(toHex(opened.value.codeId), toHex(c.codeId));
  assert.equal(toHex(c.verifySecret), toHex(deriveVerifySecret(nodeSuite, K9, c.codeId)));
  assert.equal(checkClaims(opened.value, { pileId: "PILE-SZ-0042", now: BigInt(NOW), skewMs: 0 }), undefined);
});

test("issue: every field is sealed as asked, and each code has fresh codeId and nonce", () => {
  const r = issuer.issue({
    deviceId: "é".repeat(32),
    pileId: "😀".repeat(16),
    validForS: 2_678_400,
    issuedAtMs: U64_MAX,
    keyId: 7,
    carrier: "mobile",
    limits: { maxEnergyWh: 30_000, maxDurationS: 3600 },
  });
  assert.ok(r.ok);
  const opened = openCode(nodeSuite, ring, r.value.code);
  assert.ok(opened.ok);
  assert.equal(opened.value.keyId, 7);
  assert.deepEqual(opened.value.claims, {
    issuedAt: U64_MAX,
    validFor: 2_678_400,
    maxEnergyWh: 30_000,
    maxDurationS: 3600,
    carrier: "mobile",
    deviceId: "é".repeat(32),
    pileId: "😀".repeat(16),
  });
  const again = issuer.issue({ deviceId: "d", pileId: "p" });
  const third = issuer.issue({ deviceId: "d", pileId: "p" });
  assert.ok(again.ok && third.ok);
  assert.notEqual(toHex(again.value.codeId), toHex(third.value.codeId));
  assert.notEqual(toHex(again.value.code.subarray(21, 33)), toHex(third.value.code.subarray(21, 33)));
});

test("issue: each bad request gets its own typed error", () => {
  const cases: [Parameters<Issuer["issue"]>[0], string][] = [
    [{ deviceId: "", pileId: "p" }, "DEVICE_ID_LENGTH"],
    [{ deviceId: "x".repeat(65), pileId: "p" }, "DEVICE_ID_LENGTH"],
    [{ deviceId: "é".repeat(33), pileId: "p" }, "DEVICE_ID_LENGTH"],
    [{ deviceId: "a\uD800b", pileId: "p" }, "DEVICE_ID_LENGTH"],
    [{ deviceId: "d", pileId: "" }, "PILE_ID_LENGTH"],
    [{ deviceId: "d", pileId: "😀".repeat(17) }, "PILE_ID_LENGTH"],
    [{ deviceId: "d", pileId: "\uDC00" }, "PILE_ID_LENGTH"],
    [{ deviceId: "d", pileId: "p", validForS: 0 }, "VALID_FOR_RANGE"],
    [{ deviceId: "d", pileId: "p", validForS: 2_678_401 }, "VALID_FOR_RANGE"],
    [{ deviceId: "d", pileId: "p", validForS: 1.5 }, "VALID_FOR_RANGE"],
    [{ deviceId: "d", pileId: "p", issuedAtMs: -1 }, "ISSUED_AT_RANGE"],
    [{ deviceId: "d", pileId: "p", issuedAtMs: U64_MAX + 1n }, "ISSUED_AT_RANGE"],
    [{ deviceId: "d", pileId: "p", issuedAtMs: 1.5 }, "ISSUED_AT_RANGE"],
    [{ deviceId: "d", pileId: "p", issuedAtMs: 2 ** 60 }, "ISSUED_AT_RANGE"],
    [{ deviceId: "d", pileId: "p", keyId: 8 }, "UNKNOWN_KEY"],
    [{ deviceId: "d", pileId: "p", keyId: -7 }, "UNKNOWN_KEY"],
    [{ deviceId: "d", pileId: "p", carrier: "drone" as "mobile" }, "CARRIER"],
    [{ deviceId: "d", pileId: "p", limits: { maxEnergyWh: -1 } }, "MAX_ENERGY_RANGE"],
    [{ deviceId: "d", pileId: "p", limits: { maxEnergyWh: 2 ** 32 } }, "MAX_ENERGY_RANGE"],
    [{ deviceId: "d", pileId: "p", limits: { maxDurationS: 0.5 } }, "MAX_DURATION_RANGE"],
    [{ deviceId: 5 as unknown as string, pileId: "p" }, "DEVICE_ID_LENGTH"],
    [null as unknown as Parameters<Issuer["issue"]>[0], "BAD_REQUEST"],
  ];
  for (const [req, code] of cases) {
    const r = issuer.issue(req);
    assert.ok(!r.ok, `refused: ${JSON.stringify(req, (_k, v) => (typeof v === "bigint" ? String(v) : v))}`);
    assert.ok(r.error instanceof SdkError);
    assert.equal(r.error.code, code);
  }
});

test("issue (property): never throws, whatever the request", () => {
  fc.assert(
    fc.property(fc.anything(), fc.object(), (a, b) => {
      const r1 = issuer.issue(a as Parameters<Issuer["issue"]>[0]);
      const r2 = issuer.issue({ deviceId: "d", pileId: "p", ...(b as object) } as Parameters<
        Issuer["issue"]
      >[0]);
      const r3 = issuer.issueFor(a as Parameters<Issuer["issueFor"]>[0]);
      for (const r of [r1, r2, r3]) if (!r.ok) assert.ok(r.error instanceof SdkError);
    }),
    { numRuns: 500 },
  );
});

test("route and issueFor: the vehicle when it is acquiring codes, else the phone, recorded in the code", () => {
  assert.equal(route({ inAcquisitionState: true }), "vehicle");
  assert.equal(route({ inAcquisitionState: false }), "mobile");
  for (const [acq, carrier] of [
    [true, "vehicle"],
    [false, "mobile"],
  ] as const) {
    const r = issuer.issueFor({ deviceId: "d", pileId: "p", vehicle: { inAcquisitionState: acq } });
    assert.ok(r.ok);
    assert.equal(r.value.carrier, carrier);
    const opened = openCode(nodeSuite, ring, r.value.code);
    assert.ok(opened.ok);
    assert.equal(opened.value.claims.carrier, carrier);
  }
  const bad = issuer.issueFor({ deviceId: "d", pileId: "p", vehicle: {} as { inAcquisitionState: boolean } });
  assert.ok(!bad.ok);
  assert.equal(bad.error.code, "BAD_REQUEST");
});

test("Issuer.create and the constructor refuse a bad key list with a typed error", () => {
  const bad: unknown[] = [
    [],
    [{ keyId: 1, key: new Uint8Array(31) }],
    [{ keyId: -1, key: new Uint8Array(32) }],
    [{ keyId: 2 ** 32, key: new Uint8Array(32) }],
    [
      { keyId: 1, key: new Uint8Array(32) },
      { keyId: 1, key: new Uint8Array(32) },
    ],
    undefined,
  ];
  for (const keys of bad) {
    const r = Issuer.create({ keys: keys as { keyId: number; key: Uint8Array }[] });
    assert.ok(!r.ok);
    assert.ok(["NO_KEYS", "BAD_KEY"].includes(r.error.code));
    assert.throws(() => new Issuer({ keys: keys as { keyId: number; key: Uint8Array }[] }), SdkError);
  }
  const good = Issuer.create({ keys: [{ keyId: 0xffffffff, key: new Uint8Array(32) }] });
  assert.ok(good.ok);
  assert.deepEqual(good.value.keyIds(), [0xffffffff]);
});

test("the issuer keeps its own copy of a key", () => {
  const key = nodeSuite.randomBytes(32);
  const original = new Uint8Array(key);
  const iss = new Issuer({ keys: [{ keyId: 1, key }] });
  key.fill(0);
  const r = iss.issue({ deviceId: "d", pileId: "p" });
  assert.ok(r.ok);
  const ring1 = new KeyRing(nodeSuite);
  ring1.add(1, original);
  assert.ok(openCode(nodeSuite, ring1, r.value.code).ok);
});
