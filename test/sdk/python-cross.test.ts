/**
 * Cross-implementation tier: an independent peer on Debian's python3-cryptography
 * (test/peers/python/codes.py) and piled's protocol seal and open each other's codes over
 * randomized inputs, and agree on HKDF, V and the three proofs.
 */
import assert from "node:assert/strict";
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import {
  type CodeClaims,
  deriveVerifySecret,
  deviceProof,
  fromBase64Url,
  fromHex,
  KeyRing,
  MAX_VALID_FOR_S,
  openCode,
  pileProof,
  sealCode,
  stopProof,
  toBase64Url,
  toHex,
  U64_MAX,
  utf8,
} from "../../src/protocol/index.js";
import { nodeSuite } from "../../src/protocol/node-suite.js";
import { forgeSuite } from "../../src/sdk/forge-suite.js";

/** The peer's interpreter: Debian's, or PILED_PEER_PYTHON (e.g. a wrapper that runs it in another release's root). */
const PYTHON = process.env.PILED_PEER_PYTHON ?? "/usr/bin/python3";
const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const PEER = join(root, "test", "peers", "python", "codes.py");
const N = 200;

let peer: ChildProcessWithoutNullStreams | undefined;
const waiting: ((line: string) => void)[] = [];

function ask(req: Record<string, unknown>): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    waiting.push((line) => resolve(JSON.parse(line) as Record<string, unknown>));
    peer!.stdin.write(`${JSON.stringify(req)}\n`);
  });
}

before(() => {
  const probe = spawnSync(PYTHON, ["-c", "import cryptography.hazmat.primitives.ciphers.aead"], {
    encoding: "utf8",
  });
  if (probe.error || probe.status !== 0) {
    assert.fail(
      `the cross-implementation tier needs ${PYTHON} with the Debian package python3-cryptography ` +
        `(apt-get install python3-cryptography): ${probe.error?.message ?? probe.stderr.trim()}`,
    );
  }
  peer = spawn(PYTHON, [PEER], { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  peer.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  peer.on("exit", (code) => {
    if (code)
      for (const w of waiting.splice(0)) w(JSON.stringify({ error: `peer exited ${code}: ${stderr}` }));
  });
  createInterface({ input: peer.stdout }).on("line", (line) => waiting.shift()?.(line));
});

after(() => {
  if (peer?.pid !== undefined && peer.exitCode === null) process.kill(peer.pid);
});

const arbId = fc
  .array(fc.constantFrom("a", "Z", "7", "-", "é", "中", "😀"), { minLength: 1, maxLength: 64 })
  .map((cs) => {
    let s = "";
    for (const c of cs) if (utf8(s + c).length <= 64) s += c;
    return s;
  });
const arbClaims: fc.Arbitrary<CodeClaims> = fc.record({
  issuedAt: fc.oneof(fc.constantFrom(0n, U64_MAX), fc.bigInt({ min: 0n, max: U64_MAX })),
  validFor: fc.oneof(fc.constantFrom(1, MAX_VALID_FOR_S), fc.integer({ min: 1, max: MAX_VALID_FOR_S })),
  maxEnergyWh: fc.integer({ min: 0, max: 0xffffffff }),
  maxDurationS: fc.integer({ min: 0, max: 0xffffffff }),
  carrier: fc.constantFrom("vehicle" as const, "mobile" as const),
  deviceId: fc.oneof(fc.constantFrom("😀".repeat(16), "é".repeat(32)), arbId),
  pileId: arbId,
});
const arbCase = fc.record({
  key: fc.uint8Array({ minLength: 32, maxLength: 32 }),
  keyId: fc.integer({ min: 0, max: 0xffffffff }),
  codeId: fc.uint8Array({ minLength: 16, maxLength: 16 }),
  nonce: fc.uint8Array({ minLength: 12, maxLength: 12 }),
  claims: arbClaims,
});

const jsonClaims = (c: CodeClaims) => ({ ...c, issuedAt: c.issuedAt.toString() });

test(`python seals ${N} random codes; piled opens every one, with both suites`, async () => {
  const cases = fc.sample(arbCase, N);
  const answers = await Promise.all(
    cases.map((c) =>
      ask({
        op: "seal",
        key: toHex(c.key),
        keyId: c.keyId,
        codeId: toHex(c.codeId),
        nonce: toHex(c.nonce),
        claims: jsonClaims(c.claims),
      }),
    ),
  );
  cases.forEach((c, i) => {
    const a = answers[i]!;
    assert.equal(typeof a.code, "string", JSON.stringify(a));
    const bytes = fromBase64Url(a.code as string);
    assert.ok(bytes, "strict base64url");
    for (const suite of [nodeSuite, forgeSuite]) {
      const ring = new KeyRing(suite);
      ring.add(c.keyId, c.key);
      const o = openCode(suite, ring, bytes);
      assert.ok(o.ok, `${suite.name} opens python's code: ${o.ok ? "" : o.error}`);
      assert.deepEqual(o.value.claims, { ...c.claims });
      assert.equal(o.value.keyId, c.keyId);
      assert.equal(toHex(o.value.codeId), toHex(c.codeId));
    }
    // and the bytes are exactly those piled seals
    const mine = sealCode(nodeSuite, new KeyRing(nodeSuite).add(c.keyId, c.key), c.codeId, c.nonce, c.claims);
    assert.ok(mine.ok);
    assert.equal(toBase64Url(mine.value), a.code);
  });
});

test(`piled seals ${N} random codes; python opens every one, and refuses tampered ones`, async () => {
  const cases = fc.sample(arbCase, N);
  const sealed = cases.map((c, i) => {
    const suite = i % 2 === 0 ? nodeSuite : forgeSuite;
    const r = sealCode(suite, new KeyRing(suite).add(c.keyId, c.key), c.codeId, c.nonce, c.claims);
    assert.ok(r.ok);
    return r.value;
  });
  const answers = await Promise.all(
    cases.map((c, i) =>
      ask({ op: "open", key: toHex(c.key), keyId: c.keyId, code: toBase64Url(sealed[i]!) }),
    ),
  );
  cases.forEach((c, i) => {
    assert.deepEqual(answers[i], {
      ok: true,
      keyId: c.keyId,
      codeId: toHex(c.codeId),
      claims: jsonClaims(c.claims),
    });
  });
  const tampered = await Promise.all(
    cases.slice(0, 50).map((c, i) => {
      const t = new Uint8Array(sealed[i]!);
      const at = 21 + ((i * 7) % (t.length - 21)); // nonce, ciphertext or tag
      t[at]! ^= 1 << (i % 8);
      return ask({ op: "open", key: toHex(c.key), keyId: c.keyId, code: toBase64Url(t) });
    }),
  );
  for (const a of tampered) assert.deepEqual(a, { ok: false, reason: "BAD_CODE" });
});

test("python and piled agree on Kc, V and the three proofs", async () => {
  const cases = fc.sample(
    fc.record({
      key: fc.uint8Array({ minLength: 32, maxLength: 32 }),
      codeId: fc.uint8Array({ minLength: 16, maxLength: 16 }),
      clientNonce: fc.uint8Array({ minLength: 16, maxLength: 16 }),
      pileNonce: fc.uint8Array({ minLength: 16, maxLength: 16 }),
      pileId: arbId,
    }),
    100,
  );
  for (const c of cases) {
    const d = await ask({ op: "derive", key: toHex(c.key), codeId: toHex(c.codeId) });
    for (const suite of [nodeSuite, forgeSuite]) {
      const ring = new KeyRing(suite);
      assert.equal(toHex(ring.add(1, c.key).codeKey), d.Kc);
      assert.equal(toHex(deriveVerifySecret(suite, c.key, c.codeId)), d.V);
    }
    const v = fromHex(d.V as string)!;
    const p = await ask({
      op: "proofs",
      V: d.V,
      codeId: toHex(c.codeId),
      clientNonce: toHex(c.clientNonce),
      pileNonce: toHex(c.pileNonce),
      pileId: c.pileId,
    });
    for (const suite of [nodeSuite, forgeSuite]) {
      assert.equal(toHex(pileProof(suite, v, c.codeId, c.clientNonce, c.pileNonce, c.pileId)), p.pileProof);
      assert.equal(toHex(deviceProof(suite, v, c.codeId, c.pileNonce, c.clientNonce)), p.deviceProof);
      assert.equal(toHex(stopProof(suite, v, c.codeId, c.pileNonce)), p.stopProof);
    }
  }
});
