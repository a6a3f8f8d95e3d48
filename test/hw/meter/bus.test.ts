import assert from "node:assert/strict";
import { test } from "node:test";
import { ModbusBus } from "../../../src/hw/meter/bus.js";
import { METER_MAPS } from "../../../src/hw/meter/maps.js";
import { readRequest } from "../../../src/hw/meter/rtu.js";
import { MeterError } from "../../../src/hw/ports.js";
import { SimMeter } from "../../../src/sim/meter/sim-meter.js";
import { waitFor } from "../../helpers/poll.js";
import { FakeSerial } from "./fake-serial.js";

const clock = { now: () => 0, monotonic: () => 0 };
const noSleep = async () => {};

function setup(opts: { timeoutMs?: number; retries?: number; autoReply?: boolean } = {}) {
  const sim = new SimMeter({ model: "sdm630", clock, energyWh: 1000 });
  sim.setPower(3000);
  const ports: FakeSerial[] = [];
  let openError: Error | null = null;
  const bus = new ModbusBus({
    path: "/dev/fake",
    timeoutMs: opts.timeoutMs ?? 1000,
    retries: opts.retries ?? 0,
    sleep: noSleep,
    openSerial: () => {
      const p = new FakeSerial(sim, openError);
      p.autoReply = opts.autoReply ?? true;
      ports.push(p);
      return p;
    },
  });
  return {
    sim,
    bus,
    ports,
    failOpens: (e: Error | null) => {
      openError = e;
    },
  };
}

const tick = () => new Promise((r) => setImmediate(r));
const until = async (cond: () => boolean): Promise<void> => {
  await waitFor("the condition", cond, { everyMs: 0, timeoutMs: 5000 });
};

async function rejectsWith(p: Promise<unknown>, code: string): Promise<MeterError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof MeterError, `not a MeterError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`resolved, expected ${code}`);
}

test("requests from several callers reach the wire one at a time, in order", async () => {
  const { bus, ports } = setup({ autoReply: false });
  const v = METER_MAPS.sdm630.fields.voltageV;
  const reads = [
    bus.readRegisters(1, 4, 0, 2),
    bus.readRegisters(1, 4, 6, 2),
    bus.readRegisters(1, 4, 0x34, 2),
  ];
  await until(() => ports.length === 1 && ports[0]!.isOpen);
  const port = ports[0]!;
  // Whatever the first request did, nothing else goes out until its reply is in.
  await until(() => port.written.length === 1);
  for (let i = 0; i < 20; i++) await tick();
  assert.equal(port.written.length + port.pending.length, 2, "one request, one reply pending");
  assert.equal(port.written.length, 1);
  port.deliver();
  await until(() => port.written.length === 2);
  for (let i = 0; i < 20; i++) await tick();
  assert.equal(port.written.length, 2);
  port.deliver();
  await until(() => port.written.length === 3);
  port.deliver();
  const [a, b, c] = await Promise.all(reads);
  assert.deepEqual(
    port.written.map((w) => w.toString("hex")),
    [readRequest(1, 4, 0, 2), readRequest(1, 4, 6, 2), readRequest(1, 4, 0x34, 2)].map((w) =>
      w.toString("hex"),
    ),
  );
  assert.equal(a!.length, 2);
  assert.equal(b!.length, 2);
  assert.equal(c!.length, 2);
  assert.equal(v.fc, 4);
  assert.equal(bus.counters().requests, 3);
  await bus.close();
});

test("requests queued before the port went away are failed, never sent after the reopen", async () => {
  const { bus, ports } = setup({ autoReply: false });
  const first = bus.readRegisters(1, 4, 0, 2);
  await until(() => ports[0]?.isOpen === true);
  const port = ports[0]!;
  await until(() => port.written.length === 1);
  const queued = [bus.readRegisters(1, 4, 6, 2), bus.readRegisters(1, 4, 0x34, 2)];
  port.unplug();
  await rejectsWith(first, "PORT");
  for (const q of queued) await rejectsWith(q, "PORT");
  // The next request opens a new port and only it goes on the wire.
  const afterP = bus.readRegisters(1, 4, 0x48, 2);
  await until(() => ports[1]?.written.length === 1);
  ports[1]!.deliver();
  const after = await afterP;
  assert.equal(after.length, 2);
  assert.equal(ports.length, 2);
  assert.deepEqual(
    ports[1]!.written.map((w) => w.toString("hex")),
    [readRequest(1, 4, 0x48, 2).toString("hex")],
  );
  assert.equal(port.written.length, 1, "nothing more reached the unplugged port");
  const c = bus.counters();
  assert.equal(c.opens, 2);
  assert.ok(c.portErrors >= 1);
  assert.equal(c.writesDropped, 0);
  await bus.close();
});

test("a request made while the port is down opens a fresh port rather than queueing on the old one", async () => {
  const { bus, ports } = setup();
  await bus.readRegisters(1, 4, 0, 2);
  ports[0]!.unplug();
  await tick();
  const r = await bus.readRegisters(1, 4, 6, 2);
  assert.equal(r.length, 2);
  assert.equal(ports.length, 2);
  assert.equal(ports[0]!.written.length, 1);
  assert.equal(ports[1]!.written.length, 1);
  await bus.close();
});

test("an open failure is PORT, and the bus tries again on the next request", async () => {
  const { bus, failOpens } = setup();
  failOpens(Object.assign(new Error("No such file or directory"), { code: "ENOENT" }));
  await rejectsWith(bus.readRegisters(1, 4, 0, 2), "PORT");
  failOpens(null);
  assert.equal((await bus.readRegisters(1, 4, 0, 2)).length, 2);
  await bus.close();
});

test("silence is TIMEOUT after every retry; a reply on the retry succeeds", async () => {
  const { bus, sim } = setup({ timeoutMs: 20, retries: 2 });
  sim.setFaults({ silent: true });
  await rejectsWith(bus.readRegisters(1, 4, 0, 2), "TIMEOUT");
  let c = bus.counters();
  assert.equal(c.timeouts, 3);
  assert.equal(c.retries, 2);
  assert.equal(c.requests, 3);
  sim.setFaults({ silent: false });
  assert.equal((await bus.readRegisters(1, 4, 0, 2)).length, 2);
  c = bus.counters();
  assert.equal(c.requests, 4);
  await bus.close();
});

test("a corrupted reply is CRC and counted; a Modbus exception is EXCEPTION with its code, not retried", async () => {
  const { bus, sim } = setup({ retries: 1 });
  sim.setFaults({ corruptCrc: true });
  await rejectsWith(bus.readRegisters(1, 4, 0, 2), "CRC");
  assert.equal(bus.counters().rxCrcErrors, 2);
  sim.setFaults({ corruptCrc: false, exception: 2 });
  const e = await rejectsWith(bus.readRegisters(1, 4, 0, 2), "EXCEPTION");
  assert.equal(e.detail?.modbusCode, 2);
  const c = bus.counters();
  assert.equal(c.exceptions, 1);
  assert.equal(c.requests, 3, "2 CRC attempts + 1 exception");
  await bus.close();
});

test("a reply split into single bytes after line noise is reassembled", async () => {
  const { bus, ports } = setup();
  await bus.readRegisters(1, 4, 0, 2);
  ports[0]!.chunkSize = 1;
  ports[0]!.noise = Buffer.from([0x00, 0xff, 0x07]);
  const r = await bus.readRegisters(1, 4, 0x48, 2);
  assert.equal(r.length, 2);
  const c = bus.counters();
  assert.equal(c.rxDiscarded, 3);
  assert.equal(c.rxCrcErrors, 0);
  await bus.close();
});

test("close() fails queued requests with CLOSED and later requests too", async () => {
  const { bus, ports } = setup({ autoReply: false });
  const first = bus.readRegisters(1, 4, 0, 2);
  await until(() => ports[0]?.isOpen === true);
  const second = bus.readRegisters(1, 4, 6, 2);
  await until(() => ports[0]!.written.length === 1);
  await bus.close();
  await rejectsWith(first, "CLOSED");
  await rejectsWith(second, "CLOSED");
  await rejectsWith(bus.readRegisters(1, 4, 0, 2), "CLOSED");
  assert.equal(ports[0]!.written.length, 1);
  assert.equal(ports[0]!.isOpen, false);
});
