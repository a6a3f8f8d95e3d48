/** The carrier transport contract lives with the protocol (the BLE adapters implement it too). */
export type { CarrierLink, CarrierTransport, Unsubscribe } from "../protocol/transport.js";
