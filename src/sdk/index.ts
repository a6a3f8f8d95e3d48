/** The SDK: platform issuer and carrier client, transport-agnostic, crypto through node-forge. */
export * from "./carrier.js";
export * from "./errors.js";
export * from "./forge-suite.js";
export * from "./issuer.js";
export * from "./memory-link.js";
export type { CarrierLink, CarrierTransport, Unsubscribe } from "./transport.js";
