/**
 * The byte link to the pilot MCU: lines in (already split at `\n`), text out. The serial
 * implementation uses serialport 13 and `@serialport/parser-delimiter`. Writes made while the
 * port is closed are dropped, not queued: serialport would send them on the next open, and a
 * stale SET or relay test must never reach an MCU that has reset in between.
 */
import { DelimiterParser } from "@serialport/parser-delimiter";
import { SerialPort } from "serialport";
import type { Unsubscribe } from "../ports.js";

export interface PilotLink {
  onLine(listener: (line: Uint8Array) => void): Unsubscribe;
  /** Returns false when the text was dropped (link not open). */
  write(text: string): boolean;
  close(): Promise<void>;
}

export interface PilotSerialOptions {
  path: string;
  baud?: number;
  onError?: (e: Error) => void;
}

/** Opens the UART; resolves once the port is open. */
export function openPilotSerial(o: PilotSerialOptions): Promise<PilotLink> {
  const listeners = new Set<(line: Uint8Array) => void>();
  const port = new SerialPort({ path: o.path, baudRate: o.baud ?? 115200, autoOpen: false });
  const parser = port.pipe(new DelimiterParser({ delimiter: "\n" }));
  parser.on("data", (b: Buffer) => {
    for (const l of listeners) l(new Uint8Array(b.buffer, b.byteOffset, b.length));
  });
  port.on("error", (e: Error) => o.onError?.(e));
  const link: PilotLink = {
    onLine(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    write(text) {
      if (!port.isOpen) return false;
      port.write(Buffer.from(text, "latin1"));
      return true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        listeners.clear();
        if (!port.isOpen) return resolve();
        port.close(() => resolve());
      }),
  };
  return new Promise((resolve, reject) => {
    port.open((e) => (e ? reject(e) : resolve(link)));
  });
}
