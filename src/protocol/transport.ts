/**
 * What a carrier needs from a radio: one connection to one pile. Implemented over
 * noble (src/hw/ble/central.ts) on Node, and by an in-memory loop in tests; a phone app brings
 * its own. Every value is one fragment (PROTOCOL.md §3, header byte included).
 */
export type Unsubscribe = () => void;

export interface CarrierLink {
  /** Negotiated ATT MTU. */
  readonly mtu: number;
  /** One Control write, with response. */
  write(fragment: Uint8Array): Promise<void>;
  /** Event notifications, one fragment each. */
  onNotify(listener: (fragment: Uint8Array) => void): Unsubscribe;
  /** Reads the Info characteristic (long read where needed). */
  readInfo(): Promise<Uint8Array>;
  onDisconnect(listener: () => void): Unsubscribe;
  close(): Promise<void>;
}

export interface CarrierTransport {
  /** Finds the pile advertising PILE-<pileId> (confirming by Info where the name is cut), connects, subscribes. */
  connect(pileId: string, opts: { timeoutMs: number }): Promise<CarrierLink>;
  close(): Promise<void>;
}
