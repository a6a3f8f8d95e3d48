/** The durable store: see store.ts. */
export { StoreError, type StoreErrorCode } from "./errors.js";
export { type LatchedFaultsRead, readLatchedFaults } from "./latched.js";
export { APPLICATION_ID, CURRENT_VERSION, MIGRATIONS, type Migration } from "./schema.js";
export { openStore, type Recovered, type RecoverOptions, recoverStore } from "./store.js";
export type * from "./types.js";
