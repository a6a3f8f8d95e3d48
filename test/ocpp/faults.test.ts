/**
 * Faults and tamper told to the CSMS by the built daemon, against the Python CSMS (every frame
 * also checked against the OCA schemas with jsonschema):
 * - a contactor that welds during a session (the simulated plant's weld, `pilectl sim weld`):
 *   WELD latched, the lock kept engaged, NotifyEvent PowerContactor.Problem, status Faulted; the
 *   technician's clear gives the cleared NotifyEvent and Available;
 * - a burst of bad proofs over the emulated BLE radio (7 connections × 3 failed proofs, more than
 *   20 within 60 s): one SecurityEventNotification TamperDetectionActivated; no code or proof in it.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { OcppView } from "../../src/daemon/ocpp-glue.js";
import { NobleCentral } from "../../src/hw/ble/central.js";
import { encodeMessage, fragment, toHex } from "../../src/protocol/index.js";
import type { CarrierLink } from "../../src/protocol/transport.js";
import { Csms, freePort, requireVenv } from "../peers/ocpp/csms-proc.js";
import { OcppPile } from "./ocpp-pile.js";
import type { TxEvent } from "./tx-check.js";

const IDENT = "pile-faults";
const PASSWORD = "faults-tamper-password";
let csms: Csms;
let pile: OcppPile;

interface EventData {
  eventId: number;
  actualValue: string;
  cleared?: boolean;
  techCode: string;
  techInfo?: string;
  trigger: string;
  component: { name: string; evse?: { id: number } };
  variable: { name: string };
}
const events = () => csms.callsIn("NotifyEvent").flatMap((n) => n.eventData as EventData[]);

before(async () => {
  requireVenv();
  const port = await freePort();
  csms = new Csms(port, IDENT, PASSWORD);
  await csms.start();
  pile = new OcppPile({ csmsPort: port, identity: IDENT, password: PASSWORD });
  await pile.init();
  await pile.spawn();
  await csms.until(
    () => csms.callsIn("StatusNotification").some((s) => s.connectorStatus === "Available"),
    20_000,
    "StatusNotification Available",
  );
});

after(async () => {
  await pile?.stop();
  await csms?.stop();
  for (const r of csms?.records.filter((x) => x.dir === "in") ?? [])
    assert.deepEqual(r.schemaErrors ?? [], [], `schema errors in ${JSON.stringify(r.frame).slice(0, 300)}`);
});

test("a contactor welded in a session: WELD latched, NotifyEvent PowerContactor.Problem, Faulted; cleared by the technician: cleared event, Available", async () => {
  const car = await pile.carrier("car");
  const s = await pile.startSession(car);
  await pile.control("sim", ["weld"]);
  await car.stop(() => {}).catch(() => undefined);
  await car.close();
  const st = await pile.waitStatus((x) => x.faults.includes("WELD"));
  assert.equal(st.lock, "engaged", "never release a live plug");
  await csms.until(() => events().some((e) => e.techCode === "WELD"), 10_000, "NotifyEvent WELD");
  const weld = events().find((e) => e.techCode === "WELD")!;
  assert.equal(weld.component.name, "PowerContactor");
  assert.deepEqual(weld.component.evse, { id: 1 });
  assert.equal(weld.variable.name, "Problem");
  assert.equal(weld.actualValue, "true");
  assert.equal(weld.trigger, "Alerting");
  assert.equal(weld.cleared, undefined);
  assert.match(weld.techInfo ?? "", /weld/);
  await csms.until(
    () => csms.callsIn("StatusNotification").some((x) => x.connectorStatus === "Faulted"),
    10_000,
    "StatusNotification Faulted",
  );
  await csms.until(
    () =>
      (csms.callsIn("TransactionEvent") as unknown as TxEvent[]).some(
        (e) => e.transactionInfo.transactionId === s.sessionId && e.eventType === "Ended",
      ),
    20_000,
    "the session's Ended event",
  );
  // The technician: the contacts free again, then the fault cleared.
  await pile.control("sim", ["clear"]);
  await pile.waitStatus((x) => x.contactor === "open");
  await pile.control("clear-fault", ["all"]);
  await pile.waitStatus((x) => x.faults.length === 0 && x.state === "AVAILABLE");
  await csms.until(
    () => events().some((e) => e.techCode === "WELD" && e.cleared === true),
    10_000,
    "NotifyEvent WELD cleared",
  );
  const cleared = events().find((e) => e.techCode === "WELD" && e.cleared === true)!;
  assert.equal(cleared.actualValue, "false");
  assert.equal(cleared.component.name, "PowerContactor");
  assert.ok(cleared.eventId > weld.eventId);
  await csms.until(
    () => csms.callsIn("StatusNotification").at(-1)?.connectorStatus === "Available",
    10_000,
    "Available again",
  );
  const v = (await pile.control("ocpp")) as OcppView;
  assert.equal(v.faultsReported, 1);
});

/** HELLO then a PRESENT with a wrong proof, `n` times on one connection. */
async function badProofs(link: CarrierLink, code: { keyId: number; codeId: Uint8Array; code: Uint8Array }) {
  const send = async (m: Parameters<typeof encodeMessage>[0]) => {
    for (const f of fragment(encodeMessage(m), link.mtu)) await link.write(f);
  };
  for (let k = 0; k < 3; k++) {
    await send({
      type: "HELLO",
      version: 1,
      keyId: code.keyId,
      codeId: code.codeId,
      clientNonce: new Uint8Array(16).fill(k + 1),
    });
    await send({ type: "PRESENT", deviceProof: new Uint8Array(32), code: code.code });
  }
}

test("a burst of bad proofs over BLE (21 within 60 s): one SecurityEventNotification TamperDetectionActivated, no secret in it", async () => {
  const issued = pile.issuer.issueFor({
    deviceId: "LSVAU2180N2183294",
    pileId: pile.pileId,
    validForS: 600,
    vehicle: { inAcquisitionState: true },
  });
  assert.ok(issued.ok);
  const code = issued.value;
  const bridge = await pile.bridge();
  const central = new NobleCentral({ controller: { kind: "uart", path: bridge.path } });
  try {
    for (let i = 1; i <= 7; i++) {
      const link = await central.connect(pile.pileId, { timeoutMs: 15_000 });
      await badProofs(link, code);
      await pile.waitStatus((x) => x.security.recentFailedProofs >= 3 * i);
      await link.close();
    }
  } finally {
    await central.close();
  }
  const st = await pile.waitStatus((x) => x.security.events === 1);
  assert.equal(st.security.alarm, true);
  assert.equal(st.state, "AVAILABLE", "the pile serves everyone else as before");
  await csms.until(
    () => csms.callsIn("SecurityEventNotification").length > 0,
    10_000,
    "SecurityEventNotification",
  );
  const [sec, ...more] = csms.callsIn("SecurityEventNotification");
  assert.equal(more.length, 0, "one event per burst");
  assert.equal(sec!.type, "TamperDetectionActivated");
  assert.equal(sec!.techInfo, "21 failed code proofs within 60 s (more than 20)");
  assert.equal(new Date(sec!.timestamp as string).getTime(), st.security.lastEventAt);
  const v = (await pile.control("ocpp")) as OcppView;
  assert.equal(v.securityEventsReported, 1);
  const seen = JSON.stringify(csms.records).toLowerCase();
  for (const secret of [code.code, code.verifySecret])
    assert.ok(!seen.includes(toHex(secret).toLowerCase()), "no code or V reaches the CSMS");
  assert.ok(!seen.includes(code.codeText.toLowerCase()));
});
