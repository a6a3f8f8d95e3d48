/**
 * The write worker: its own better-sqlite3 connection to the pile's WAL database, on its own
 * thread, so an fsync that stalls on a slow SD card stalls this thread and not the control loop.
 * Each request is answered with { id, ok, code?, error? } once the write is committed.
 */
import { parentPort, workerData } from "node:worker_threads";
import { StoreError } from "./errors.js";
import { applyStoreOp, type StoreOp } from "./ops.js";
import { openStore } from "./store.js";
import type { SessionRecordHook } from "./types.js";
import type { WriterHook } from "./writer.js";

interface Request {
  id: number;
  op?: StoreOp;
  close?: true;
}

const port = parentPort;
if (port) {
  const { path, hook } = workerData as { path: string; hook?: WriterHook };
  let store: ReturnType<typeof openStore> | undefined;
  let openError: string | undefined;
  try {
    const onSessionRecord =
      hook === undefined
        ? undefined
        : (
            (await import(/* layers: plug-in point (the daemon names the hook module) */ hook.module)) as {
              createSessionHook: (o: unknown) => SessionRecordHook;
            }
          ).createSessionHook(hook.options);
    store = openStore(path, onSessionRecord === undefined ? {} : { onSessionRecord });
  } catch (e) {
    openError = e instanceof Error ? e.message : String(e);
  }
  port.on("message", (m: Request) => {
    if (m.close) {
      store?.close();
      port.postMessage({ id: m.id, ok: true });
      port.close();
      return;
    }
    if (!store || !m.op) {
      port.postMessage({ id: m.id, ok: false, error: openError ?? "no operation" });
      return;
    }
    try {
      applyStoreOp(store, m.op);
      port.postMessage({ id: m.id, ok: true });
    } catch (e) {
      const code = e instanceof StoreError ? e.code : "IO";
      port.postMessage({ id: m.id, ok: false, code, error: e instanceof Error ? e.message : String(e) });
    }
  });
}
