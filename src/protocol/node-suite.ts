import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  randomBytes as nodeRandomBytes,
  timingSafeEqual as nodeTimingSafeEqual,
} from "node:crypto";
import type { CryptoSuite } from "./suite.js";

const ZERO_SALT = new Uint8Array(32);
export const TAG_LENGTH = 16;

/** The pile's crypto: node:crypto (OpenSSL). */
export const nodeSuite: CryptoSuite = {
  name: "node:crypto",
  // HKDF (RFC 5869) from HMAC here rather than crypto.hkdfSync: same bytes (the vectors and the
  // python3-cryptography tier check it), but hkdfSync costs ≈14 µs a call against ≈5 µs for the
  // two HMACs, and a PRESENT derives one V; that is most of the verification budget.
  hkdf(ikm, salt, info, length) {
    if (!Number.isInteger(length) || length < 0 || length > 255 * 32) throw new RangeError("HKDF length");
    const prk = createHmac("sha256", salt ?? ZERO_SALT)
      .update(ikm)
      .digest();
    const out = new Uint8Array(length);
    let block: Uint8Array = new Uint8Array(0);
    for (let i = 1, off = 0; off < length; i++) {
      block = createHmac("sha256", prk).update(block).update(info).update(Uint8Array.of(i)).digest();
      out.set(block.subarray(0, Math.min(32, length - off)), off);
      off += 32;
    }
    return out;
  },
  hmac(key, parts) {
    const h = createHmac("sha256", key);
    for (const p of parts) h.update(p);
    const d = h.digest();
    return new Uint8Array(d.buffer, d.byteOffset, d.length);
  },
  seal(key, nonce, plaintext, aad) {
    const c = createCipheriv("aes-256-gcm", key, nonce, { authTagLength: TAG_LENGTH });
    c.setAAD(aad);
    const body = c.update(plaintext);
    const fin = c.final();
    const tag = c.getAuthTag();
    const out = new Uint8Array(body.length + fin.length + TAG_LENGTH);
    out.set(body, 0);
    out.set(fin, body.length);
    out.set(tag, body.length + fin.length);
    return out;
  },
  open(key, nonce, sealed, aad) {
    if (sealed.length < TAG_LENGTH) return undefined;
    const d = createDecipheriv("aes-256-gcm", key, nonce, { authTagLength: TAG_LENGTH });
    d.setAAD(aad);
    d.setAuthTag(sealed.subarray(sealed.length - TAG_LENGTH));
    const body = d.update(sealed.subarray(0, sealed.length - TAG_LENGTH));
    try {
      const fin = d.final();
      return fin.length === 0 ? new Uint8Array(body) : new Uint8Array(Buffer.concat([body, fin]));
    } catch {
      return undefined;
    }
  },
  randomBytes(n) {
    return new Uint8Array(nodeRandomBytes(n));
  },
  timingSafeEqual(a, b) {
    return a.length === b.length && nodeTimingSafeEqual(a, b);
  },
};
