/** The BLE adapters' one error type: a `code` to branch on and a message for people. */
export type BleErrorCode =
  /** No controller: the UART/HCI device is missing, or it never powered on. */
  | "NO_RADIO"
  /** No pile advertising the wanted name (or confirming it by Info) before the deadline. */
  | "NOT_FOUND"
  /** The link or its GATT discovery did not complete before the deadline. */
  | "CONNECT_TIMEOUT"
  /** A GATT operation failed or timed out, or the pile lacks the service. */
  | "GATT"
  /** The link went down (or was closed) while an operation was pending. */
  | "DISCONNECTED";

export class BleError extends Error {
  override readonly name = "BleError";
  constructor(
    readonly code: BleErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Which controller an adapter drives. */
export type BleController =
  /** A kernel HCI device (hci0 = 0), e.g. a Raspberry Pi's on-board radio. */
  | { kind: "hci"; device: number }
  /** An H4 UART: a USB/UART controller (Zephyr hci_uart) or the emulated radio's pty bridge. */
  | { kind: "uart"; path: string; baud?: number };

/** Options for @stoprocent/bleno's and @stoprocent/noble's `withBindings("hci", …)`. */
export function hciBindingOptions(c: BleController): Record<string, unknown> {
  if (c.kind === "hci") return { hciDriver: "native", deviceId: c.device };
  return { hciDriver: "uart", bindParams: { uart: { port: c.path, baudRate: c.baud ?? 1_000_000 } } };
}

/** Minimal structured logger; a pino Logger fits. */
export interface BleLog {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export const silentLog: BleLog = { debug: () => {}, info: () => {}, warn: () => {} };
