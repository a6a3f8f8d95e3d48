/** Every failure of the GPIO layer, one class, told apart by `code` (never by message text). */
export type GpioErrorCode =
  /** No chip has this label or sysfs name; the message lists the labels seen. */
  | "NO_CHIP"
  /** The label names more than one chip: name it as "gpiochipN" instead. */
  | "AMBIGUOUS_CHIP"
  /** Line offset outside 0..ngpio-1 of its chip (or not a non-negative integer). */
  | "LINE_RANGE"
  /** Writing `export` failed, or the exported files never appeared. */
  | "EXPORT"
  /** A read or write of a line's files failed. */
  | "IO"
  /** The line is held by a kernel driver or another process. */
  | "BUSY";

export class GpioError extends Error {
  override readonly name = "GpioError";
  constructor(
    readonly code: GpioErrorCode,
    message: string,
    readonly detail?: { errno?: string; labels?: string[]; line?: string },
  ) {
    super(message);
  }
}

/** The `code` of a Node system error (`ENOENT`, `EBUSY`, …), if it is one. */
export function errnoOf(err: unknown): string | undefined {
  if (typeof err === "object" && err !== null && "code" in err) {
    const c = (err as { code: unknown }).code;
    if (typeof c === "string") return c;
  }
  return undefined;
}
