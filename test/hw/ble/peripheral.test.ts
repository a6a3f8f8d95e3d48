import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { BlenoPeripheral } from "../../../src/hw/ble/peripheral.js";
import { ManualClock } from "../../../src/sim/plant.js";

test("a controller that is not there is reported down and retried with backoff; start() neither hangs nor throws", async () => {
  const dir = await mkdtemp(join(tmpdir(), "piled-ble-"));
  try {
    const radio: Array<[string, string | undefined]> = [];
    // Handlers the peripheral calls inside its own catch-all: what they saw is asserted after.
    const unexpected: string[] = [];
    const clock = new ManualClock();
    const p = new BlenoPeripheral({
      controller: { kind: "uart", path: join(dir, "no-such-uart") },
      pileId: "CP-1",
      powerOnTimeoutMs: 150,
      retryInitialMs: 50,
      timers: clock,
    });
    const started = p.start({
      info: () => new Uint8Array(),
      connect: () => void unexpected.push("connect"),
      write: () => void unexpected.push("write"),
      disconnect: () => {},
      radio: (state, detail) => void radio.push([state, detail]),
    });
    clock.advance(150); // the first attempt's power-on timeout
    await started;
    assert.equal(radio[0]?.[0], "down");
    assert.match(radio[0]?.[1] ?? "", /power-on/);
    clock.advance(50); // the retry, after the first backoff
    assert.equal(radio.length, 1, "the retry is an attempt, not yet a verdict");
    clock.advance(150); // the retry's power-on timeout
    assert.equal(radio[1]?.[0], "down");
    assert.match(radio[1]?.[1] ?? "", /power-on/);
    assert.ok(p.stats().radioDowns >= 2);
    await p.stop();
    const n = radio.length;
    assert.equal(clock.pendingCount, 0, "no retry or power-on timer is left armed after stop()");
    clock.advance(60_000);
    assert.equal(radio.length, n, "no retry after stop()");
    assert.deepEqual(unexpected, [], "no central can connect or write");
    assert.equal(p.stats().handlerErrors, 0);
    assert.equal(
      process.listeners("SIGINT").length,
      0,
      "bleno's SIGINT handler (which exits the process) is not left installed",
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
