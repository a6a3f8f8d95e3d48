/**
 * The latched faults, read from the store file without writing to it (the stop step runs after
 * the daemon, beside nothing, and must not migrate, create or alter the file). Never throws:
 * a file that cannot be read says so, and the caller assumes the worst.
 */
import { toStoreError } from "./errors.js";
import { openStore } from "./store.js";

export type LatchedFaultsRead = { readable: true; codes: string[] } | { readable: false; detail: string };

export function readLatchedFaults(path: string, opts: { busyTimeoutMs?: number } = {}): LatchedFaultsRead {
  let store: ReturnType<typeof openStore> | undefined;
  try {
    store = openStore(path, { readonly: true, busyTimeoutMs: opts.busyTimeoutMs ?? 2000 });
    const codes = [...new Set(store.faults.active().map((f) => f.code))];
    return { readable: true, codes };
  } catch (e) {
    const err = toStoreError(e, "latched faults");
    return { readable: false, detail: `${err.code}: ${err.message}` };
  } finally {
    try {
      store?.close();
    } catch {
      // nothing held
    }
  }
}
