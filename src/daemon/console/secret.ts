/**
 * The technician secret, kept only as an scrypt hash string `scrypt$N$r$p$salt$hash` (salt and
 * hash in base64). node:crypto's scrypt is the whole implementation: no library needed.
 */
import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

export const DEFAULT_SCRYPT: ScryptParams = { N: 16384, r: 8, p: 1 };
const KEYLEN = 32;

const derive = (secret: string, salt: Buffer, prm: ScryptParams): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    scrypt(
      Buffer.from(secret, "utf8"),
      salt,
      KEYLEN,
      { N: prm.N, r: prm.r, p: prm.p, maxmem: 256 * prm.N * prm.r + 1024 * 1024 },
      (e, key) => (e ? reject(e) : resolve(key)),
    );
  });

/** Makes the hash string to put in the config (console.secretHash) or its secretHashFile. */
export async function hashSecret(secret: string, prm: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(secret, salt, prm);
  return `scrypt$${prm.N}$${prm.r}$${prm.p}$${salt.toString("base64")}$${key.toString("base64")}`;
}

interface ParsedHash extends ScryptParams {
  salt: Buffer;
  key: Buffer;
}

/** Parses a hash string; undefined when it is not one (never throws). */
export function parseHash(s: string): ParsedHash | undefined {
  const m = /^scrypt\$(\d{1,7})\$(\d{1,3})\$(\d{1,3})\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(s.trim());
  if (!m) return undefined;
  const N = Number(m[1]);
  const r = Number(m[2]);
  const p = Number(m[3]);
  // N a power of two > 1; bounds keep a hostile hash from eating the board's memory.
  if (N < 2 || N > 1 << 20 || (N & (N - 1)) !== 0 || r < 1 || r > 32 || p < 1 || p > 16) return undefined;
  const salt = Buffer.from(m[4]!, "base64");
  const key = Buffer.from(m[5]!, "base64");
  if (salt.length < 8 || key.length < 16 || key.length > 64) return undefined;
  return { N, r, p, salt, key };
}

/** Whether `secret` matches `hash`; false for a malformed hash. Constant time in the comparison. */
export async function verifySecret(hash: string, secret: string): Promise<boolean> {
  const h = parseHash(hash);
  if (!h) return false;
  try {
    const key = await new Promise<Buffer>((resolve, reject) => {
      scrypt(
        Buffer.from(secret, "utf8"),
        h.salt,
        h.key.length,
        { N: h.N, r: h.r, p: h.p, maxmem: 256 * h.N * h.r + 1024 * 1024 },
        (e, k) => (e ? reject(e) : resolve(k)),
      );
    });
    return timingSafeEqual(key, h.key);
  } catch {
    return false;
  }
}
