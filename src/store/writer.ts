/**
 * The control loop's side of the write worker (write-worker.ts): writes are posted, in order, to
 * a thread with its own connection to the same WAL database, and each resolves when the worker
 * acknowledges it committed. Nothing here waits for the disk.
 */
import { Worker } from "node:worker_threads";
import { StoreError, type StoreErrorCode } from "./errors.js";
import type { StoreOp, StoreWriter } from "./ops.js";

interface Reply {
  id: number;
  ok: boolean;
  code?: StoreErrorCode;
  error?: string;
}

/**
 * The store's session hook in the worker (StoreOptions.onSessionRecord): a function cannot cross
 * to the thread, so the worker imports `module` and calls its `createSessionHook(options)`.
 */
export interface WriterHook {
  module: string;
  options: unknown;
}

/** Starts the worker on the store file at `path` (a real file: an in-memory store has no second connection). */
export function openStoreWriter(path: string, hook?: WriterHook): StoreWriter {
  if (typeof path !== "string" || path.length === 0 || path === ":memory:")
    throw new StoreError("INVALID", "the write worker needs the path of a store file");
  const worker = new Worker(new URL("./write-worker.js", import.meta.url), { workerData: { path, hook } });
  const waiting = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  let next = 1;
  let closed: Promise<void> | undefined;
  const failAll = (why: string) => {
    for (const w of waiting.values()) w.reject(new StoreError("IO", why));
    waiting.clear();
  };
  worker.on("message", (r: Reply) => {
    const w = waiting.get(r.id);
    if (!w) return;
    waiting.delete(r.id);
    if (r.ok) w.resolve();
    else w.reject(new StoreError(r.code ?? "IO", r.error ?? "write failed"));
  });
  worker.on("error", (e) => failAll(`write worker: ${e.message}`));
  worker.on("exit", () => failAll("write worker exited"));
  const post = (m: { op?: StoreOp; close?: true }): Promise<void> =>
    new Promise((resolve, reject) => {
      const id = next++;
      waiting.set(id, { resolve, reject });
      worker.postMessage({ id, ...m });
    });
  return {
    submit: (o) =>
      closed ? Promise.reject(new StoreError("CLOSED", "the write worker is closed")) : post({ op: o }),
    pending: () => waiting.size,
    close: () => {
      closed ??= post({ close: true })
        .catch(() => undefined)
        .then(() => worker.terminate())
        .then(() => undefined);
      return closed;
    },
  };
}
