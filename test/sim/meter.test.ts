import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeField, METER_MAPS } from "../../src/hw/meter/maps.js";
import { crcOk, readRequest, withCrc } from "../../src/hw/meter/rtu.js";
import { SimMeter } from "../../src/sim/meter/sim-meter.js";
import { RequestFramer } from "../../src/sim/meter/slave.js";
import { ManualClock } from "../../src/sim/plant.js";

/** The project's manual clock; wall and monotonic time start equal and move together. */
const manualClock = (start = 0) => new ManualClock({ now: start, monotonic: start });

function regsOf(reply: Buffer): number[] {
  const out: number[] = [];
  for (let i = 0; i < reply[2]! / 2; i++) out.push(reply.readUInt16BE(3 + 2 * i));
  return out;
}

test("energy integrates the power over the clock; export does not count as import", () => {
  const clock = manualClock();
  const sim = new SimMeter({ model: "sdm630", clock, energyWh: 100 });
  sim.setPower(3600);
  clock.advance(1000); // 1 s at 3.6 kW = 1 Wh
  assert.ok(Math.abs(sim.values().energyImportWh - 101) < 1e-9);
  sim.setPower(-5000);
  clock.advance(60_000);
  assert.ok(Math.abs(sim.values().energyImportWh - 101) < 1e-9);
  sim.setPower(7200);
  clock.advance(30 * 60_000); // half an hour at 7.2 kW
  assert.ok(Math.abs(sim.values().energyImportWh - 3701) < 1e-6);
});

test("answers FC04 reads with its register image; the image decodes back to its values", () => {
  const clock = manualClock();
  const sim = new SimMeter({ model: "em340", clock, energyWh: 123_400, voltageV: 231.2 });
  sim.setPower(-2500);
  const [reply] = sim.receive(readRequest(1, 4, 0x28, 2));
  assert.ok(reply && crcOk(reply));
  assert.deepEqual(decodeField(METER_MAPS.em340.fields.powerW, regsOf(reply)), { ok: true, value: -2500 });
  const [v] = sim.receive(readRequest(1, 4, 0, 2));
  assert.deepEqual(decodeField(METER_MAPS.em340.fields.voltageV, regsOf(v!)), { ok: true, value: 231.2 });
});

test("requests split anywhere and wrapped in noise are framed; other units get no answer", () => {
  const sim = new SimMeter({ model: "sdm120", clock: manualClock() });
  const req = readRequest(1, 4, 0, 2);
  const stream = Buffer.concat([Buffer.from([0x55, 0x01, 0x04]), req, readRequest(9, 4, 0, 2), req]);
  const replies: Buffer[] = [];
  for (const b of stream) replies.push(...sim.receive(Buffer.from([b])));
  assert.equal(replies.length, 2);
  assert.equal(sim.counters.requests, 3);
  assert.equal(sim.counters.unanswered, 1);
  assert.ok(sim.counters.rxDiscarded >= 3);
});

test("a corrupted request is never answered", () => {
  const sim = new SimMeter({ model: "sdm630", clock: manualClock() });
  const bad = readRequest(1, 4, 0, 2);
  bad[7] = bad[7]! ^ 0x01;
  assert.deepEqual(sim.receive(bad), []);
  assert.equal(sim.counters.requests, 0);
});

test("exceptions: unknown function 1, address outside the meter's space 2, a forced exception code", () => {
  const sim = new SimMeter({ model: "abb-b23", clock: manualClock() });
  const [fc6] = sim.receive(withCrc(Buffer.from([1, 6, 0, 0, 0, 1])));
  assert.equal(fc6!.toString("hex").slice(0, 6), "018601");
  const [addr] = sim.receive(readRequest(1, 3, 0x0000, 2));
  assert.equal(addr!.toString("hex").slice(0, 6), "018302");
  const [fc4] = sim.receive(readRequest(1, 4, 0x5b00, 2)); // the B23 answers FC03 only
  assert.equal(fc4!.toString("hex").slice(0, 6), "018402");
  sim.setFaults({ exception: 6 });
  const [busy] = sim.receive(readRequest(1, 3, 0x5b00, 2));
  assert.equal(busy!.toString("hex").slice(0, 6), "018306");
  assert.ok(crcOk(busy!));
});

test("fault switches: silent, CRC-corrupting, not-available energy", () => {
  const sim = new SimMeter({ model: "abb-b23", clock: manualClock(), energyWh: 10 });
  const req = readRequest(1, 3, 0x5000, 4);
  sim.setFaults({ silent: true });
  assert.deepEqual(sim.receive(req), []);
  sim.setFaults({ silent: false, corruptCrc: true });
  const [bad] = sim.receive(req);
  assert.ok(bad && !crcOk(bad));
  sim.setFaults({ corruptCrc: false, energyNotAvailable: true });
  const [na] = sim.receive(req);
  assert.deepEqual(regsOf(na!), [0xffff, 0xffff, 0xffff, 0xffff]);
  sim.clearFaults();
  const [ok] = sim.receive(req);
  assert.deepEqual(decodeField(METER_MAPS["abb-b23"].fields.energyImportWh, regsOf(ok!)), {
    ok: true,
    value: 10,
  });
});

test("the request framer skips garbage and never grows without bound", () => {
  const f = new RequestFramer();
  assert.deepEqual(f.push(Buffer.alloc(5000, 0xaa)), []);
  assert.ok(f.discarded >= 5000 - 512);
  assert.equal(f.push(readRequest(3, 4, 1, 1)).length, 1);
});

test("hostile switches: shifted answers each request with the reply to the one before; energy offset and absurd values", () => {
  const clock = manualClock();
  const sim = new SimMeter({ model: "sdm630", clock, energyWh: 5000, voltageV: 230 });
  sim.setPower(7360);
  const power = sim.receive(readRequest(1, 4, 0x34, 2))[0]!;
  const energy = sim.receive(readRequest(1, 4, 0x48, 2))[0]!;
  sim.setFaults({ shifted: true });
  assert.deepEqual(sim.receive(readRequest(1, 4, 0x34, 2)), [], "the first request gets nothing");
  assert.deepEqual(
    sim.receive(readRequest(1, 4, 0x48, 2)),
    [power],
    "the energy request gets the power reply",
  );
  assert.deepEqual(sim.receive(readRequest(1, 4, 0x34, 2)), [energy]);
  sim.clearFaults();
  const f = METER_MAPS.sdm630.fields;
  sim.setFaults({ energyOffsetWh: -1000, absurd: { voltageV: 0, powerW: 1e7 } });
  const e = sim.receive(readRequest(1, 4, 0x48, 2))[0]!;
  assert.deepEqual(decodeField(f.energyImportWh, regsOf(e)), { ok: true, value: 4000 });
  const v = sim.receive(readRequest(1, 4, 0, 2))[0]!;
  assert.deepEqual(decodeField(f.voltageV, regsOf(v)), { ok: true, value: 0 });
  const p = sim.receive(readRequest(1, 4, 0x34, 2))[0]!;
  assert.deepEqual(decodeField(f.powerW, regsOf(p)), { ok: true, value: 1e7 });
  sim.clearFaults();
  assert.equal(sim.values().energyImportWh, 5000, "the faults never touch the true energy");
});
