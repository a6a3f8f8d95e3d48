/**
 * Signed session evidence in the Open Charge Metering Format (OCMF rev. 1.4.1, S.A.F.E. e.V.):
 * `OCMF|<payload JSON>|<signature JSON>`, signed ECDSA P-256 / SHA-256 (node:crypto), DER
 * signature in hex. It is the controller's signature over the meter readings it took, not a
 * certified (Eichrecht) meter's: it proves which station key sealed these readings, untouched.
 *
 * The station key is generated on first start: PKCS#8 PEM, mode 0600, in a state directory that
 * must be trusted (not a link, not writable by others); the public key is exported as DER
 * SubjectPublicKeyInfo in hex, the form OCMF checkers and OCPP's `publicKey` take.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import { join } from "node:path";
import { err, ok, type Result } from "../protocol/bytes.js";
import { checkTrustedDir, readSmallFile, SafeFileError, writeFileDurable } from "../sdk/files.js";

export const OCMF_KEY_FILE = "ocmf-station-key.pem";
export const OCMF_SIGNING_METHOD = "ECDSA-secp256r1-SHA256";

export interface StationKey {
  privateKey: KeyObject;
  /** DER SubjectPublicKeyInfo, hex (upper case, as the OCMF examples). */
  publicKeyHex: string;
}

const fromPrivate = (privateKey: KeyObject): StationKey => ({
  privateKey,
  publicKeyHex: createPublicKey(privateKey)
    .export({ type: "spki", format: "der" })
    .toString("hex")
    .toUpperCase(),
});

/** Loads the station key from `stateDir`, creating it (0600) on first start. Never throws. */
export function loadOrCreateStationKey(stateDir: string): Result<StationKey, SafeFileError> {
  const dir = checkTrustedDir(stateDir, "state directory");
  if (!dir.ok) return dir;
  const path = join(stateDir, OCMF_KEY_FILE);
  const read = readSmallFile(path, { what: "OCMF station key", owner: true, forbidMode: 0o077 });
  if (read.ok) {
    try {
      const key = createPrivateKey(read.value);
      if (key.asymmetricKeyDetails?.namedCurve !== "prime256v1")
        return err(new SafeFileError("IO", `OCMF station key ${path} is not a P-256 key`));
      return ok(fromPrivate(key));
    } catch {
      return err(new SafeFileError("IO", `OCMF station key ${path} is not a PEM private key`));
    }
  }
  if (read.error.code !== "NOT_FOUND") return read;
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const pem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  const w = writeFileDurable(path, pem, { mode: 0o600, exclusive: true });
  // Another process won the race: use its key.
  if (!w.ok && w.error.code === "EXISTS") return loadOrCreateStationKey(stateDir);
  if (!w.ok)
    return err(new SafeFileError("IO", `OCMF station key ${path} cannot be written (${w.error.errno})`));
  return ok(fromPrivate(privateKey));
}

/** What a finished session contributes to its record. */
export interface OcmfSession {
  /** Record counter, +1 per record of this station ("T<n>"). */
  pagination: number;
  gateway: { id: string; serial: string; version: string };
  meter: { vendor: string; model: string; serial: string; firmware?: string };
  /** The opaque, non-secret id of the unlocking (type LOCAL). */
  tokenId: string;
  /** The EVSE / station id shown to the user. */
  chargePointId: string;
  start: { at: Date; wh: number };
  stop: { at: Date; wh: number };
  /** The pile's clock is its best estimate, not a synchronised legal time: "I" (informative). */
  timeStatus?: "U" | "I" | "S" | "R";
  /** Reason letter of the end reading: E end, L local stop, R remote stop, A abort, P power loss. */
  endReason?: "E" | "L" | "R" | "A" | "P";
}

const pad = (n: number, w = 2): string => String(n).padStart(w, "0");

/** OCMF time `2018-07-24T13:22:04,000+0000 I`, in UTC. */
export function ocmfTime(d: Date, status: string): string {
  return (
    `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())},` +
    `${pad(d.getUTCMilliseconds(), 3)}+0000 ${status}`
  );
}

/** kWh with three decimals (Wh resolution). */
const kwh = (wh: number): number => Math.round(wh) / 1000;

/** The payload section, as an object in its field order. */
export function ocmfPayload(s: OcmfSession): Record<string, unknown> {
  const ts = s.timeStatus ?? "I";
  const reading = (at: Date, wh: number, tx: string) => ({
    TM: ocmfTime(at, ts),
    TX: tx,
    RV: kwh(wh),
    RI: "01-00:01.08.00*FF",
    RU: "kWh",
    ST: "G",
  });
  return {
    FV: "1.0",
    GI: s.gateway.id,
    GS: s.gateway.serial,
    GV: s.gateway.version,
    PG: `T${s.pagination}`,
    MV: s.meter.vendor,
    MM: s.meter.model,
    MS: s.meter.serial,
    ...(s.meter.firmware !== undefined ? { MF: s.meter.firmware } : {}),
    IS: true,
    IL: "HEARSAY",
    IF: [],
    IT: "LOCAL",
    ID: s.tokenId,
    CT: "EVSEID",
    CI: s.chargePointId,
    RD: [reading(s.start.at, s.start.wh, "B"), reading(s.stop.at, s.stop.wh, s.endReason ?? "E")],
  };
}

/** Seals a finished session: the OCMF text record. `|` never occurs in JSON.stringify output of these fields unless an id holds one; such ids are refused. */
export function sealSession(key: StationKey, s: OcmfSession): Result<string, Error> {
  const payload = JSON.stringify(ocmfPayload(s));
  if (payload.includes("|")) return err(new Error("an OCMF field holds '|', which the text form forbids"));
  const sd = sign("sha256", Buffer.from(payload, "utf8"), { key: key.privateKey, dsaEncoding: "der" });
  const signature = JSON.stringify({
    SA: OCMF_SIGNING_METHOD,
    SE: "hex",
    SM: "application/x-der",
    SD: sd.toString("hex").toUpperCase(),
  });
  return ok(`OCMF|${payload}|${signature}`);
}

/** OCPP 2.0.1 SignedMeterValueType for a record (signedMeterData is base64, at most 2500 chars). */
export function signedMeterValue(record: string, key: StationKey): Result<Record<string, string>, Error> {
  const data = Buffer.from(record, "utf8").toString("base64");
  if (data.length > 2500)
    return err(new Error(`OCMF record is ${data.length} base64 characters, more than 2500`));
  return ok({
    signedMeterData: data,
    signingMethod: OCMF_SIGNING_METHOD,
    encodingMethod: "OCMF",
    publicKey: Buffer.from(key.publicKeyHex, "hex").toString("base64"),
  });
}
