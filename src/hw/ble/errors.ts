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

/**
 * After bleno's or noble's `stop()`, the UART HCI driver (bluetooth-hci-socket) removes every
 * listener of its serial port, yet writes already queued (a disconnect, a reset) still go out; if
 * the pty or adapter is gone they fail with EIO, and an `error` event with no listener would end
 * the process. Keep one no-op listener on that port. Reaches into private fields, hence the
 * guarded walk: on the kernel HCI driver there is no serial port and nothing to do.
 */
export function absorbLateSerialErrors(instance: unknown): void {
  const dev = (
    instance as { _bindings?: { _hci?: { _socket?: { _serialDevice?: { on?: unknown } } } } } | undefined
  )?._bindings?._hci?._socket?._serialDevice as { on(ev: "error", l: (e: Error) => void): void } | undefined;
  if (dev && typeof dev.on === "function") dev.on("error", () => {});
}
