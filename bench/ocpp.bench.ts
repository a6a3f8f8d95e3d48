/**
 * OCPP figures:
 * - `progressWithEventPerS`: durable session progress records that each queue an Updated event
 *   in the outbox in the same transaction (the store's OCPP hook; WAL, synchronous=FULL), and
 *   `outboxEnqueuePerS`, the outbox's own durable appends (one transaction each);
 * - `deliver1000Ms`: from the CSMS coming up to the 1,000th TransactionEvent acknowledged, for an
 *   outbox of 1,000 events (one CALL in flight, one durable seqNo claim and ack per event), against
 *   an in-process ocpp-rpc server on loopback;
 * - `daemonRssKiB`: the built daemon's resident set (sim plant, BLE off) without and with OCPP on
 *   and linked to that server, and the difference.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { RPCServer } from "ocpp-rpc";
import { requestControl } from "../src/control/index.js";
import { createSessionHook } from "../src/daemon/ocpp-hook.js";
import { simPileConfig } from "../src/daemon/sim-config.js";
import { OcppConfigSchema } from "../src/ocpp/config.js";
import { OcppLink } from "../src/ocpp/link.js";
import { enqueueInTx, migrateOutbox, Outbox } from "../src/ocpp/outbox.js";
import type { OcppPilePort } from "../src/ocpp/port.js";
import { OcppStation } from "../src/ocpp/station.js";
import { writeKeyFile } from "../src/sdk/keyfile.js";
import { openStore } from "../src/store/index.js";
import { median, opsPerSecond } from "./util.js";

export const name = "ocpp";
const PILED = fileURLToPath(new URL("../src/daemon/piled.js", import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  return await new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => resolve(typeof a === "object" && a !== null ? a.port : 0));
    });
  });
}

/** A loopback CSMS accepting everything; `txEvents` counts TransactionEvents. */
async function csms(port: number) {
  const server = new RPCServer({ protocols: ["ocpp2.0.1"], strictMode: false });
  const seen = { txEvents: 0 };
  server.on("client", (c) => {
    c.handle("BootNotification", () => ({
      currentTime: new Date().toISOString(),
      interval: 300,
      status: "Accepted",
    }));
    c.handle("StatusNotification", () => ({}));
    c.handle("Heartbeat", () => ({ currentTime: new Date().toISOString() }));
    c.handle("NotifyEvent", () => ({}));
    c.handle("SecurityEventNotification", () => ({}));
    c.handle("TransactionEvent", () => {
      seen.txEvents++;
      return {};
    });
  });
  await server.listen(port, "127.0.0.1");
  return { seen, close: () => server.close({ force: true, awaitPending: false }) };
}

function durableWrites(dir: string) {
  const path = join(dir, "bench.db");
  const store = openStore(path, {
    onSessionRecord: createSessionHook({
      stateDir: dir,
      meterValueIntervalS: 1,
      outboxMax: 10_000_000,
      gateway: { id: "piled", serial: "B", version: "0" },
      meter: { vendor: "v", model: "m", serial: "s" },
      chargePointId: "b",
    }),
  });
  const codeId = new Uint8Array(randomBytes(16));
  const sessionId = new Uint8Array(randomBytes(16));
  store.sessions.beginWithCode(
    { codeId, keyId: 1, issuedAt: 1n, expiresAt: 2n ** 40n, deviceId: "VD" },
    { sessionId, codeId, keyId: 1, deviceId: "VD", carrier: "vehicle", startedAt: 1_000, meterStartWh: 0 },
  );
  let at = 1_000;
  let wh = 0;
  const progressWithEventPerS = opsPerSecond(() => {
    at += 1_000;
    wh += 5;
    store.sessions.progress(sessionId, { energyWh: wh, lastMeterWh: wh, at });
  }, 3);
  store.close();
  const db = new Database(join(dir, "raw.db"));
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  migrateOutbox(db);
  const ev = { transactionId: "t", eventType: "Updated" as const, payload: { eventType: "Updated" } };
  const outboxEnqueuePerS = opsPerSecond(() => enqueueInTx(db, [ev], 10_000_000), 3);
  db.close();
  return { progressWithEventPerS, outboxEnqueuePerS };
}

const port0: OcppPilePort = {
  identity: () => ({ vendorName: "piled", model: "bench", serialNumber: "B", firmwareVersion: "0" }),
  snapshot: () => ({
    state: "AVAILABLE",
    faults: [],
    contactorMayBeLive: false,
    meterWh: 0,
    session: undefined,
  }),
  subscribe: () => () => {},
  stopSession: async () => "no-session",
  setAvailable: async () => "accepted",
  reset: async () => "accepted",
};

async function deliver1000(dir: string): Promise<number> {
  const path = join(dir, `deliver-${randomBytes(4).toString("hex")}.db`);
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  migrateOutbox(db);
  const evs = [];
  for (let i = 0; i < 1000; i++) {
    const tx = `tx-${Math.floor(i / 50)}`;
    const eventType = i % 50 === 0 ? "Started" : i % 50 === 49 ? "Ended" : "Updated";
    evs.push({
      transactionId: tx,
      eventType: eventType as "Started" | "Updated" | "Ended",
      payload: {
        eventType,
        timestamp: new Date().toISOString(),
        triggerReason:
          eventType === "Started"
            ? "Authorized"
            : eventType === "Ended"
              ? "StopAuthorized"
              : "MeterValuePeriodic",
        transactionInfo: { transactionId: tx },
      },
    });
  }
  enqueueInTx(db, evs, 10_000);
  const port = await freePort();
  const cfg = OcppConfigSchema.parse({
    enabled: true,
    url: `ws://127.0.0.1:${port}`,
    identity: "bench",
    securityProfile: 1,
    passwordFile: "/nonexistent",
    backoffInitialMs: 20,
    backoffMaxMs: 50,
  });
  const station = new OcppStation(cfg, port0, new Outbox(db, 10_000), new OcppLink({ cfg, password: null }));
  station.start();
  await sleep(200); // dialling a closed port
  const t0 = performance.now();
  const server = await csms(port);
  while (server.seen.txEvents < 1000) await sleep(2);
  const ms = performance.now() - t0;
  await station.stop();
  await server.close();
  db.close();
  return Math.round(ms);
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) : Number.NaN;
}

async function daemonRss(dir: string, ocpp: boolean, csmsPort: number): Promise<number> {
  const d = join(dir, `pile-${ocpp ? "on" : "off"}-${randomBytes(3).toString("hex")}`);
  mkdirSync(join(d, "keys"), { recursive: true, mode: 0o700 });
  const w = writeKeyFile(join(d, "keys", "key-1.json"), 1, new Uint8Array(randomBytes(32)));
  if (!w.ok) throw w.error;
  writeFileSync(join(d, "pw"), "bench-password\n", { mode: 0o600 });
  const config = {
    ...simPileConfig({ pileId: "BENCH-1", dir: d }),
    logLevel: "warn",
    ...(ocpp
      ? {
          ocpp: {
            enabled: true,
            url: `ws://127.0.0.1:${csmsPort}`,
            identity: "bench",
            securityProfile: 1,
            passwordFile: join(d, "pw"),
          },
        }
      : {}),
  };
  writeFileSync(join(d, "piled.json"), JSON.stringify(config));
  const child: ChildProcess = spawn(process.execPath, [PILED, "--config", join(d, "piled.json")], {
    stdio: "ignore",
  });
  try {
    const by = Date.now() + 30_000;
    for (;;) {
      const r = await requestControl(join(d, "control.sock"), ocpp ? "ocpp" : "status", [], 2000);
      if (r.ok && r.value.ok && (!ocpp || (r.value.result as { boot: string }).boot === "Accepted")) break;
      if (Date.now() > by) throw new Error("bench daemon did not come up");
      await sleep(100);
    }
    await sleep(3000);
    return rssKiB(child.pid!);
  } finally {
    const gone = new Promise((r) => child.once("exit", r));
    process.kill(child.pid!, "SIGTERM");
    await gone;
  }
}

export async function run(): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), "piled-bench-ocpp-"));
  try {
    const writes = durableWrites(dir);
    const deliveries: number[] = [];
    for (let i = 0; i < 3; i++) deliveries.push(await deliver1000(dir));
    const port = await freePort();
    const server = await csms(port);
    const off: number[] = [];
    const on: number[] = [];
    for (let i = 0; i < 3; i++) {
      off.push(await daemonRss(dir, false, port));
      on.push(await daemonRss(dir, true, port));
    }
    await server.close();
    return {
      ...writes,
      deliver1000Ms: median(deliveries),
      daemonRssKiB: { ocppOff: median(off), ocppOn: median(on), extra: median(on) - median(off) },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
