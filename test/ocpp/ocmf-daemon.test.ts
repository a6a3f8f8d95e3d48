/**
 * OCMF records of a real daemon run, checked by the independent verifiers: two BLE sessions on
 * the built daemon (OCPP on, the Python CSMS), sealed at their end; the records and the station
 * key taken with `pilectl sessions --ocmf` and `pilectl ocpp --json`; each verified by pyocmf and
 * by `openssl dgst -verify`, paginated T1, T2, their readings the session records' meter registers; a tampered copy
 * (one kWh more at the end) fails both.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import type { OcppView } from "../../src/daemon/ocpp-glue.js";
import { Csms, freePort, requireVenv } from "../peers/ocpp/csms-proc.js";
import { opensslVerify, pyocmf } from "./ocmf-check.js";
import { OcppPile } from "./ocpp-pile.js";

const PILECTL = fileURLToPath(new URL("../../src/cli/pilectl.js", import.meta.url));
const IDENT = "pile-ocmf";
const PASSWORD = "ocmf-daemon-password";
let csms: Csms;
let pile: OcppPile;

function pilectl(...args: string[]): string {
  const r = spawnSync(process.execPath, [PILECTL, ...args, "--socket", join(pile.dir, "control.sock")], {
    encoding: "utf8",
  });
  assert.equal(r.status, 0, `pilectl ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

interface Reading {
  TX: string;
  RV: number;
  RU: string;
}

before(async () => {
  requireVenv();
  const port = await freePort();
  csms = new Csms(port, IDENT, PASSWORD);
  await csms.start();
  pile = new OcppPile({ csmsPort: port, identity: IDENT, password: PASSWORD });
  await pile.init();
  await pile.spawn();
});

after(async () => {
  await pile?.stop();
  await csms?.stop();
});

test("two sessions of the daemon: their OCMF records verify with pyocmf and openssl, T1 then T2, with the sessions' meter readings; a tampered one fails both", async () => {
  for (const name of ["car", "car2"]) {
    const car = await pile.carrier(name);
    await pile.startSession(car);
    assert.equal((await car.stop(() => {})).kind, "stopped");
    await car.close();
    await pile.waitStatus((s) => s.state === "AVAILABLE" && s.session === null);
  }
  const records = pilectl("sessions", "5", "--ocmf").trim().split("\n").reverse();
  assert.equal(records.length, 2);
  assert.ok(records.every((r) => r.startsWith("OCMF|")));
  const key = (JSON.parse(pilectl("ocpp", "--json")) as { result: OcppView }).result.publicKey;
  assert.match(key, /^[0-9A-F]{100,200}$/);
  const sessions = (await pile.sessions(2)).reverse();

  const verdicts = pyocmf(records, key);
  assert.deepEqual(verdicts, [
    { valid: true, pagination: "T1" },
    { valid: true, pagination: "T2" },
  ]);
  for (const [i, r] of records.entries()) {
    assert.equal(opensslVerify(pile.dir, r, key), true, `openssl on record ${i + 1}`);
    const rd = (JSON.parse(r.split("|")[1]!) as { RD: Reading[] }).RD;
    assert.deepEqual(
      rd.map((x) => [x.TX, x.RU]),
      [
        ["B", "kWh"],
        ["L", "kWh"],
      ],
      "begin, then end by the carrier's STOP",
    );
    // The readings are the session record's meter registers at Wh resolution.
    const rec = sessions[i]!;
    assert.equal(Math.round(rd[0]!.RV * 1000), Math.round(rec.meterStartWh!), "begin = the meter start");
    assert.equal(Math.round(rd[1]!.RV * 1000), Math.round(rec.meterStopWh!), "end = the meter stop");
    assert.ok(rec.energyWh > 0);
  }

  const rv = (JSON.parse(records[1]!.split("|")[1]!) as { RD: Reading[] }).RD[1]!.RV;
  const tampered = records[1]!.replace(`"RV":${rv}`, `"RV":${rv + 1}`);
  assert.notEqual(tampered, records[1]);
  const bad = pyocmf([tampered], key)[0]!;
  assert.ok(bad.valid !== true, `pyocmf accepted a tampered record: ${JSON.stringify(bad)}`);
  assert.equal(opensslVerify(pile.dir, tampered, key), false, "openssl accepted a tampered record");
});
