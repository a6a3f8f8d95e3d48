/** The SDK's one error type: a `code` to branch on and a message for people (never a secret). */
export type IssueErrorCode =
  | "NO_KEYS"
  | "BAD_KEY"
  | "UNKNOWN_KEY"
  | "ISSUED_AT_RANGE"
  | "VALID_FOR_RANGE"
  | "MAX_ENERGY_RANGE"
  | "MAX_DURATION_RANGE"
  | "CARRIER"
  | "DEVICE_ID_LENGTH"
  | "PILE_ID_LENGTH"
  | "BAD_REQUEST";

export type KeyFileErrorCode = "NOT_FOUND" | "PERMISSIONS" | "MALFORMED" | "EXISTS" | "IO";

export type SdkErrorCode = IssueErrorCode | KeyFileErrorCode;

export class SdkError<C extends SdkErrorCode = SdkErrorCode> extends Error {
  override readonly name = "SdkError";
  constructor(
    readonly code: C,
    message: string,
  ) {
    super(message);
  }
}

export type IssueError = SdkError<IssueErrorCode>;
export type KeyFileError = SdkError<KeyFileErrorCode>;
