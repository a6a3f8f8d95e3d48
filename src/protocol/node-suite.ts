import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  hkdfSync,
  randomBytes as nodeRandomBytes,
  timingSafeEqual as nodeTimingSafeEqual,
} from "node:crypto";
import type { CryptoSuite } from "./suite.js";

const ZERO_SALT = new Uint8Array(32);
export const TAG_LENGTH = 16;

/** The pile's crypto: node:crypto (OpenSSL). */
export const nodeSuite: CryptoSuite = {
  name: "node:crypto",
  hkdf(ikm, salt, info, length) {
    return new Uint8Array(hkdfSync("sha256", ikm, salt ?? ZERO_SALT, info, length));
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
