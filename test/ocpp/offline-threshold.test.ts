/**
 * OfflineThreshold (OCPPCommCtrlr), set by the CSMS with SetVariables: back after an offline
 * period longer than it, the station reports its connector's status again; after a shorter one
 * it reports it only if the status changed meanwhile. Against the Python CSMS, stopped and
 * started again on the same port for each outage. The sync point of each case is an event queued
 * while offline: the station reports the status (or not) before it delivers its outbox.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import Database from "better-sqlite3";
import { OcppConfigSchema } from "../../src/ocpp/config.js";
import { linkOptions, OcppLink } from "../../src/ocpp/link.js";
import { Outbox } from "../../src/ocpp/outbox.js";
import { OcppStation } from "../../src/ocpp/station.js";
import { Csms, freePort, requireVenv } from "../peers/ocpp/csms-proc.js";
import { FakePile } from "./fake-pile.js";

const IDENT = "pile-offline";
const PASSWORD = "offline-threshold-password";
let dir: string;
let port: number;
let csms: Csms;
let pile: FakePile;
let station: OcppStation;
let db: Database.Database;
const all: Csms[] = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const until = async (ok: () => boolean, what: string, ms = 15_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
};

async function newCsms(): Promise<Csms> {
  const c = new Csms(port, IDENT, PASSWORD, { status: "Accepted", interval: 300 });
  all.push(c);
  await c.start();
  return c;
}

/** The CSMS's frames, in order, as action names (calls from the station only). */
const actions = (c: Csms) =>
  c.records
    .filter((r) => r.dir === "in" && Array.isArray(r.frame) && r.frame[0] === 2)
    .map((r) => (r.frame as unknown[])[2] as string);

async function setThreshold(seconds: number): Promise<void> {
  const r = await csms.call("SetVariables", {
    setVariableData: [
      {
        attributeValue: String(seconds),
        component: { name: "OCPPCommCtrlr" },
        variable: { name: "OfflineThreshold" },
      },
    ],
  });
  const res = r.result as { setVariableResult: { attributeStatus: string }[] };
  assert.equal(res.setVariableResult[0]?.attributeStatus, "Accepted");
}

/** Stops the CSMS, stays offline for `ms`, queues a Started event of `tx`, starts a new CSMS. */
async function outage(ms: number, tx: string, whileOffline: () => void = () => {}): Promise<Csms> {
  await csms.stop();
  await until(() => station.status().link === "closed", "link closed");
  await sleep(ms);
  whileOffline();
  pile.emit({
    type: "sessionStarted",
    sessionId: tx,
    tokenId: `code-${tx}`,
    at: new Date(),
    meterStartWh: 1000,
  });
  csms = await newCsms();
  await csms.until(
    () =>
      csms
        .callsIn("TransactionEvent")
        .some((e) => (e.transactionInfo as { transactionId: string }).transactionId === tx),
    15_000,
    `the queued event of ${tx}`,
  );
  return csms;
}

before(async () => {
  requireVenv();
  dir = mkdtempSync(join(tmpdir(), "piled-ocpp-offline-"));
  writeFileSync(join(dir, "password"), `${PASSWORD}\n`, { mode: 0o600 });
  port = await freePort();
  const cfg = OcppConfigSchema.parse({
    enabled: true,
    url: `ws://127.0.0.1:${port}`,
    identity: IDENT,
    securityProfile: 1,
    passwordFile: join(dir, "password"),
    backoffInitialMs: 50,
    backoffMaxMs: 200,
    bootRetryS: 1,
    callTimeoutMs: 5_000,
  });
  const lo = linkOptions(cfg);
  assert.ok(lo.ok);
  db = new Database(join(dir, "ocpp.db"));
  pile = new FakePile();
  station = new OcppStation(cfg, pile, new Outbox(db, 100), new OcppLink(lo.value));
  csms = await newCsms();
  station.start();
  await csms.until(() => csms.callsIn("StatusNotification").length === 1, 15_000, "the first status");
});

after(async () => {
  await station?.stop();
  for (const c of all) await c.stop().catch(() => undefined);
  db?.close();
  rmSync(dir, { recursive: true, force: true });
  for (const c of all)
    for (const r of c.records.filter((x) => x.dir === "in"))
      assert.deepEqual(r.schemaErrors ?? [], [], `schema errors in ${JSON.stringify(r.frame).slice(0, 300)}`);
});

test("back after an offline period longer than OfflineThreshold: StatusNotification before the queued events", async () => {
  await setThreshold(1);
  const c = await outage(1500, "aa01");
  const seen = actions(c);
  assert.deepEqual(seen.slice(0, 3), ["BootNotification", "StatusNotification", "TransactionEvent"]);
  assert.equal(c.callsIn("StatusNotification")[0]?.connectorStatus, "Available");
});

test("back after a shorter offline period with the status unchanged: no StatusNotification", async () => {
  await setThreshold(3600);
  const c = await outage(0, "aa02");
  assert.deepEqual(actions(c).slice(0, 2), ["BootNotification", "TransactionEvent"]);
  assert.equal(c.callsIn("StatusNotification").length, 0);
});

test("back after a shorter offline period in which the status changed: the new status is sent", async () => {
  await setThreshold(3600);
  const c = await outage(0, "aa03", () => {
    pile.view = { ...pile.view, state: "UNAVAILABLE" };
  });
  assert.deepEqual(actions(c).slice(0, 3), ["BootNotification", "StatusNotification", "TransactionEvent"]);
  assert.equal(c.callsIn("StatusNotification")[0]?.connectorStatus, "Unavailable");
});
