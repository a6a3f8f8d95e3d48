export * from "./bytes.js";
export * from "./code.js";
export * from "./fragments.js";
export * from "./messages.js";
export * from "./proofs.js";
export * from "./reasons.js";
export type { CryptoSuite } from "./suite.js";
