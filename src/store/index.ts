/** The durable store: see store.ts. */
export { StoreError, type StoreErrorCode } from "./errors.js";
export { type LatchedFaultsRead, readLatchedFaults } from "./latched.js";
export { applyStoreOp, type StoreOp, type StoreOpName, type StoreWriter } from "./ops.js";
export { APPLICATION_ID, CURRENT_VERSION, MIGRATIONS, type Migration } from "./schema.js";
export { CACHE_KIB, openStore, type Recovered, type RecoverOptions, recoverStore } from "./store.js";
export type * from "./types.js";
export { openStoreWriter } from "./writer.js";
