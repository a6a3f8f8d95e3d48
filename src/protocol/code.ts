/**
 * The charging code (PROTOCOL.md §1–2): key derivation, the strict plaintext layout, sealing,
 * opening and the pure checks 1–4 of §2 (replay, check 5, needs the pile's ledger).
 */
import {
  concat,
  decodeUtf8,
  err,
  ok,
  type Result,
  readU32,
  readU64,
  U64_MAX,
  u32,
  u64,
  utf8,
} from "./bytes.js";
import type { CryptoSuite } from "./suite.js";

export const CODE_VERSION = 1;
export const KEY_LENGTH = 32;
export const CODE_ID_LENGTH = 16;
export const NONCE_LENGTH = 12;
export const TAG_LENGTH = 16;
/** version(1) + keyId(4) + codeId(16): the AEAD's associated data. */
export const AAD_LENGTH = 21;
export const HEADER_LENGTH = AAD_LENGTH + NONCE_LENGTH;
export const MAX_ID_BYTES = 64;
/** An identifier's length rule (§2 deviceId, pileId): 1..64 bytes of UTF-8. */
export const idLengthOk = (bytes: number): boolean => bytes >= 1 && bytes <= MAX_ID_BYTES;
/** Clock skew tolerated on both sides of a code's window by default (§2 check 4), ms. */
export const DEFAULT_SKEW_MS = 120_000;
export const MAX_VALID_FOR_S = 2_678_400;
const PLAINTEXT_FIXED = 22;
export const MIN_PLAINTEXT_LENGTH = PLAINTEXT_FIXED + 1 + 1 + 1;
export const MAX_PLAINTEXT_LENGTH = PLAINTEXT_FIXED + MAX_ID_BYTES + 1 + MAX_ID_BYTES;
export const MIN_CODE_LENGTH = HEADER_LENGTH + MIN_PLAINTEXT_LENGTH + TAG_LENGTH;
export const MAX_CODE_LENGTH = HEADER_LENGTH + MAX_PLAINTEXT_LENGTH + TAG_LENGTH;

const INFO_CODE = utf8("piled/v1 code");
const INFO_VERIFY = utf8("piled/v1 verify");

export type Carrier = "vehicle" | "mobile";
export const CARRIER_BYTE: Record<Carrier, number> = { vehicle: 0, mobile: 1 };

/** The sealed fields of a code. */
export interface CodeClaims {
  /** Unix time in ms, 0..2^64−1. */
  issuedAt: bigint;
  /** Seconds, 1..2678400. */
  validFor: number;
  /** 0 = no limit. */
  maxEnergyWh: number;
  /** 0 = no limit. */
  maxDurationS: number;
  carrier: Carrier;
  deviceId: string;
  pileId: string;
}

export interface CodeHeader {
  version: number;
  keyId: number;
  codeId: Uint8Array;
  nonce: Uint8Array;
}

export interface OpenedCode extends CodeHeader {
  claims: CodeClaims;
}

/** A pile virtual key with its derived code key. */
export interface KeyEntry {
  keyId: number;
  key: Uint8Array;
  codeKey: Uint8Array;
}

export interface KeyLookup {
  get(keyId: number): KeyEntry | undefined;
}

export function deriveCodeKey(suite: CryptoSuite, key: Uint8Array): Uint8Array {
  return suite.hkdf(key, undefined, INFO_CODE, 32);
}

export function deriveVerifySecret(suite: CryptoSuite, key: Uint8Array, codeId: Uint8Array): Uint8Array {
  return suite.hkdf(key, codeId, INFO_VERIFY, 32);
}

export function makeKeyEntry(suite: CryptoSuite, keyId: number, key: Uint8Array): KeyEntry {
  return { keyId, key, codeKey: deriveCodeKey(suite, key) };
}

/** Keys a pile (or an issuer) holds, selected by keyId. */
export class KeyRing implements KeyLookup {
  readonly #entries = new Map<number, KeyEntry>();
  constructor(private readonly suite: CryptoSuite) {}
  add(keyId: number, key: Uint8Array): KeyEntry {
    const e = makeKeyEntry(this.suite, keyId, key);
    this.#entries.set(keyId, e);
    return e;
  }
  delete(keyId: number): boolean {
    return this.#entries.delete(keyId);
  }
  get(keyId: number): KeyEntry | undefined {
    return this.#entries.get(keyId);
  }
  has(keyId: number): boolean {
    return this.#entries.has(keyId);
  }
  ids(): number[] {
    return [...this.#entries.keys()].sort((a, b) => a - b);
  }
  get size(): number {
    return this.#entries.size;
  }
}

/** Why a set of claims cannot be sealed (issuer-side input errors). */
export type ClaimsError =
  | "ISSUED_AT_RANGE"
  | "VALID_FOR_RANGE"
  | "MAX_ENERGY_RANGE"
  | "MAX_DURATION_RANGE"
  | "CARRIER"
  | "DEVICE_ID_LENGTH"
  | "PILE_ID_LENGTH";

const isU32 = (n: number) => Number.isInteger(n) && n >= 0 && n <= 0xffffffff;

export function encodePlaintext(c: CodeClaims): Result<Uint8Array, ClaimsError> {
  if (typeof c.issuedAt !== "bigint" || c.issuedAt < 0n || c.issuedAt > U64_MAX)
    return err("ISSUED_AT_RANGE");
  if (!Number.isInteger(c.validFor) || c.validFor < 1 || c.validFor > MAX_VALID_FOR_S)
    return err("VALID_FOR_RANGE");
  if (!isU32(c.maxEnergyWh)) return err("MAX_ENERGY_RANGE");
  if (!isU32(c.maxDurationS)) return err("MAX_DURATION_RANGE");
  if (c.carrier !== "vehicle" && c.carrier !== "mobile") return err("CARRIER");
  const dev = utf8(c.deviceId);
  const pile = utf8(c.pileId);
  if (!idLengthOk(dev.length)) return err("DEVICE_ID_LENGTH");
  if (!idLengthOk(pile.length)) return err("PILE_ID_LENGTH");
  return ok(
    concat(
      u64(c.issuedAt),
      u32(c.validFor),
      u32(c.maxEnergyWh),
      u32(c.maxDurationS),
      Uint8Array.of(CARRIER_BYTE[c.carrier], dev.length),
      dev,
      Uint8Array.of(pile.length),
      pile,
    ),
  );
}

/** Strict plaintext parser: exact length, every field in range, identifiers valid UTF-8. */
export function parsePlaintext(p: Uint8Array): CodeClaims | undefined {
  if (p.length < MIN_PLAINTEXT_LENGTH || p.length > MAX_PLAINTEXT_LENGTH) return undefined;
  const issuedAt = readU64(p, 0);
  const validFor = readU32(p, 8);
  const maxEnergyWh = readU32(p, 12);
  const maxDurationS = readU32(p, 16);
  const carrierByte = p[20]!;
  const l1 = p[21]!;
  if (validFor < 1 || validFor > MAX_VALID_FOR_S) return undefined;
  if (carrierByte > 1) return undefined;
  if (!idLengthOk(l1)) return undefined;
  const l2Off = PLAINTEXT_FIXED + l1;
  if (l2Off >= p.length) return undefined;
  const l2 = p[l2Off]!;
  if (!idLengthOk(l2)) return undefined;
  if (l2Off + 1 + l2 !== p.length) return undefined;
  const deviceId = decodeUtf8(p.subarray(PLAINTEXT_FIXED, l2Off));
  const pileId = decodeUtf8(p.subarray(l2Off + 1));
  if (deviceId === undefined || pileId === undefined) return undefined;
  return {
    issuedAt,
    validFor,
    maxEnergyWh,
    maxDurationS,
    carrier: carrierByte === 0 ? "vehicle" : "mobile",
    deviceId,
    pileId,
  };
}

function aadOf(keyId: number, codeId: Uint8Array): Uint8Array {
  return concat(Uint8Array.of(CODE_VERSION), u32(keyId), codeId);
}

/** Seals claims into the code bytes with the given codeId and nonce. */
export function sealCode(
  suite: CryptoSuite,
  key: KeyEntry,
  codeId: Uint8Array,
  nonce: Uint8Array,
  claims: CodeClaims,
): Result<Uint8Array, ClaimsError | "CODE_ID_LENGTH" | "NONCE_LENGTH"> {
  if (codeId.length !== CODE_ID_LENGTH) return err("CODE_ID_LENGTH");
  if (nonce.length !== NONCE_LENGTH) return err("NONCE_LENGTH");
  const pt = encodePlaintext(claims);
  if (!pt.ok) return pt;
  const aad = aadOf(key.keyId, codeId);
  return ok(concat(aad, nonce, suite.seal(key.codeKey, nonce, pt.value, aad)));
}

/** Reads the clear header of a code; undefined if the bytes cannot be a v1 code. */
export function parseCodeHeader(code: Uint8Array): CodeHeader | undefined {
  if (code.length < MIN_CODE_LENGTH || code[0] !== CODE_VERSION) return undefined;
  return {
    version: CODE_VERSION,
    keyId: readU32(code, 1),
    codeId: code.slice(5, 5 + CODE_ID_LENGTH),
    nonce: code.slice(AAD_LENGTH, HEADER_LENGTH),
  };
}

/** §2 check 1: version, keyId held, AEAD opens, strict plaintext. */
export function openCode(
  suite: CryptoSuite,
  keys: KeyLookup,
  code: Uint8Array,
): Result<OpenedCode, "BAD_CODE" | "UNKNOWN_KEY"> {
  if (code.length > MAX_CODE_LENGTH) return err("BAD_CODE");
  const header = parseCodeHeader(code);
  if (!header) return err("BAD_CODE");
  const key = keys.get(header.keyId);
  if (!key) return err("UNKNOWN_KEY");
  const pt = suite.open(
    key.codeKey,
    header.nonce,
    code.subarray(HEADER_LENGTH),
    code.subarray(0, AAD_LENGTH),
  );
  if (!pt) return err("BAD_CODE");
  const claims = parsePlaintext(pt);
  if (!claims) return err("BAD_CODE");
  return ok({ ...header, claims });
}

export interface CheckContext {
  /** The pile's own identifier. */
  pileId: string;
  /** The pile's best estimate of true time, Unix ms (already raised to the time floor). */
  now: bigint;
  skewMs: number;
  /** keyId and codeId of the HELLO of the same exchange, when there is one. */
  expect?: { keyId: number; codeId: Uint8Array };
}

export type CheckFailure = "CODE_MISMATCH" | "WRONG_PILE" | "NOT_YET_VALID" | "EXPIRED";

/** §2 checks 2–4 on an opened code, in order; undefined when all pass. */
export function checkClaims(code: OpenedCode, ctx: CheckContext): CheckFailure | undefined {
  if (ctx.expect) {
    const { keyId, codeId } = ctx.expect;
    if (keyId !== code.keyId || codeId.length !== code.codeId.length) return "CODE_MISMATCH";
    for (let i = 0; i < codeId.length; i++) if (codeId[i] !== code.codeId[i]) return "CODE_MISMATCH";
  }
  if (code.claims.pileId !== ctx.pileId) return "WRONG_PILE";
  const skew = BigInt(ctx.skewMs);
  const issuedAt = code.claims.issuedAt;
  if (issuedAt - skew > ctx.now) return "NOT_YET_VALID";
  if (ctx.now > issuedAt + BigInt(code.claims.validFor) * 1000n + skew) return "EXPIRED";
  return undefined;
}

/** End of a code's window plus skew, in Unix ms: how long its ledger entry must be kept. */
export function codeExpiry(claims: CodeClaims, skewMs: number): bigint {
  return claims.issuedAt + BigInt(claims.validFor) * 1000n + BigInt(skewMs);
}
