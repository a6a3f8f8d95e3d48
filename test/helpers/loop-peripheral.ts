/**
 * A BLE peripheral stand-in for the runtime tiers: a carrier's link writes straight into the
 * daemon's handlers and its notifications come back on the next turn of the loop.
 */
import type { BleConnection, BleHandlers, BlePeripheral } from "../../src/hw/ports.js";
import type { CarrierLink } from "../../src/protocol/transport.js";

export class LoopPeripheral implements BlePeripheral {
  handlers: BleHandlers | undefined;
  /** Called with the connection's id and the fragment at each notification the daemon makes, when set. */
  onNotify: ((connId: string, f: Uint8Array) => void) | undefined;
  /** Called with the connection's id and the fragment right before a carrier's write is handed to the daemon. */
  onWrite: ((connId: string, f: Uint8Array) => void) | undefined;
  async start(h: BleHandlers): Promise<void> {
    this.handlers = h;
    h.radio("up");
  }
  async stop(): Promise<void> {}
  connect(mtu = 247): CarrierLink & { id: string } {
    const h = this.handlers!;
    const listeners = new Set<(f: Uint8Array) => void>();
    const conn: BleConnection = {
      id: `loop-${Math.random().toString(16).slice(2)}`,
      mtu,
      notify: (f) => {
        this.onNotify?.(conn.id, f);
        setImmediate(() => {
          for (const l of listeners) l(f);
        });
      },
      disconnect: () => setImmediate(() => h.disconnect(conn)),
    };
    h.connect(conn);
    return {
      id: conn.id,
      mtu,
      write: async (f) => {
        this.onWrite?.(conn.id, f);
        h.write(conn, f);
      },
      onNotify: (l) => {
        listeners.add(l);
        return () => listeners.delete(l);
      },
      readInfo: async () => h.info(),
      onDisconnect: () => () => {},
      close: async () => h.disconnect(conn),
    };
  }
}
