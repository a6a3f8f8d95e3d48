/**
 * The platform issuer (PROTOCOL.md §1–2, §4): seals charging codes for a (vehicle device, pile)
 * pair under a pile virtual key, derives the code's verification secret `V`, and routes the code
 * to the vehicle device or the owner's phone. Never throws on a bad request: every refusal is a
 * typed `SdkError`.
 */
import { err, ok, type Result, toBase64Url, U64_MAX } from "../protocol/bytes.js";
import {
  type Carrier,
  CODE_ID_LENGTH,
  type CodeClaims,
  deriveVerifySecret,
  KEY_LENGTH,
  type KeyEntry,
  makeKeyEntry,
  NONCE_LENGTH,
  sealCode,
} from "../protocol/code.js";
import type { CryptoSuite } from "../protocol/suite.js";
import { type IssueError, type IssueErrorCode, SdkError } from "./errors.js";
import { forgeSuite } from "./forge-suite.js";

export const DEFAULT_VALID_FOR_S = 86_400;

export interface IssuerKey {
  keyId: number;
  key: Uint8Array;
}

export interface IssuerOptions {
  /** Pile virtual keys. A request without `keyId` uses the last one listed (the newest). */
  keys: IssuerKey[];
  suite?: CryptoSuite;
  /** Unix ms; default Date.now. */
  clock?: () => number;
}

export interface IssueRequest {
  deviceId: string;
  pileId: string;
  /** Seconds, 1..2678400; default 86400. */
  validForS?: number;
  /** Unix ms, 0..2^64−1; default the clock. */
  issuedAtMs?: bigint | number;
  keyId?: number;
  /** Default "vehicle". */
  carrier?: Carrier;
  limits?: { maxEnergyWh?: number; maxDurationS?: number };
}

export interface VehicleState {
  /** Online, awake and ready to take a code (PROTOCOL.md §4). */
  inAcquisitionState: boolean;
}

export interface IssuedCode {
  code: Uint8Array;
  /** base64url, no padding. */
  codeText: string;
  codeId: Uint8Array;
  keyId: number;
  /** `V`: handed to the carrier with the code over the platform's own channel; never logged. */
  verifySecret: Uint8Array;
  pileId: string;
  deviceId: string;
  carrier: Carrier;
  claims: CodeClaims;
}

/** §4: the vehicle device when it is in its code-acquisition state, else the owner's phone. */
export function route(vehicle: VehicleState): Carrier {
  return vehicle.inAcquisitionState === true ? "vehicle" : "mobile";
}

const isU32 = (n: unknown): n is number =>
  typeof n === "number" && Number.isInteger(n) && n >= 0 && n <= 0xffffffff;

/** In a `u` regex a paired surrogate is one code point, so this matches lone ones only. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

const fail = (code: IssueErrorCode, message: string) => err(new SdkError(code, message));

function checkKeys(keys: unknown): Result<IssuerKey[], IssueError> {
  if (!Array.isArray(keys) || keys.length === 0) return fail("NO_KEYS", "the issuer needs at least one key");
  const seen = new Set<number>();
  for (const k of keys as unknown[]) {
    const { keyId, key } = (k ?? {}) as Partial<IssuerKey>;
    if (!isU32(keyId)) return fail("BAD_KEY", "a keyId is not a whole number in 0..4294967295");
    if (!(key instanceof Uint8Array) || key.length !== KEY_LENGTH)
      return fail("BAD_KEY", `key ${keyId} is not ${KEY_LENGTH} bytes`);
    if (seen.has(keyId)) return fail("BAD_KEY", `key ${keyId} is listed twice`);
    seen.add(keyId);
  }
  return ok(keys as IssuerKey[]);
}

export class Issuer {
  readonly #suite: CryptoSuite;
  readonly #clock: () => number;
  readonly #keys = new Map<number, KeyEntry>();
  readonly #defaultKeyId: number;

  /** Validating factory: a typed error instead of an exception for a bad key list. */
  static create(opts: IssuerOptions): Result<Issuer, IssueError> {
    const k = checkKeys(opts?.keys);
    return k.ok ? ok(new Issuer(opts)) : k;
  }

  /** Throws `SdkError` (NO_KEYS, BAD_KEY) for a bad key list; use `Issuer.create` to get a Result. */
  constructor(opts: IssuerOptions) {
    const k = checkKeys(opts?.keys);
    if (!k.ok) throw k.error;
    this.#suite = opts.suite ?? forgeSuite;
    this.#clock = opts.clock ?? Date.now;
    for (const { keyId, key } of k.value)
      this.#keys.set(keyId, makeKeyEntry(this.#suite, keyId, new Uint8Array(key)));
    this.#defaultKeyId = k.value[k.value.length - 1]!.keyId;
  }

  /** Key ids this issuer holds, ascending. */
  keyIds(): number[] {
    return [...this.#keys.keys()].sort((a, b) => a - b);
  }

  issue(req: IssueRequest): Result<IssuedCode, IssueError> {
    if (typeof req !== "object" || req === null) return fail("BAD_REQUEST", "the request is not an object");
    if (typeof req.deviceId !== "string") return fail("DEVICE_ID_LENGTH", "deviceId must be a string");
    if (typeof req.pileId !== "string") return fail("PILE_ID_LENGTH", "pileId must be a string");
    // A lone surrogate would be sealed as U+FFFD: a code naming a different identifier.
    if (LONE_SURROGATE.test(req.deviceId)) return fail("DEVICE_ID_LENGTH", "deviceId is not valid Unicode");
    if (LONE_SURROGATE.test(req.pileId)) return fail("PILE_ID_LENGTH", "pileId is not valid Unicode");

    const keyId = req.keyId ?? this.#defaultKeyId;
    const key = isU32(keyId) ? this.#keys.get(keyId) : undefined;
    if (!key) return fail("UNKNOWN_KEY", `no key ${String(keyId)} in this issuer`);

    let issuedAt: bigint;
    const at = req.issuedAtMs ?? this.#clock();
    if (typeof at === "bigint") issuedAt = at;
    else if (typeof at === "number" && Number.isSafeInteger(at)) issuedAt = BigInt(at);
    else return fail("ISSUED_AT_RANGE", "issuedAt must be a whole number of ms");
    if (issuedAt < 0n || issuedAt > U64_MAX) return fail("ISSUED_AT_RANGE", "issuedAt outside 0..2^64-1");

    const carrier = req.carrier ?? "vehicle";
    if (carrier !== "vehicle" && carrier !== "mobile")
      return fail("CARRIER", "carrier must be vehicle or mobile");

    const limits = req.limits ?? {};
    const claims: CodeClaims = {
      issuedAt,
      validFor: req.validForS ?? DEFAULT_VALID_FOR_S,
      maxEnergyWh: limits.maxEnergyWh ?? 0,
      maxDurationS: limits.maxDurationS ?? 0,
      carrier,
      deviceId: req.deviceId,
      pileId: req.pileId,
    };
    const codeId = this.#suite.randomBytes(CODE_ID_LENGTH);
    const nonce = this.#suite.randomBytes(NONCE_LENGTH);
    const sealed = sealCode(this.#suite, key, codeId, nonce, claims);
    if (!sealed.ok) {
      // CODE_ID_LENGTH / NONCE_LENGTH cannot happen with the lengths drawn above.
      const code = sealed.error as IssueErrorCode;
      return fail(code, CLAIM_MESSAGES[code] ?? `cannot seal: ${code}`);
    }
    return ok({
      code: sealed.value,
      codeText: toBase64Url(sealed.value),
      codeId,
      keyId: key.keyId,
      verifySecret: deriveVerifySecret(this.#suite, key.key, codeId),
      pileId: claims.pileId,
      deviceId: claims.deviceId,
      carrier,
      claims,
    });
  }

  /** Issues for the carrier §4 picks, recording it in the code's `carrier` field. */
  issueFor(req: Omit<IssueRequest, "carrier"> & { vehicle: VehicleState }): Result<IssuedCode, IssueError> {
    if (typeof req !== "object" || req === null) return fail("BAD_REQUEST", "the request is not an object");
    const { vehicle, ...rest } = req;
    if (typeof vehicle !== "object" || vehicle === null || typeof vehicle.inAcquisitionState !== "boolean")
      return fail("BAD_REQUEST", "vehicle.inAcquisitionState must be a boolean");
    return this.issue({ ...rest, carrier: route(vehicle) });
  }
}

const CLAIM_MESSAGES: Partial<Record<IssueErrorCode, string>> = {
  ISSUED_AT_RANGE: "issuedAt outside 0..2^64-1",
  VALID_FOR_RANGE: "validFor must be a whole number of seconds in 1..2678400",
  MAX_ENERGY_RANGE: "maxEnergyWh must be a whole number in 0..4294967295",
  MAX_DURATION_RANGE: "maxDurationS must be a whole number in 0..4294967295",
  CARRIER: "carrier must be vehicle or mobile",
  DEVICE_ID_LENGTH: "deviceId must be 1..64 bytes of UTF-8",
  PILE_ID_LENGTH: "pileId must be 1..64 bytes of UTF-8",
};
