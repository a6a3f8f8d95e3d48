/**
 * The link-level fault counters the adapters keep reach a person: gathered from whichever
 * adapter exposes them, logged when they move, and shown on the status page.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { executeCommand, formatResult } from "../../src/control/index.js";
import { createLogger } from "../../src/daemon/log.js";
import { type LinkCounters, LinkWatch, linkCountersOf } from "../../src/daemon/runtime/link-counters.js";
import type { BlePeripheral, DigitalInput, Meter } from "../../src/hw/ports.js";
import { fakePileControl } from "./fake-pile-control.js";

const bus = {
  rxCrcErrors: 0,
  timeouts: 0,
  badFrames: 0,
  rxDiscarded: 0,
  retries: 0,
  opens: 1,
};
const stats = { notifyDropped: 0, handlerErrors: 0, radioDowns: 0, radioUps: 1 };
const input = (readErrors: number) => ({ name: "x", readErrors }) as unknown as DigitalInput;

test("the Modbus bus's, the BLE peripheral's and the GPIO inputs' fault counters in one map", () => {
  const meter = { bus: { counters: () => ({ ...bus }) } } as unknown as Meter;
  const ble = { stats: () => ({ ...stats }) } as unknown as BlePeripheral;
  const read = linkCountersOf({ meter, ble, inputs: [input(2), undefined, input(1)] });
  assert.deepEqual(read(), {
    "modbus.crcErrors": 0,
    "modbus.timeouts": 0,
    "modbus.badFrames": 0,
    "modbus.discardedBytes": 0,
    "modbus.retries": 0,
    "modbus.reopens": 0,
    "ble.notifyDropped": 0,
    "ble.handlerErrors": 0,
    "ble.radioDowns": 0,
    "gpio.readErrors": 3,
  });
  bus.rxCrcErrors = 4;
  bus.opens = 3;
  bus.rxDiscarded = 17;
  stats.notifyDropped = 5;
  const now = read();
  assert.equal(now["modbus.crcErrors"], 4);
  assert.equal(now["modbus.reopens"], 2);
  assert.equal(now["modbus.discardedBytes"], 17);
  assert.equal(now["ble.notifyDropped"], 5);
  // adapters that keep no counters (the simulators, a fake meter) add none
  assert.deepEqual(linkCountersOf({ meter: {} as Meter, inputs: [] })(), {});
});

test("the log says which link counters moved, and by how much; nothing when they stand still", () => {
  const lines: string[] = [];
  const log = createLogger({ level: "info", destination: { write: (l: string) => lines.push(l) } });
  const c: LinkCounters = { "modbus.timeouts": 0, "ble.radioDowns": 0 };
  const watch = new LinkWatch(() => ({ ...c }), log);
  watch.check();
  assert.equal(lines.length, 0, "nothing moved yet");
  c["modbus.timeouts"] = 3;
  watch.check();
  assert.equal(lines.length, 1);
  const j = JSON.parse(lines[0]!) as { msg: string; moved: LinkCounters; totals: LinkCounters };
  assert.equal(j.msg, "link fault counters moved");
  assert.deepEqual(j.moved, { "modbus.timeouts": 3 });
  assert.deepEqual(j.totals, { "modbus.timeouts": 3, "ble.radioDowns": 0 });
  watch.check();
  assert.equal(lines.length, 1, "no line while they stand still");
});

test("the status page shows the link fault counters", async () => {
  const pile = fakePileControl();
  const status = pile.status.bind(pile);
  pile.status = () => ({ ...status(), links: { "modbus.crcErrors": 4, "ble.fragmentsExpired": 1 } });
  const r = await executeCommand({ pile, actor: "x" }, "status", []);
  assert.ok(r.ok);
  assert.deepEqual((r.result as { links: LinkCounters }).links, {
    "modbus.crcErrors": 4,
    "ble.fragmentsExpired": 1,
  });
  assert.match(formatResult("status", r.result), /link faults: modbus\.crcErrors=4 ble\.fragmentsExpired=1/);
});
