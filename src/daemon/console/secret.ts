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

/**
 * Bounds on the parameters a hash may ask for: one login attempt must not eat the board's
 * memory or its CPU (N=2^20, r=32 is 4 GiB and half a minute per attempt).
 */
export const SCRYPT_LIMITS = { maxN: 1 << 17, maxR: 16, maxP: 4, maxMemBytes: 256 * 1024 * 1024 } as const;

/** What is wrong with a hash string, for a person; undefined when it is usable. Never throws. */
export function hashProblem(s: string): string | undefined {
  const m = /^scrypt\$(\d{1,7})\$(\d{1,3})\$(\d{1,3})\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(s.trim());
  if (!m) return "not a scrypt$N$r$p$salt$hash string (make one with hash-secret)";
  const N = Number(m[1]);
  const r = Number(m[2]);
  const p = Number(m[3]);
  const L = SCRYPT_LIMITS;
  if (N < 2 || (N & (N - 1)) !== 0) return `scrypt N=${N} is not a power of two`;
  if (N > L.maxN) return `scrypt N=${N} is above ${L.maxN}`;
  if (r < 1 || r > L.maxR) return `scrypt r=${r} is outside 1..${L.maxR}`;
  if (p < 1 || p > L.maxP) return `scrypt p=${p} is outside 1..${L.maxP}`;
  if (128 * N * r > L.maxMemBytes) return `scrypt N=${N}, r=${r} needs more than ${L.maxMemBytes >> 20} MiB`;
  const salt = Buffer.from(m[4]!, "base64");
  const key = Buffer.from(m[5]!, "base64");
  if (salt.length < 8) return "scrypt salt is shorter than 8 bytes";
  if (key.length < 16 || key.length > 64) return "scrypt hash is not 16..64 bytes";
  return undefined;
}

/** Parses a hash string; undefined when it is not a usable one (never throws). */
export function parseHash(s: string): ParsedHash | undefined {
  if (hashProblem(s) !== undefined) return undefined;
  const [, n, r, p, salt, key] = s.trim().split("$");
  return {
    N: Number(n),
    r: Number(r),
    p: Number(p),
    salt: Buffer.from(salt!, "base64"),
    key: Buffer.from(key!, "base64"),
  };
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
