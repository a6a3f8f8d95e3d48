/**
 * The SDK's crypto: node-forge only, so that the issuer and the carrier client also run in
 * JavaScript runtimes without node:crypto or Buffer (a phone app's engine). Held to the same
 * independent vectors as the pile's node:crypto suite.
 */
import forge from "node-forge";
import { constantTimeEqual } from "../protocol/bytes.js";
import type { CryptoSuite } from "../protocol/suite.js";

const HASH_LENGTH = 32;
const TAG_BYTES = 16;
const ZERO_SALT = new Uint8Array(HASH_LENGTH);

/** Uint8Array → forge's binary string (one char per byte). Chunked to stay under argument limits. */
export function toBinary(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 8192) {
    s += String.fromCharCode.apply(null, b.subarray(i, i + 8192) as unknown as number[]);
  }
  return s;
}

/** forge's binary string → Uint8Array. */
export function fromBinary(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

function hmacBinary(key: string, parts: readonly string[]): string {
  const h = forge.hmac.create();
  h.start("sha256", key);
  for (const p of parts) h.update(p);
  return h.digest().getBytes();
}

/**
 * HKDF-SHA256 (RFC 5869) from forge's HMAC: forge has no HKDF of its own.
 * Extract: PRK = HMAC(salt, IKM); expand: T(i) = HMAC(PRK, T(i−1) || info || i), i = 1..N.
 */
export function forgeHkdf(
  ikm: Uint8Array,
  salt: Uint8Array | undefined,
  info: Uint8Array,
  length: number,
): Uint8Array {
  if (!Number.isInteger(length) || length < 0 || length > 255 * HASH_LENGTH) {
    throw new RangeError(`HKDF length ${length} outside 0..${255 * HASH_LENGTH}`);
  }
  const prk = hmacBinary(toBinary(salt ?? ZERO_SALT), [toBinary(ikm)]);
  const infoB = toBinary(info);
  let okm = "";
  let t = "";
  for (let i = 1; okm.length < length; i++) {
    t = hmacBinary(prk, [t, infoB, String.fromCharCode(i)]);
    okm += t;
  }
  return fromBinary(okm.slice(0, length));
}

export const forgeSuite: CryptoSuite = {
  name: "node-forge",
  hkdf: forgeHkdf,
  hmac(key, parts) {
    return fromBinary(hmacBinary(toBinary(key), parts.map(toBinary)));
  },
  seal(key, nonce, plaintext, aad) {
    const c = forge.cipher.createCipher("AES-GCM", toBinary(key));
    c.start({ iv: toBinary(nonce), additionalData: toBinary(aad), tagLength: TAG_BYTES * 8 });
    c.update(forge.util.createBuffer(toBinary(plaintext)));
    c.finish();
    const body = c.output.getBytes();
    const tag = c.mode.tag.getBytes();
    return fromBinary(body + tag);
  },
  open(key, nonce, sealed, aad) {
    if (sealed.length < TAG_BYTES) return undefined;
    const body = sealed.subarray(0, sealed.length - TAG_BYTES);
    const tag = sealed.subarray(sealed.length - TAG_BYTES);
    // forge compares the tag with `!==` on strings (not constant time): its verdict is ignored and
    // the tag it computed is compared here in constant time instead.
    const d = forge.cipher.createDecipher("AES-GCM", toBinary(key));
    d.start({
      iv: toBinary(nonce),
      additionalData: toBinary(aad),
      tagLength: TAG_BYTES * 8,
      tag: forge.util.createBuffer(toBinary(tag)),
    });
    d.update(forge.util.createBuffer(toBinary(body)));
    d.finish();
    const computed = fromBinary(d.mode.tag.getBytes());
    if (!constantTimeEqual(computed, tag)) return undefined;
    return fromBinary(d.output.getBytes());
  },
  // The platform's CSPRNG where the runtime has one (Web Crypto: browsers, Node, most phone
  // runtimes); forge's own Fortuna generator otherwise. Fortuna in pure JavaScript is most of the
  // cost of issuing a code and stalls now and then while it reseeds.
  randomBytes(n) {
    const webCrypto = (globalThis as { crypto?: { getRandomValues?: (a: Uint8Array) => Uint8Array } }).crypto;
    if (typeof webCrypto?.getRandomValues === "function") return webCrypto.getRandomValues(new Uint8Array(n));
    return fromBinary(forge.random.getBytesSync(n));
  },
  timingSafeEqual(a, b) {
    return constantTimeEqual(a, b);
  },
};
