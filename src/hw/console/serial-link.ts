/**
 * ConsoleLink over a serial port (serialport 13): raw bytes in, text out. No line parser: the
 * console's line editor (src/daemon/console/line-editor.ts) edits lines itself, key by key. An
 * unplugged USB adapter is reopened every `reopenMs`; writes made while the port is closed are
 * dropped, not queued (serialport would send them on the next open: stale output to whoever
 * plugs in next).
 */
import { SerialPort } from "serialport";
import type { ConsoleLink, Unsubscribe } from "../ports.js";

export interface SerialConsoleOptions {
  path: string;
  baud: number;
  reopenMs?: number;
  onError?: (e: Error) => void;
}

export function openSerialConsole(o: SerialConsoleOptions): ConsoleLink {
  const listeners = new Set<(chunk: Uint8Array) => void>();
  const onError = o.onError ?? (() => {});
  let closed = false;
  let timer: NodeJS.Timeout | undefined;

  const port = new SerialPort({ path: o.path, baudRate: o.baud, autoOpen: false });
  port.on("data", (b: Buffer) => {
    for (const l of listeners) l(new Uint8Array(b.buffer, b.byteOffset, b.length));
  });
  port.on("error", (e: Error) => onError(e));
  port.on("close", () => {
    if (!closed) schedule();
  });

  const open = (): void => {
    if (closed || port.isOpen) return;
    port.open((e) => {
      if (e) {
        onError(e);
        schedule();
      }
    });
  };
  const schedule = (): void => {
    if (closed || timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      open();
    }, o.reopenMs ?? 2000);
    timer.unref();
  };
  open();

  return {
    onData(listener): Unsubscribe {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    write(text) {
      if (closed || !port.isOpen) return;
      port.write(Buffer.from(text, "utf8"));
    },
    close: () =>
      new Promise<void>((resolve) => {
        closed = true;
        if (timer) clearTimeout(timer);
        listeners.clear();
        if (!port.isOpen) return resolve();
        port.close(() => resolve());
      }),
  };
}
