import type { ClaimsError } from "../protocol/code.js";

/** Issuer errors: the key list's, and every range a code's claims must respect. */
export type IssueErrorCode = "NO_KEYS" | "BAD_KEY" | "UNKNOWN_KEY" | ClaimsError | "BAD_REQUEST";

export type KeyFileErrorCode = "NOT_FOUND" | "PERMISSIONS" | "MALFORMED" | "EXISTS" | "IO";

export type SdkErrorCode = IssueErrorCode | KeyFileErrorCode;

/** The SDK's one error type: a `code` to branch on and a message for people (never a secret). */
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
