/**
 * Random CSMS outages and daemon kills (SIGKILL, mid-session or idle) with sessions in between:
 * once the CSMS is back for good, every session's TransactionEvents have arrived, none lost,
 * duplicated or reordered (tx-check.ts; a re-send of the same seqNo after a kill mid-send is
 * de-duplicated and must be identical), each Ended carrying the session record's energy.
 *
 * Short here (OCPP_SOAK_ROUNDS, default 6); the long form is
 *   OCPP_SOAK_ROUNDS=80 node scripts/run-tests.mjs ocpp/soak
 * with the seed printed (OCPP_SOAK_SEED replays a run).
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import type { OcppView } from "../../src/daemon/ocpp-glue.js";
import type { SimCarrier } from "../../src/sim/carriers.js";
import { Csms, freePort, requireVenv } from "../peers/ocpp/csms-proc.js";
import { OcppPile } from "./ocpp-pile.js";
import { checkTransactions, meterWh } from "./tx-check.js";

const ROUNDS = Number(process.env.OCPP_SOAK_ROUNDS ?? 6);
const SEED = Number(process.env.OCPP_SOAK_SEED ?? Math.floor(Math.random() * 2 ** 31));
const IDENT = "pile-soak";
const PASSWORD = "soak-password-0001";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const all: Csms[] = [];
let pile: OcppPile | undefined;
after(async () => {
  await pile?.stop();
  for (const c of all) await c.stop().catch(() => undefined);
});

test(`${ROUNDS} random CSMS outages and daemon kills: zero lost, duplicated or reordered transaction events (seed ${SEED})`, async () => {
  requireVenv();
  console.log(`ocpp soak: seed ${SEED}, ${ROUNDS} rounds`);
  const rnd = prng(SEED);
  const port = await freePort();
  let csms: Csms | undefined;
  const up = async () => {
    csms = new Csms(port, IDENT, PASSWORD);
    await csms.start();
    all.push(csms);
  };
  const down = async () => {
    await csms?.stop();
    csms = undefined;
  };
  await up();
  const p = new OcppPile({ csmsPort: port, identity: IDENT, password: PASSWORD });
  pile = p;
  await p.init();
  await p.spawn();
  let car: SimCarrier | undefined;
  let n = 0;
  const tally = { outages: 0, kills: 0, sessions: 0, carrierStops: 0 };
  for (let round = 0; round < ROUNDS; round++) {
    const s = await p.status();
    if (s.session === null && s.state === "AVAILABLE" && rnd() < 0.7) {
      car = await p.carrier(`car-${n++}`);
      await p.startSession(car);
      tally.sessions++;
    }
    await sleep(Math.floor(rnd() * 1500));
    if (rnd() < 0.5) {
      if (csms === undefined) await up();
      else {
        await down();
        tally.outages++;
      }
    } else {
      await p.kill("SIGKILL");
      tally.kills++;
      await car?.close();
      car = undefined;
      await sleep(Math.floor(rnd() * 300));
      await p.spawn();
    }
    if (car !== undefined && rnd() < 0.4) {
      const st = await car.stop(() => {});
      assert.equal(st.kind, "stopped");
      await car.close();
      car = undefined;
      tally.carrierStops++;
      await p.waitStatus((x) => x.state === "AVAILABLE" && x.session === null);
    }
  }
  if (car !== undefined) {
    await car.stop(() => {});
    await car.close();
  }
  await p.waitStatus((x) => x.state === "AVAILABLE" && x.session === null);
  if (csms === undefined) await up();
  const end = Date.now() + 60_000;
  while (((await p.control("ocpp")) as OcppView).outbox.depth > 0 && Date.now() < end) await sleep(200);
  const v = (await p.control("ocpp")) as OcppView;
  assert.equal(v.outbox.depth, 0, "the outbox drained");
  assert.equal(v.outbox.dead, 0);
  assert.equal(v.outbox.dropped, 0);
  console.log(`ocpp soak: ${JSON.stringify(tally)}`);

  const calls = all.flatMap((c) => c.callsIn("TransactionEvent"));
  const rep = checkTransactions(calls);
  const sessions = await p.sessions(1000);
  assert.equal(rep.events.size, sessions.length, "one transaction per session, each reported");
  for (const s of sessions) {
    const ev = rep.events.get(s.id);
    assert.ok(ev, `session ${s.id} reported`);
    assert.equal(ev.at(-1)!.eventType, "Ended", `session ${s.id} ended`);
    assert.equal(
      meterWh(ev.at(-1)!)! - meterWh(ev[0]!)!,
      s.energyWh,
      `session ${s.id}: Ended energy = the record's`,
    );
  }
  console.log(
    `ocpp soak: ${calls.length} events delivered, ${rep.resends} identical re-sends after a kill mid-send`,
  );
  for (const c of all)
    for (const r of c.records.filter((x) => x.dir === "in"))
      assert.deepEqual(r.schemaErrors ?? [], [], `schema errors in ${JSON.stringify(r.frame).slice(0, 300)}`);
});
