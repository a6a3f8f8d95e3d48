/**
 * Interoperability tier: the station against a central system nobody here wrote, the Python
 * `ocpp` package (mobilityhouse) on loopback, which records every frame and checks each against
 * the OCA JSON schemas with `jsonschema` (a second validator, beside ocpp-rpc's strict mode).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import Database from "better-sqlite3";
import { OcppConfigSchema } from "../../src/ocpp/config.js";
import { linkOptions, OcppLink } from "../../src/ocpp/link.js";
import { loadOrCreateStationKey, sealSession, signedMeterValue } from "../../src/ocpp/ocmf.js";
import { Outbox } from "../../src/ocpp/outbox.js";
import { OcppStation } from "../../src/ocpp/station.js";
import { Csms, freePort, requireVenv } from "../peers/ocpp/csms-proc.js";
import { FakePile } from "./fake-pile.js";

const IDENT = "pile-1";
const PASSWORD = "s3cret-station-password";
let dir: string;
let port: number;
let csms: Csms;
let pile: FakePile;
let station: OcppStation;
let db: Database.Database;
/** Every CSMS of the file (the offline test starts a second one): all their records are checked. */
const all: Csms[] = [];

const until = async (ok: () => boolean, what: string, ms = 15_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

const txEvents = (c: Csms, txId: string) =>
  c
    .callsIn("TransactionEvent")
    .filter((p) => (p.transactionInfo as { transactionId: string }).transactionId === txId);

before(async () => {
  requireVenv();
  dir = mkdtempSync(join(tmpdir(), "piled-ocpp-"));
  writeFileSync(join(dir, "password"), `${PASSWORD}\n`, { mode: 0o600 });
  port = await freePort();
  const cfg = OcppConfigSchema.parse({
    enabled: true,
    url: `ws://127.0.0.1:${port}`,
    identity: IDENT,
    securityProfile: 1,
    passwordFile: join(dir, "password"),
    backoffInitialMs: 50,
    backoffMaxMs: 400,
    bootRetryS: 1,
    meterValueIntervalS: 10,
    maxFrameBytes: 64 * 1024,
    callTimeoutMs: 5_000,
  });
  const lo = linkOptions(cfg);
  assert.ok(lo.ok);
  const key = loadOrCreateStationKey(dir);
  assert.ok(key.ok);
  db = new Database(join(dir, "ocpp.db"));
  pile = new FakePile();
  let pagination = 0;
  station = new OcppStation(cfg, pile, new Outbox(db, 100), new OcppLink(lo.value), (e) => {
    const rec = sealSession(key.value, {
      pagination: ++pagination,
      gateway: { id: "piled", serial: "SN-1", version: "0.1.0" },
      meter: { vendor: "test", model: "m", serial: "M-1" },
      tokenId: e.tokenId,
      chargePointId: IDENT,
      start: { at: e.startedAt, wh: e.meterStartWh ?? 0 },
      stop: { at: e.at, wh: e.meterStopWh ?? 0 },
    });
    assert.ok(rec.ok);
    const smv = signedMeterValue(rec.value, key.value);
    assert.ok(smv.ok);
    return smv.value;
  });
  csms = new Csms(port, IDENT, PASSWORD, { status: "Pending", interval: 1 });
  all.push(csms);
});

after(async () => {
  await station?.stop();
  await csms?.stop();
  db?.close();
  rmSync(dir, { recursive: true, force: true });
});

test("the first connect is retried until the CSMS is up; Pending is honoured, then Accepted", async () => {
  station.start();
  await until(() => station.link.counters.connectFailures >= 2, "two failed connects");
  await csms.start();
  await csms.until(() => csms.callsIn("BootNotification").length >= 2, 10_000, "a second BootNotification");
  assert.equal(station.boot, "Pending");
  assert.equal(csms.callsIn("StatusNotification").length, 0, "nothing but boot while Pending");
  await csms.set({ bootStatus: "Accepted", interval: 1 });
  await csms.until(() => csms.callsIn("Heartbeat").length >= 1, 10_000, "a Heartbeat at the CSMS interval");
  assert.equal(station.boot, "Accepted");
  const st = csms.callsIn("StatusNotification");
  assert.equal(st[0]?.connectorStatus, "Available");
  const boot = csms.callsIn("BootNotification")[0] as { chargingStation: { model: string } };
  assert.equal(boot.chargingStation.model, "test pile");
});

test("a session Started / Updated / Ended goes through the outbox with seqNo 0.. and its OCMF record", async () => {
  const t0 = new Date("2026-12-01T10:00:00Z");
  const at = (s: number) => new Date(t0.getTime() + s * 1000);
  pile.view = { ...pile.view, state: "CHARGING", session: { sessionId: "aa01" } };
  pile.emit({ type: "sessionStarted", sessionId: "aa01", tokenId: "code-7f3e", at: t0, meterStartWh: 1000 });
  pile.emit({
    type: "sessionUpdated",
    sessionId: "aa01",
    at: at(10),
    meterWh: 1100,
    energyWh: 100,
    powerW: 3600,
  });
  // Within the meter value interval: not sent.
  pile.emit({
    type: "sessionUpdated",
    sessionId: "aa01",
    at: at(12),
    meterWh: 1102,
    energyWh: 102,
    powerW: 3600,
  });
  pile.emit({
    type: "sessionUpdated",
    sessionId: "aa01",
    at: at(20),
    meterWh: 1200,
    energyWh: 200,
    powerW: 3600,
  });
  pile.view = { ...pile.view, state: "AVAILABLE", session: undefined };
  pile.emit({
    type: "sessionEnded",
    sessionId: "aa01",
    tokenId: "code-7f3e",
    at: at(30),
    startedAt: t0,
    stopReason: "CARRIER_STOP",
    meterStartWh: 1000,
    meterStopWh: 1250,
    energyWh: 250,
  });
  await csms.until(() => txEvents(csms, "aa01").length >= 4, 10_000, "four TransactionEvents");
  const ev = txEvents(csms, "aa01");
  assert.deepEqual(
    ev.map((e) => [e.eventType, e.seqNo, e.offline]),
    [
      ["Started", 0, false],
      ["Updated", 1, false],
      ["Updated", 2, false],
      ["Ended", 3, false],
    ],
  );
  assert.deepEqual(ev[0]?.idToken, { idToken: "code-7f3e", type: "Local" });
  const end = ev[3] as {
    transactionInfo: { stoppedReason: string };
    meterValue: { sampledValue: Record<string, unknown>[] }[];
  };
  assert.equal(end.transactionInfo.stoppedReason, "Local");
  const sv = end.meterValue[0]?.sampledValue[0] as {
    value: number;
    signedMeterValue: { signedMeterData: string };
  };
  assert.equal(sv.value, 1250);
  const ocmf = Buffer.from(sv.signedMeterValue.signedMeterData, "base64").toString();
  assert.match(ocmf, /^OCMF\|\{"FV":"1.0".*"RV":1,"RI".*"RV":1.25,.*\}\|\{"SA":"ECDSA-secp256r1-SHA256"/);
  await until(() => station.outbox.stats().depth === 0, "the last answer acknowledged");
});

test("RequestStopTransaction ends the running session as a remote stop; a wrong id is rejected", async () => {
  pile.view = { ...pile.view, state: "CHARGING", session: { sessionId: "bb02" } };
  pile.emit({
    type: "sessionStarted",
    sessionId: "bb02",
    tokenId: "code-1",
    at: new Date(),
    meterStartWh: 2000,
  });
  const wrong = await csms.call("RequestStopTransaction", { transactionId: "nope" });
  assert.deepEqual(wrong.result, { status: "Rejected" });
  const r = await csms.call("RequestStopTransaction", { transactionId: "bb02" });
  assert.deepEqual(r.result, { status: "Accepted" });
  assert.ok(pile.commands.includes("stop bb02"));
  pile.view = { ...pile.view, state: "AVAILABLE", session: undefined };
  pile.emit({
    type: "sessionEnded",
    sessionId: "bb02",
    tokenId: "code-1",
    at: new Date(),
    startedAt: new Date(),
    stopReason: "TECHNICIAN",
    meterStartWh: 2000,
    meterStopWh: 2010,
    energyWh: 10,
  });
  await csms.until(() => txEvents(csms, "bb02").length >= 2, 10_000, "Ended of bb02");
  const end = txEvents(csms, "bb02")[1] as {
    triggerReason: string;
    transactionInfo: { stoppedReason: string };
  };
  assert.equal(end.triggerReason, "RemoteStop");
  assert.equal(end.transactionInfo.stoppedReason, "Remote");
});

test("ChangeAvailability, Reset, Get/SetVariables, TriggerMessage, refused starts and unlocks", async () => {
  const ca = await csms.call("ChangeAvailability", { operationalStatus: "Inoperative" });
  assert.deepEqual(ca.result, { status: "Accepted" });
  assert.ok(pile.commands.includes("available false"));
  const reset = await csms.call("Reset", { type: "OnIdle" });
  assert.deepEqual(reset.result, { status: "Accepted" });
  assert.ok(pile.commands.includes("reset OnIdle"));
  const comp = { name: "OCPPCommCtrlr" };
  const set = await csms.call("SetVariables", {
    setVariableData: [
      { component: comp, variable: { name: "HeartbeatInterval" }, attributeValue: "7" },
      { component: comp, variable: { name: "OfflineThreshold" }, attributeValue: "-3" },
      {
        component: { name: "AuthCtrlr" },
        variable: { name: "AuthorizeRemoteStart" },
        attributeValue: "true",
      },
      { component: comp, variable: { name: "NoSuchThing" }, attributeValue: "1" },
    ],
  });
  const statuses = (set.result as { setVariableResult: { attributeStatus: string }[] }).setVariableResult.map(
    (x) => x.attributeStatus,
  );
  assert.deepEqual(statuses, ["Accepted", "Rejected", "Rejected", "UnknownVariable"]);
  const get = await csms.call("GetVariables", {
    getVariableData: [
      { component: comp, variable: { name: "HeartbeatInterval" } },
      { component: comp, variable: { name: "OfflineThreshold" } },
      { component: { name: "Nope" }, variable: { name: "X" } },
    ],
  });
  const got = (get.result as { getVariableResult: { attributeStatus: string; attributeValue?: string }[] })
    .getVariableResult;
  assert.deepEqual(
    got.map((g) => [g.attributeStatus, g.attributeValue]),
    [
      ["Accepted", "7"],
      ["Accepted", "60"],
      ["UnknownComponent", undefined],
    ],
  );
  const start = await csms.call("RequestStartTransaction", {
    idToken: { idToken: "x", type: "Central" },
    remoteStartId: 1,
  });
  assert.equal((start.result as { status: string }).status, "Rejected");
  pile.view = { ...pile.view, contactorMayBeLive: true };
  const unlock = await csms.call("UnlockConnector", { evseId: 1, connectorId: 1 });
  assert.equal((unlock.result as { status: string }).status, "UnlockFailed");
  pile.view = { ...pile.view, contactorMayBeLive: false };
  const before = csms.callsIn("StatusNotification").length;
  const trig = await csms.call("TriggerMessage", { requestedMessage: "StatusNotification" });
  assert.deepEqual(trig.result, { status: "Accepted" });
  await csms.until(
    () => csms.callsIn("StatusNotification").length > before,
    5_000,
    "triggered StatusNotification",
  );
});

test("bad CSMS input is answered with the right RPC error, counted, and moves nothing", async () => {
  const cmds = pile.commands.length;
  const c0 = { ...station.link.counters };
  const invalid = await csms.raw(
    JSON.stringify([2, "bad-1", "ChangeAvailability", { operationalStatus: "Sideways" }]),
  );
  const inv = invalid.result as unknown[];
  assert.equal(inv[0], 4);
  assert.match(String(inv[2]), /ConstraintViolation|FormatViolation/);
  const missing = await csms.raw(JSON.stringify([2, "bad-2", "Reset", {}]));
  assert.match(String((missing.result as unknown[])[2]), /OccurrenceConstraintViolation/);
  const unknown = await csms.raw(JSON.stringify([2, "bad-3", "FlyToTheMoon", {}]));
  assert.equal((unknown.result as unknown[])[2], "NotImplemented");
  await csms.raw("this is not json");
  await until(() => station.link.counters.badFrames > c0.badFrames, "bad frame counted");
  assert.equal(pile.commands.length, cmds, "no command reached the pile");
  assert.ok(station.link.counters.schemaRejects >= c0.schemaRejects + 2);
  assert.equal(station.link.counters.unknownActions, c0.unknownActions + 1);
  // A frame above maxFrameBytes closes the link (1009); the station reconnects and boots again.
  const boots = csms.callsIn("BootNotification").length;
  await csms.raw(JSON.stringify([2, "huge", "Heartbeat", { pad: "@PAD@" }]), 1, 200_000);
  await until(() => station.link.counters.oversizeFrames === c0.oversizeFrames + 1, "oversize frame counted");
  await csms.until(() => csms.callsIn("BootNotification").length > boots, 10_000, "boot after the reconnect");
  assert.equal(pile.commands.length, cmds);
});

test("offline: events queued while the CSMS is down arrive once, in order, offline=true, seqNo contiguous", async () => {
  await until(() => station.boot === "Accepted", "accepted");
  await csms.stop();
  await until(() => station.status().link === "closed", "link closed");
  const t0 = new Date();
  pile.view = { ...pile.view, state: "CHARGING", session: { sessionId: "cc03" } };
  pile.emit({ type: "sessionStarted", sessionId: "cc03", tokenId: "code-9", at: t0, meterStartWh: 5000 });
  for (let i = 1; i <= 5; i++)
    pile.emit({
      type: "sessionUpdated",
      sessionId: "cc03",
      at: new Date(t0.getTime() + i * 10_000),
      meterWh: 5000 + i * 10,
      energyWh: i * 10,
      powerW: 1000,
    });
  pile.view = { ...pile.view, state: "AVAILABLE", session: undefined };
  pile.emit({
    type: "sessionEnded",
    sessionId: "cc03",
    tokenId: "code-9",
    at: new Date(t0.getTime() + 60_000),
    startedAt: t0,
    stopReason: "PLUG_REMOVED",
    meterStartWh: 5000,
    meterStopWh: 5050,
    energyWh: 50,
  });
  assert.equal(station.outbox.stats().depth, 7);
  csms = new Csms(port, IDENT, PASSWORD, { status: "Accepted", interval: 1 });
  all.push(csms);
  await csms.start();
  await csms.until(() => txEvents(csms, "cc03").length >= 7, 15_000, "the queued events");
  await until(() => station.outbox.stats().depth === 0, "the outbox emptied");
  const ev = txEvents(csms, "cc03");
  assert.deepEqual(
    ev.map((e) => [e.eventType, e.seqNo, e.offline]),
    [["Started", 0, true], ...[1, 2, 3, 4, 5].map((n) => ["Updated", n, true]), ["Ended", 6, true]],
  );
  const end = ev[6] as {
    meterValue: { sampledValue: { value: number }[] }[];
    transactionInfo: { stoppedReason: string };
  };
  assert.equal(end.meterValue[0]?.sampledValue[0]?.value, 5050);
  assert.equal(end.transactionInfo.stoppedReason, "EVDisconnected");
});

test("every frame the station sent passed the second (jsonschema) validator", () => {
  const records = all.flatMap((c) => c.records.filter((r) => r.dir === "in"));
  const bad = records.filter((r) => r.schemaErrors !== null && r.schemaErrors.length > 0);
  assert.deepEqual(bad, []);
  // Calls and results were checked (null only for frames the check cannot place).
  assert.ok(records.filter((r) => r.schemaErrors !== null).length >= 30, `${records.length} frames`);
});
