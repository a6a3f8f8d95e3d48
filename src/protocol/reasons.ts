/** Reason codes of RESULT and ERROR (PROTOCOL.md §3). */
export const Reason = {
  ACCEPTED: 0x00,
  BAD_MESSAGE: 0x01,
  UNSUPPORTED_VERSION: 0x02,
  UNKNOWN_KEY: 0x03,
  BAD_PROOF: 0x04,
  RATE_LIMITED: 0x05,
  BAD_CODE: 0x06,
  CODE_MISMATCH: 0x07,
  WRONG_PILE: 0x08,
  NOT_YET_VALID: 0x09,
  EXPIRED: 0x0a,
  REPLAYED: 0x0b,
  BUSY: 0x0c,
  FAULTED: 0x0d,
  NO_VEHICLE: 0x0e,
  OUT_OF_ORDER: 0x0f,
  TIMEOUT: 0x10,
  STOPPED: 0x11,
} as const;

export type ReasonName = keyof typeof Reason;
export type ReasonCode = (typeof Reason)[ReasonName];

const NAMES = new Map<number, ReasonName>(
  (Object.entries(Reason) as [ReasonName, number][]).map(([name, code]) => [code, name]),
);

export function reasonName(code: number): ReasonName | undefined {
  return NAMES.get(code);
}

export function isReasonCode(code: number): code is ReasonCode {
  return NAMES.has(code);
}

/** Pile states of INFO and STATUS (PROTOCOL.md §3). */
export const PileState = {
  AVAILABLE: 0,
  AUTHORIZING: 1,
  PREPARING: 2,
  CHARGING: 3,
  FINISHING: 4,
  FAULTED: 5,
  UNAVAILABLE: 6,
} as const;

export type PileStateName = keyof typeof PileState;
export type PileStateCode = (typeof PileState)[PileStateName];

const STATE_NAMES = new Map<number, PileStateName>(
  (Object.entries(PileState) as [PileStateName, number][]).map(([name, code]) => [code, name]),
);

export function pileStateName(code: number): PileStateName | undefined {
  return STATE_NAMES.get(code);
}
