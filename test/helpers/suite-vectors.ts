/**
 * The shared vector suite: run once per CryptoSuite (node:crypto on the pile, node-forge in the
 * SDK), so both implementations are held to the same independent vectors.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  type CryptoSuite,
  checkClaims,
  deriveVerifySecret,
  deviceProof,
  fromBase64Url,
  fromHex,
  KeyRing,
  openCode,
  parsePlaintext,
  pileProof,
  sealCode,
  stopProof,
  toBase64Url,
  toHex,
} from "../../src/protocol/index.js";
import { loadVectors } from "./vectors.js";

const hex = (s: string) => {
  const b = fromHex(s);
  assert.ok(b, `bad hex in fixture: ${s}`);
  return b;
};

export function vectorSuite(suite: CryptoSuite): void {
  const v = loadVectors();
  const ring = new KeyRing(suite);
  for (const [id, k] of Object.entries(v.keys)) ring.add(Number(id), hex(k));

  test(`${suite.name}: derives every code key`, () => {
    for (const [id, d] of Object.entries(v.derived)) {
      assert.equal(toHex(ring.get(Number(id))!.codeKey), d.Kc, `Kc of key ${id}`);
    }
  });

  for (const c of v.codes) {
    test(`${suite.name}: code ${c.name} seals, opens and validates to ${c.expect}`, () => {
      const key = ring.get(c.keyId)!;
      assert.equal(toHex(deriveVerifySecret(suite, key.key, hex(c.codeId))), c.V, "V");
      const claims = parsePlaintext(hex(c.plaintext));
      assert.ok(claims, "plaintext parses");
      const sealed = sealCode(suite, key, hex(c.codeId), hex(c.nonce), claims);
      assert.ok(sealed.ok);
      assert.equal(toBase64Url(sealed.value), c.code, "sealed bytes identical");
      const opened = openCode(suite, ring, fromBase64Url(c.code)!);
      assert.ok(opened.ok, `opens: ${opened.ok ? "" : opened.error}`);
      assert.deepEqual(opened.value.claims, claims);
      assert.equal(toHex(opened.value.codeId), c.codeId);
      assert.equal(opened.value.keyId, c.keyId);
      const failure = checkClaims(opened.value, { pileId: v.pileId, now: BigInt(c.now), skewMs: v.skewMs });
      assert.equal(failure ?? "OK", c.expect);
    });
  }

  for (const t of v.tampered) {
    test(`${suite.name}: tampered ${t.name} gives ${t.expect}`, () => {
      const bytes = fromBase64Url(t.code) ?? new Uint8Array();
      const opened = openCode(suite, ring, bytes);
      const reason = opened.ok
        ? (checkClaims(opened.value, { pileId: v.pileId, now: BigInt(t.now), skewMs: v.skewMs }) ?? "OK")
        : opened.error;
      assert.equal(reason, t.expect);
    });
  }

  test(`${suite.name}: computes every handshake proof`, () => {
    for (const h of v.handshakes) {
      const V = deriveVerifySecret(suite, ring.get(h.keyId)!.key, hex(h.codeId));
      assert.equal(toHex(V), h.V);
      assert.equal(
        toHex(pileProof(suite, V, hex(h.codeId), hex(h.clientNonce), hex(h.pileNonce), v.pileId)),
        h.pileProof,
      );
      assert.equal(
        toHex(deviceProof(suite, V, hex(h.codeId), hex(h.pileNonce), hex(h.clientNonce))),
        h.deviceProof,
      );
      assert.equal(toHex(stopProof(suite, V, hex(h.codeId), hex(h.pileNonce))), h.stopProof);
    }
  });
}
