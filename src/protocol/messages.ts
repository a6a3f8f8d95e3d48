/**
 * Message codecs (PROTOCOL.md §3). Decoders never throw: they return a message or a reason.
 */
import { concat, decodeUtf8, err, ok, type Result, readU32, u32, utf8 } from "./bytes.js";
import { CODE_ID_LENGTH, idLengthOk } from "./code.js";
import { isReasonCode, Reason, type ReasonCode } from "./reasons.js";

export const MAX_MESSAGE_LENGTH = 512;
export const NONCE16 = 16;
export const PROOF_LENGTH = 32;
export const SESSION_ID_LENGTH = 16;
/** PROTOCOL.md §3: a code is at least 72 bytes; a PRESENT shorter than 33 + 72 is malformed. */
export const MIN_PRESENT_CODE = 72;
export const MAX_INFO_KEYS = 16;
/** The protocol version a HELLO and an INFO carry (§3); the only one spoken. */
export const PROTOCOL_VERSION = 1;

export const MsgType = {
  HELLO: 0x01,
  PRESENT: 0x02,
  STOP: 0x03,
  CHALLENGE: 0x81,
  RESULT: 0x82,
  STATUS: 0x83,
  ERROR: 0x8f,
  INFO: 0x90,
} as const;

export const HELLO_LENGTH = 38;
export const STOP_LENGTH = 33;
export const CHALLENGE_LENGTH = 49;
export const STATUS_LENGTH = 14;

export interface Hello {
  type: "HELLO";
  version: number;
  keyId: number;
  codeId: Uint8Array;
  clientNonce: Uint8Array;
}
export interface Present {
  type: "PRESENT";
  deviceProof: Uint8Array;
  code: Uint8Array;
}
export interface Stop {
  type: "STOP";
  stopProof: Uint8Array;
}
export type ClientMessage = Hello | Present | Stop;

export interface Challenge {
  type: "CHALLENGE";
  pileNonce: Uint8Array;
  pileProof: Uint8Array;
}
export interface ResultMsg {
  type: "RESULT";
  reason: ReasonCode;
  sessionId?: Uint8Array;
}
export interface Status {
  type: "STATUS";
  state: number;
  energyWh: number;
  powerW: number;
  elapsedS: number;
}
export interface ErrorMsg {
  type: "ERROR";
  reason: ReasonCode;
}
export type PileMessage = Challenge | ResultMsg | Status | ErrorMsg;

export interface Info {
  type: "INFO";
  version: number;
  state: number;
  pileId: string;
  keyIds: number[];
}

export type Message = ClientMessage | PileMessage | Info;

/** Encodes any message; throws only on a caller's programming error (out-of-range field). */
export function encodeMessage(m: Message): Uint8Array {
  switch (m.type) {
    case "HELLO":
      return concat(
        Uint8Array.of(MsgType.HELLO, m.version),
        u32(m.keyId),
        fixed(m.codeId, 16),
        fixed(m.clientNonce, 16),
      );
    case "PRESENT":
      return concat(Uint8Array.of(MsgType.PRESENT), fixed(m.deviceProof, 32), m.code);
    case "STOP":
      return concat(Uint8Array.of(MsgType.STOP), fixed(m.stopProof, 32));
    case "CHALLENGE":
      return concat(Uint8Array.of(MsgType.CHALLENGE), fixed(m.pileNonce, 16), fixed(m.pileProof, 32));
    case "RESULT":
      return m.reason === Reason.ACCEPTED
        ? concat(Uint8Array.of(MsgType.RESULT, m.reason), fixed(m.sessionId ?? new Uint8Array(), 16))
        : Uint8Array.of(MsgType.RESULT, m.reason);
    case "STATUS":
      return concat(Uint8Array.of(MsgType.STATUS, m.state), u32(m.energyWh), u32(m.powerW), u32(m.elapsedS));
    case "ERROR":
      return Uint8Array.of(MsgType.ERROR, m.reason);
    case "INFO": {
      const id = utf8(m.pileId);
      if (!idLengthOk(id.length)) throw new RangeError("pileId length");
      if (m.keyIds.length > MAX_INFO_KEYS) throw new RangeError("too many keys");
      return concat(
        Uint8Array.of(MsgType.INFO, m.version, m.state, id.length),
        id,
        Uint8Array.of(m.keyIds.length),
        ...m.keyIds.map(u32),
      );
    }
  }
}

function fixed(b: Uint8Array, n: number): Uint8Array {
  if (b.length !== n) throw new RangeError(`expected ${n} bytes, got ${b.length}`);
  return b;
}

export type DecodeError = "BAD_MESSAGE";

/** Decodes a client → pile message (HELLO, PRESENT, STOP). */
export function decodeClientMessage(b: Uint8Array): Result<ClientMessage, DecodeError> {
  if (b.length === 0 || b.length > MAX_MESSAGE_LENGTH) return err("BAD_MESSAGE");
  switch (b[0]) {
    case MsgType.HELLO:
      if (b.length !== HELLO_LENGTH) return err("BAD_MESSAGE");
      return ok({
        type: "HELLO",
        version: b[1]!,
        keyId: readU32(b, 2),
        codeId: b.slice(6, 6 + CODE_ID_LENGTH),
        clientNonce: b.slice(22, 38),
      });
    case MsgType.PRESENT:
      if (b.length < 1 + PROOF_LENGTH + MIN_PRESENT_CODE) return err("BAD_MESSAGE");
      return ok({ type: "PRESENT", deviceProof: b.slice(1, 33), code: b.slice(33) });
    case MsgType.STOP:
      if (b.length !== STOP_LENGTH) return err("BAD_MESSAGE");
      return ok({ type: "STOP", stopProof: b.slice(1, 33) });
    default:
      return err("BAD_MESSAGE");
  }
}

/** Decodes a pile → client message (CHALLENGE, RESULT, STATUS, ERROR). */
export function decodePileMessage(b: Uint8Array): Result<PileMessage, DecodeError> {
  if (b.length === 0 || b.length > MAX_MESSAGE_LENGTH) return err("BAD_MESSAGE");
  switch (b[0]) {
    case MsgType.CHALLENGE:
      if (b.length !== CHALLENGE_LENGTH) return err("BAD_MESSAGE");
      return ok({ type: "CHALLENGE", pileNonce: b.slice(1, 17), pileProof: b.slice(17, 49) });
    case MsgType.RESULT: {
      const reason = b[1];
      if (reason === undefined || !isReasonCode(reason)) return err("BAD_MESSAGE");
      if (reason === Reason.ACCEPTED) {
        if (b.length !== 2 + SESSION_ID_LENGTH) return err("BAD_MESSAGE");
        return ok({ type: "RESULT", reason, sessionId: b.slice(2) });
      }
      if (b.length !== 2) return err("BAD_MESSAGE");
      return ok({ type: "RESULT", reason });
    }
    case MsgType.STATUS:
      if (b.length !== STATUS_LENGTH || b[1]! > 6) return err("BAD_MESSAGE");
      return ok({
        type: "STATUS",
        state: b[1]!,
        energyWh: readU32(b, 2),
        powerW: readU32(b, 6),
        elapsedS: readU32(b, 10),
      });
    case MsgType.ERROR: {
      const reason = b[1];
      if (b.length !== 2 || reason === undefined || !isReasonCode(reason)) return err("BAD_MESSAGE");
      return ok({ type: "ERROR", reason });
    }
    default:
      return err("BAD_MESSAGE");
  }
}

/** Decodes the value read from the Info characteristic. */
export function decodeInfo(b: Uint8Array): Result<Info, DecodeError> {
  if (b.length < 5 || b[0] !== MsgType.INFO || b[2]! > 6) return err("BAD_MESSAGE");
  const idLen = b[3]!;
  if (!idLengthOk(idLen) || b.length < 4 + idLen + 1) return err("BAD_MESSAGE");
  const pileId = decodeUtf8(b.subarray(4, 4 + idLen));
  const count = b[4 + idLen]!;
  if (pileId === undefined || count > MAX_INFO_KEYS || b.length !== 5 + idLen + 4 * count)
    return err("BAD_MESSAGE");
  const keyIds: number[] = [];
  for (let i = 0; i < count; i++) keyIds.push(readU32(b, 5 + idLen + 4 * i));
  return ok({ type: "INFO", version: b[1]!, state: b[2]!, pileId, keyIds });
}
