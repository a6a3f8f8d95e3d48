/**
 * The built daemon with OCPP on, against the Python CSMS (mobilityhouse `ocpp`, every frame also
 * checked against the OCA schemas with jsonschema): boot and status, a BLE-unlocked session with
 * meter values, RequestStopTransaction, ChangeAvailability, Get/SetVariables, `pilectl ocpp` and
 * the sealed OCMF records, Reset between sessions; then offline: the CSMS down for a whole session
 * with the daemon SIGKILLed and restarted in its middle, and every event delivered once it is back.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { OcmfView, SessionView } from "../../src/control/index.js";
import type { OcppView } from "../../src/daemon/ocpp-glue.js";
import { Csms, freePort, requireVenv } from "../peers/ocpp/csms-proc.js";
import { OcppPile } from "./ocpp-pile.js";
import { checkTransactions, meterWh, type TxEvent } from "./tx-check.js";

const IDENT = "pile-e2e";
const PASSWORD = "daemon-ocpp-password-1";
let port: number;
let csms: Csms;
let pile: OcppPile;
const all: Csms[] = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const txOf = (c: Csms, id: string) =>
  c
    .callsIn("TransactionEvent")
    .filter(
      (p) => (p.transactionInfo as { transactionId: string }).transactionId === id,
    ) as unknown as TxEvent[];

async function newCsms(): Promise<Csms> {
  const c = new Csms(port, IDENT, PASSWORD);
  await c.start();
  all.push(c);
  return c;
}

before(async () => {
  requireVenv();
  port = await freePort();
  csms = await newCsms();
  pile = new OcppPile({ csmsPort: port, identity: IDENT, password: PASSWORD });
  await pile.init();
  await pile.spawn();
});

const idle = () => pile.waitStatus((x) => x.state === "AVAILABLE" && x.session === null);

after(async () => {
  await pile?.stop();
  for (const c of all) await c.stop().catch(() => undefined);
  // The second validator: every frame any CSMS of this file saw is schema-valid.
  for (const c of all)
    for (const r of c.records.filter((x) => x.dir === "in"))
      assert.deepEqual(r.schemaErrors ?? [], [], `schema errors in ${JSON.stringify(r.frame).slice(0, 300)}`);
});

test("boot, status Available, a BLE session start to end with meter values; the Ended energy is the record's", async () => {
  await csms.until(() => csms.callsIn("BootNotification").length > 0, 20_000, "BootNotification");
  await csms.until(
    () => csms.callsIn("StatusNotification").some((s) => s.connectorStatus === "Available"),
    20_000,
    "StatusNotification Available",
  );
  const car = await pile.carrier("car");
  const s = await pile.startSession(car);
  await csms.until(
    () => txOf(csms, s.sessionId).filter((e) => e.eventType === "Updated").length >= 2,
    30_000,
    "two Updated events",
  );
  assert.equal((await car.stop(() => {})).kind, "stopped");
  await car.close();
  await csms.until(() => txOf(csms, s.sessionId).some((e) => e.eventType === "Ended"), 20_000, "Ended");
  await idle();
  const ev = checkTransactions(csms.callsIn("TransactionEvent")).events.get(s.sessionId)!;
  assert.equal(ev[0]!.eventType, "Started");
  assert.deepEqual(ev[0]!.idToken, { idToken: s.codeId, type: "Local" });
  const end = ev.at(-1)!;
  assert.equal(end.transactionInfo.stoppedReason, "Local");
  assert.ok(ev.every((e) => e.offline === false));
  const [rec] = (await pile.sessions(1)) as SessionView[];
  assert.equal(rec!.id, s.sessionId);
  assert.equal(meterWh(end)! - meterWh(ev[0]!)!, rec!.energyWh, "Ended energy = the session record's");
  assert.ok(rec!.energyWh > 0);
  assert.ok(csms.callsIn("StatusNotification").some((x) => x.connectorStatus === "Occupied"));
});

test("RequestStopTransaction ends the session as a technician stop would; its Ended says Remote", async () => {
  const car = await pile.carrier("car");
  const s = await pile.startSession(car);
  await csms.until(() => txOf(csms, s.sessionId).length > 0, 20_000, "Started");
  const r = await csms.call("RequestStopTransaction", { transactionId: s.sessionId });
  assert.deepEqual(r.result, { status: "Accepted" });
  await csms.until(() => txOf(csms, s.sessionId).some((e) => e.eventType === "Ended"), 20_000, "Ended");
  const end = txOf(csms, s.sessionId).at(-1)!;
  assert.equal(end.transactionInfo.stoppedReason, "Remote");
  assert.equal(end.triggerReason, "RemoteStop");
  await car.close();
  const [rec] = await pile.sessions(1);
  assert.equal(rec!.reason, "TECHNICIAN");
  await idle();
  const wrong = await csms.call("RequestStopTransaction", { transactionId: "no-such-transaction" });
  assert.deepEqual(wrong.result, { status: "Rejected" });
});

test("ChangeAvailability Inoperative → UNAVAILABLE, Operative → back; Get/SetVariables", async () => {
  const r = await csms.call("ChangeAvailability", { operationalStatus: "Inoperative" });
  assert.deepEqual(r.result, { status: "Accepted" });
  await pile.waitStatus((s) => s.state === "UNAVAILABLE");
  await csms.until(
    () => csms.callsIn("StatusNotification").some((s) => s.connectorStatus === "Unavailable"),
    10_000,
    "Unavailable",
  );
  const back = await csms.call("ChangeAvailability", { operationalStatus: "Operative" });
  assert.deepEqual(back.result, { status: "Accepted" });
  await pile.waitStatus((s) => s.state === "AVAILABLE");
  const set = await csms.call("SetVariables", {
    setVariableData: [
      {
        attributeValue: "120",
        component: { name: "OCPPCommCtrlr" },
        variable: { name: "HeartbeatInterval" },
      },
    ],
  });
  assert.equal(
    (set.result as { setVariableResult: { attributeStatus: string }[] }).setVariableResult[0]!
      .attributeStatus,
    "Accepted",
  );
  const get = await csms.call("GetVariables", {
    getVariableData: [{ component: { name: "OCPPCommCtrlr" }, variable: { name: "HeartbeatInterval" } }],
  });
  assert.equal(
    (get.result as { getVariableResult: { attributeValue: string }[] }).getVariableResult[0]!.attributeValue,
    "120",
  );
});

test("pilectl ocpp shows the link, outbox and key; the OCMF records of the sessions verify with that key", async () => {
  const v = (await pile.control("ocpp")) as OcppView;
  assert.equal(v.link, "open");
  assert.equal(v.boot, "Accepted");
  assert.equal(v.outbox.depth, 0);
  assert.match(v.publicKey, /^[0-9A-F]{100,200}$/);
  const recs = (await pile.control("ocmf", ["5"])) as OcmfView[];
  assert.equal(recs.length, 2);
  assert.deepEqual(
    recs.map((r) => r.page),
    [2, 1],
  );
  const { createPublicKey, verify } = await import("node:crypto");
  const pub = createPublicKey({ key: Buffer.from(v.publicKey, "hex"), format: "der", type: "spki" });
  for (const r of recs) {
    const [, payload, sig] = r.record.split("|");
    assert.ok(
      verify(
        "sha256",
        Buffer.from(payload!),
        pub,
        Buffer.from((JSON.parse(sig!) as { SD: string }).SD, "hex"),
      ),
    );
  }
  // and the Ended events carried the same records
  const ended = csms
    .callsIn("TransactionEvent")
    .filter((e) => e.eventType === "Ended") as unknown as TxEvent[];
  const carried = ended.map((e) =>
    Buffer.from(
      (e.meterValue![0]!.sampledValue[0] as unknown as { signedMeterValue: { signedMeterData: string } })
        .signedMeterValue.signedMeterData,
      "base64",
    ).toString(),
  );
  assert.deepEqual(carried.sort(), recs.map((r) => r.record).sort());
});

test("a flood of bad CSMS input: each frame answered with its RPC error and counted; nothing moves", async () => {
  const v0 = (await pile.control("ocpp")) as OcppView;
  const boots = csms.callsIn("BootNotification").length;
  const tx0 = csms.callsIn("TransactionEvent").length;
  const N = 60;
  for (let i = 0; i < N; i++) {
    const inv = await csms.raw(
      JSON.stringify([2, `f-inv-${i}`, "ChangeAvailability", { operationalStatus: "Sideways" }]),
    );
    assert.equal((inv.result as unknown[])[0], 4);
    const stop = await csms.raw(
      JSON.stringify([2, `f-stop-${i}`, "RequestStopTransaction", { transactionId: 7 }]),
    );
    assert.equal((stop.result as unknown[])[0], 4);
    const unk = await csms.raw(JSON.stringify([2, `f-unk-${i}`, "OpenTheContactor", {}]));
    assert.equal((unk.result as unknown[])[2], "NotImplemented");
    await csms.raw("{not json");
  }
  const s = await pile.status();
  assert.equal(s.state, "AVAILABLE");
  assert.equal(s.session, null);
  const v = (await pile.control("ocpp")) as OcppView;
  assert.equal(v.counters.schemaRejects - v0.counters.schemaRejects, 2 * N);
  assert.equal(v.counters.unknownActions - v0.counters.unknownActions, N);
  assert.ok(v.counters.badFrames - v0.counters.badFrames >= 1);
  assert.equal(v.link, "open");
  assert.equal(csms.callsIn("BootNotification").length, boots, "the link stayed up");
  assert.equal(csms.callsIn("TransactionEvent").length, tx0);
  assert.equal(v.outbox.depth, 0);
});

test("a latched fault (emergency stop) is told to the CSMS: NotifyEvent with the fault code, status Faulted", async () => {
  await pile.control("sim", ["estop-press"]);
  await pile.waitStatus((s) => s.faults.length > 0);
  await csms.until(() => csms.callsIn("NotifyEvent").length > 0, 10_000, "NotifyEvent");
  const ev = csms.callsIn("NotifyEvent")[0]!.eventData as { techCode: string; variable: { name: string } }[];
  assert.equal(ev[0]!.variable.name, "Problem");
  assert.match(ev[0]!.techCode, /EMERGENCY|ESTOP|E_STOP/i);
  await csms.until(
    () => csms.callsIn("StatusNotification").some((x) => x.connectorStatus === "Faulted"),
    10_000,
    "Faulted",
  );
  await pile.control("sim", ["estop-release"]);
  await pile.control("clear-fault", ["all"]);
  await idle();
});

test("Reset OnIdle between sessions: the daemon stops cleanly; started again it boots anew", async () => {
  const boots = csms.callsIn("BootNotification").length;
  const r = await csms.call("Reset", { type: "OnIdle" });
  assert.deepEqual(r.result, { status: "Accepted" });
  const ex = await pile.exited();
  assert.equal(ex.code, 0, "an orderly stop (systemd's Restart=always starts it again)");
  await pile.spawn();
  await csms.until(() => csms.callsIn("BootNotification").length > boots, 20_000, "a new BootNotification");
});

test("offline: CSMS down for a whole session, the daemon SIGKILLed and restarted in it; back, every event arrives once, in order, offline", async () => {
  await csms.stop();
  // the pile can only queue an event as offline once it has seen its link close
  await pile.waitOcpp((v) => v.link === "closed", "the link closed");
  const car = await pile.carrier("car");
  const s = await pile.startSession(car);
  await sleep(2500); // meter values queue while offline
  await pile.kill("SIGKILL");
  await car.close();
  await pile.spawn(); // the session is closed as interrupted at this start
  const car2 = await pile.carrier("car2");
  const b = await pile.startSession(car2);
  await sleep(1500);
  assert.equal((await car2.stop(() => {})).kind, "stopped");
  await car2.close();
  await idle();
  const v = (await pile.control("ocpp")) as OcppView;
  assert.equal(v.link, "closed");
  assert.ok(v.outbox.depth >= 4, `outbox depth ${v.outbox.depth}`);
  csms = await newCsms();
  await csms.until(
    () => [s, b].every((x) => txOf(csms, x.sessionId).some((e) => e.eventType === "Ended")),
    30_000,
    "both Ended events",
  );
  const rep = checkTransactions(csms.callsIn("TransactionEvent"));
  const recs = await pile.sessions(5);
  for (const x of [s, b]) {
    const ev = rep.events.get(x.sessionId)!;
    assert.ok(
      ev.every((e) => e.offline === true),
      `${x.sessionId}: all offline`,
    );
    const rec = recs.find((r) => r.id === x.sessionId)!;
    assert.equal(
      meterWh(ev.at(-1)!)! - meterWh(ev[0]!)!,
      rec.energyWh,
      "Ended energy = the session record's",
    );
  }
  assert.equal(rep.events.get(s.sessionId)!.at(-1)!.transactionInfo.stoppedReason, "PowerLoss");
  // The last ack lands just after the CSMS recorded the event.
  const end = Date.now() + 5000;
  while (((await pile.control("ocpp")) as OcppView).outbox.depth !== 0 && Date.now() < end) await sleep(100);
  assert.equal(((await pile.control("ocpp")) as OcppView).outbox.depth, 0);
});
