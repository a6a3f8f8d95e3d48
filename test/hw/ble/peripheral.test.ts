import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { BlenoPeripheral } from "../../../src/hw/ble/peripheral.js";

test("a controller that is not there is reported down and retried with backoff; start() neither hangs nor throws", async () => {
  const dir = await mkdtemp(join(tmpdir(), "piled-ble-"));
  try {
    const radio: Array<[string, string | undefined]> = [];
    let secondDown: () => void = () => {};
    const twice = new Promise<void>((r) => {
      secondDown = r;
    });
    const p = new BlenoPeripheral({
      controller: { kind: "uart", path: join(dir, "no-such-uart") },
      pileId: "CP-1",
      powerOnTimeoutMs: 150,
      retryInitialMs: 50,
    });
    await p.start({
      info: () => new Uint8Array(),
      connect: () => assert.fail("no central can connect"),
      write: () => assert.fail("no central can write"),
      disconnect: () => {},
      radio: (state, detail) => {
        radio.push([state, detail]);
        if (radio.length === 2) secondDown();
      },
    });
    assert.equal(radio[0]?.[0], "down");
    assert.match(radio[0]?.[1] ?? "", /power-on/);
    await twice;
    assert.equal(radio[1]?.[0], "down");
    assert.ok(p.stats().radioDowns >= 2);
    await p.stop();
    const n = radio.length;
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(radio.length, n, "no retry after stop()");
    assert.equal(
      process.listeners("SIGINT").length,
      0,
      "bleno's SIGINT handler (which exits the process) is not left installed",
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
