/**
 * Crypto figures: how many PRESENTs per second a pile can verify without I/O (V derivation by
 * HKDF, deviceProof HMAC, openCode, checkClaims), and how many codes per second an issuer seals,
 * on node:crypto and on node-forge (the SDK's pure-JavaScript suite).
 */
import {
  type CryptoSuite,
  checkClaims,
  deriveVerifySecret,
  deviceProof,
  KeyRing,
  openCode,
} from "../src/protocol/index.js";
import { nodeSuite } from "../src/protocol/node-suite.js";
import { forgeSuite } from "../src/sdk/forge-suite.js";
import { Issuer } from "../src/sdk/issuer.js";
import { opsPerSecond } from "./util.js";

export const name = "crypto";

const KEY = nodeSuite.randomBytes(32);
const PILE = "PILE-SZ-0042";
const NOW = 1_767_225_600_000;

function verifier(suite: CryptoSuite): () => void {
  const ring = new KeyRing(suite);
  const entry = ring.add(7, KEY);
  const issued = new Issuer({ keys: [{ keyId: 7, key: KEY }], suite: nodeSuite, clock: () => NOW }).issue({
    deviceId: "LSVAU2180N2183294",
    pileId: PILE,
  });
  if (!issued.ok) throw issued.error;
  const { code, codeId } = issued.value;
  const clientNonce = nodeSuite.randomBytes(16);
  const pileNonce = nodeSuite.randomBytes(16);
  const presented = deviceProof(nodeSuite, issued.value.verifySecret, codeId, pileNonce, clientNonce);
  return () => {
    const v = deriveVerifySecret(suite, entry.key, codeId);
    const proof = deviceProof(suite, v, codeId, pileNonce, clientNonce);
    if (!suite.timingSafeEqual(proof, presented)) throw new Error("bench: proof mismatch");
    const opened = openCode(suite, ring, code);
    if (!opened.ok) throw new Error(`bench: ${opened.error}`);
    const failure = checkClaims(opened.value, {
      pileId: PILE,
      now: BigInt(NOW),
      skewMs: 120_000,
      expect: { keyId: 7, codeId },
    });
    if (failure) throw new Error(`bench: ${failure}`);
  };
}

function sealer(suite: CryptoSuite): () => void {
  const issuer = new Issuer({ keys: [{ keyId: 7, key: KEY }], suite, clock: () => NOW });
  return () => {
    const r = issuer.issue({ deviceId: "LSVAU2180N2183294", pileId: PILE });
    if (!r.ok) throw r.error;
  };
}

export async function run(): Promise<Record<string, unknown>> {
  const verifyNode = opsPerSecond(verifier(nodeSuite));
  const verifyForge = opsPerSecond(verifier(forgeSuite));
  const issueNode = opsPerSecond(sealer(nodeSuite));
  const issueForge = opsPerSecond(sealer(forgeSuite));
  const ratio = (a: number, b: number) => Math.round((a / b) * 1000) / 1000;
  return {
    unit: "operations per second, median of 7 rounds of ≥300 ms",
    verifyPerSecond: { node: verifyNode, forge: verifyForge, forgeOverNode: ratio(verifyForge, verifyNode) },
    issuePerSecond: { node: issueNode, forge: issueForge, forgeOverNode: ratio(issueForge, issueNode) },
  };
}
