/**
 * The vehicle sense in the daemon's config: the plug-present GPIO stays the default; a pilot MCU
 * is `vehicle: { kind: "pilot-mcu", … }` with ranges, and is refused beside a plugPresent line or
 * as a simulator on real GPIO. The status line of `pilectl status` shows the pilot.
 */
import assert from "node:assert/strict";
import test from "node:test";
import { formatResult } from "../../src/control/index.js";
import { validateConfig } from "../../src/daemon/config.js";
import { simPileConfig } from "../../src/daemon/sim-config.js";

const base = () => simPileConfig({ pileId: "PC-1", dir: "/tmp/pc" });

test("without a vehicle key the plug-present GPIO is the vehicle sense, as before", () => {
  const r = validateConfig(base());
  assert.ok(r.ok);
  assert.deepEqual(r.value.vehicle, { kind: "gpio" });
  assert.ok(r.value.gpio.plugPresent);
});

test("a pilot MCU with its defaults; the simulator config has no plug line", () => {
  const r = validateConfig(simPileConfig({ pileId: "PC-1", dir: "/tmp/pc", pilot: true }));
  assert.ok(r.ok, r.ok ? "" : r.error.message);
  assert.deepEqual(r.value.vehicle, {
    kind: "pilot-mcu",
    port: "/dev/piled-pilot",
    baud: 115200,
    heartbeatMs: 100,
    silenceMs: 1000,
    heartbeatLimitMs: 500,
    maxCurrentA: 32,
    sim: true,
  });
  assert.equal(r.value.gpio.plugPresent, undefined);
});

test("bad pilot settings are refused with their paths", () => {
  const c = base();
  const { plugPresent: _p, ...gpio } = c.gpio as Record<string, unknown>;
  const cases: [unknown, string][] = [
    [{ ...c, vehicle: { kind: "pilot-mcu" } }, "gpio.plugPresent"],
    [{ ...c, gpio, vehicle: { kind: "pilot-mcu", maxCurrentA: 90 } }, "vehicle.maxCurrentA"],
    [{ ...c, gpio, vehicle: { kind: "pilot-mcu", heartbeatLimitMs: 10 } }, "vehicle.heartbeatLimitMs"],
    [{ ...c, gpio, vehicle: { kind: "pilot-mcu", prot: "/dev/x" } }, "vehicle.prot"],
    [{ ...c, gpio, vehicle: { kind: "can-bus" } }, "vehicle.kind"],
    [{ ...c, gpio: { ...gpio, driver: "sysfs" }, vehicle: { kind: "pilot-mcu", sim: true } }, "vehicle.sim"],
  ];
  for (const [cfg, path] of cases) {
    const r = validateConfig(cfg);
    assert.ok(!r.ok, path);
    assert.ok(
      r.error.issues.some((i) => i.path === path),
      `${path}: ${JSON.stringify(r.error.issues)}`,
    );
  }
});

test("pilectl status prints the pilot's state, permit, duty and counters", () => {
  const status = {
    pileId: "PC-1",
    state: "CHARGING",
    since: 0,
    contactor: "closed",
    lock: "engaged",
    vehiclePresent: true,
    ble: "up",
    meterFresh: true,
    faults: [],
    unavailableBecause: [],
    store: { freeBytes: null, minFreeBytes: 0, fault: null, faultSince: null, pending: 0 },
    security: { recentFailedProofs: 0, alarm: false, events: 0, lastEventAt: null },
    session: null,
    uptimeMs: 1000,
    version: "0",
    counters: {},
    pilot: {
      state: "C",
      permit: "charge",
      diode: "ok",
      pwm: true,
      dutyPermille: 267,
      why: [],
      firmware: "1.0.0",
      lastReset: "POR",
      resets: 0,
      counters: { "board.rxBad": 2, "mcu.rxBad": 1 },
    },
  };
  const text = formatResult("status", status);
  assert.match(text, /pilot C {2}permit charge {2}pwm 26\.7 % {2}diode ok/);
  assert.match(text, /pilot mcu fw 1\.0\.0 {2}last reset POR {2}resets 0 {2}board\.rxBad=2 mcu\.rxBad=1/);
});
