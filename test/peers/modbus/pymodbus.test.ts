/**
 * Peer tier: the Meter adapter against an independent slave, pymodbus (Debian python3-pymodbus,
 * run with /usr/bin/python3), serving each register map from images built in Python from the
 * manufacturers' tables. The slave also corrupts CRCs and goes silent on request.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ModbusBus } from "../../../src/hw/meter/bus.js";
import { METER_MODELS } from "../../../src/hw/meter/maps.js";
import { ModbusMeter } from "../../../src/hw/meter/modbus-meter.js";
import { MeterError } from "../../../src/hw/ports.js";
import { openPtyPair, type PtyPair } from "../../helpers/pty.js";
import { PEER_PYTHON, startSlave, stopSlave } from "./slave-proc.js";

const PYTHON = PEER_PYTHON;

function requirePymodbus(): void {
  const r = spawnSync(PYTHON, ["-c", "import pymodbus.server, pymodbus.datastore"], { encoding: "utf8" });
  if (r.error || r.status !== 0) {
    throw new Error(
      `the pymodbus peer needs the Debian package 'python3-pymodbus' for ${PYTHON} (scripts/ensure-system-deps.sh): ${
        r.stderr?.trim() ?? r.error?.message
      }`,
    );
  }
}

const clock = { now: () => 0, monotonic: () => 0 };

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof MeterError, `not a MeterError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return;
  }
  assert.fail(`resolved, expected ${code}`);
}

let pair: PtyPair;
let dir: string;
before(async () => {
  requirePymodbus();
  pair = await openPtyPair();
  dir = mkdtempSync(join(tmpdir(), "piled-pymodbus-"));
});
after(async () => {
  await pair?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const VALUES = { voltageV: 231.4, currentA: 15.87, powerW: 10_983.5, energyImportWh: 1_234_500 };

for (const model of METER_MODELS) {
  test(`${model} against pymodbus: values, CRC corruption, silence, recovery`, async () => {
    const faultFile = join(dir, `${model}.fault`);
    const unit = 17;
    const slave = await startSlave({ port: pair.b, model, unit, values: VALUES, faultFile });
    const bus = new ModbusBus({ path: pair.a, timeoutMs: 300, retries: 1, backoffMs: 10 });
    const meter = new ModbusMeter({ bus, model, unit, clock, ownsBus: true });
    try {
      const r = await meter.read();
      assert.ok(Math.abs(r.voltageV - VALUES.voltageV) < 1e-3, `V ${r.voltageV}`);
      assert.ok(Math.abs(r.currentA - VALUES.currentA) < 1e-3, `A ${r.currentA}`);
      assert.ok(Math.abs(r.powerW - VALUES.powerW) < 1e-2, `W ${r.powerW}`);
      assert.ok(Math.abs(r.energyImportWh - VALUES.energyImportWh) < 1, `Wh ${r.energyImportWh}`);
      writeFileSync(faultFile, "crc");
      await rejectsWith(meter.read(), "CRC");
      assert.ok(bus.counters().rxCrcErrors >= 1);
      writeFileSync(faultFile, "silent");
      await rejectsWith(meter.read(), "TIMEOUT");
      writeFileSync(faultFile, "none");
      const again = await meter.read();
      assert.ok(Math.abs(again.energyImportWh - VALUES.energyImportWh) < 1);
      assert.equal(bus.counters().opens, 1);
    } finally {
      await meter.close();
      await stopSlave(slave);
    }
  });
}
