/** The three proofs of the interactive verification (PROTOCOL.md §3). */
import { utf8 } from "./bytes.js";
import type { CryptoSuite } from "./suite.js";

const PILE = utf8("piled/v1 pile");
const DEVICE = utf8("piled/v1 device");
const STOP = utf8("piled/v1 stop");

export function pileProof(
  suite: CryptoSuite,
  v: Uint8Array,
  codeId: Uint8Array,
  clientNonce: Uint8Array,
  pileNonce: Uint8Array,
  pileId: string,
): Uint8Array {
  const id = utf8(pileId);
  return suite.hmac(v, [PILE, codeId, clientNonce, pileNonce, Uint8Array.of(id.length), id]);
}

export function deviceProof(
  suite: CryptoSuite,
  v: Uint8Array,
  codeId: Uint8Array,
  pileNonce: Uint8Array,
  clientNonce: Uint8Array,
): Uint8Array {
  return suite.hmac(v, [DEVICE, codeId, pileNonce, clientNonce]);
}

export function stopProof(
  suite: CryptoSuite,
  v: Uint8Array,
  codeId: Uint8Array,
  pileNonce: Uint8Array,
): Uint8Array {
  return suite.hmac(v, [STOP, codeId, pileNonce]);
}
