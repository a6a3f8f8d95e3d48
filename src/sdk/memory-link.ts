/**
 * An in-memory BLE connection: a `CarrierLink` for the carrier, and the pile's side of the same
 * connection (Control writes in, Event notifications out, Info value, disconnect). For tests and
 * the simulator; no radio involved. Deliveries are asynchronous (microtasks) and in order, like a
 * real link, so code under test cannot rely on re-entrancy a radio would not give it.
 */
import { fragment } from "../protocol/fragments.js";
import type { CarrierLink, Unsubscribe } from "./transport.js";

export class LinkClosedError extends Error {
  override readonly name = "LinkClosedError";
  readonly code = "DISCONNECTED";
  constructor() {
    super("link is disconnected");
  }
}

export interface PileSide {
  readonly mtu: number;
  readonly connected: boolean;
  /** Every fragment the carrier wrote, in order (for assertions). */
  readonly writes: Uint8Array[];
  /** Every fragment notified to the carrier, in order. */
  readonly notified: Uint8Array[];
  /**
   * Handles the carrier's Control writes; the write completes when the handler's promise does.
   * A handler that throws or rejects fails the write (a GATT error response).
   */
  onWrite(handler: (fragment: Uint8Array) => void | Promise<void>): void;
  /** Notifies one raw fragment on Event. */
  notify(fragment: Uint8Array): void;
  /** Fragments one message at the link MTU and notifies each fragment. */
  send(message: Uint8Array): void;
  /** The value of the Info characteristic. */
  setInfo(value: Uint8Array): void;
  /** Called once when the connection ends, from either side. */
  onDisconnect(listener: () => void): Unsubscribe;
  /** Drops the connection from the pile's side. */
  disconnect(): void;
}

/** A connected carrier link and the pile's side of it, at the given ATT MTU. */
export function memoryLinkPair(mtu = 23): { link: CarrierLink; pile: PileSide } {
  let connected = true;
  let writeHandler: (f: Uint8Array) => void | Promise<void> = () => {};
  let info = new Uint8Array();
  const notifyListeners = new Set<(f: Uint8Array) => void>();
  const carrierDisconnect = new Set<() => void>();
  const pileDisconnect = new Set<() => void>();
  const writes: Uint8Array[] = [];
  const notified: Uint8Array[] = [];

  const drop = () => {
    if (!connected) return;
    connected = false;
    queueMicrotask(() => {
      for (const l of [...carrierDisconnect]) l();
      for (const l of [...pileDisconnect]) l();
    });
  };

  const link: CarrierLink = {
    mtu,
    async write(f) {
      if (!connected) throw new LinkClosedError();
      const copy = new Uint8Array(f);
      writes.push(copy);
      await writeHandler(copy);
    },
    onNotify(listener) {
      notifyListeners.add(listener);
      return () => notifyListeners.delete(listener);
    },
    async readInfo() {
      if (!connected) throw new LinkClosedError();
      return new Uint8Array(info);
    },
    onDisconnect(listener) {
      carrierDisconnect.add(listener);
      return () => carrierDisconnect.delete(listener);
    },
    async close() {
      drop();
    },
  };

  const pile: PileSide = {
    mtu,
    get connected() {
      return connected;
    },
    writes,
    notified,
    onWrite(handler) {
      writeHandler = handler;
    },
    notify(f) {
      if (!connected) return;
      const copy = new Uint8Array(f);
      notified.push(copy);
      queueMicrotask(() => {
        if (!connected) return;
        for (const l of [...notifyListeners]) l(copy);
      });
    },
    send(message) {
      for (const f of fragment(message, mtu)) pile.notify(f);
    },
    setInfo(value) {
      info = new Uint8Array(value);
    },
    onDisconnect(listener) {
      pileDisconnect.add(listener);
      return () => pileDisconnect.delete(listener);
    },
    disconnect: drop,
  };
  return { link, pile };
}
