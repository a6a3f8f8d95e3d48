/**
 * The simulated pile as `npm start` runs it: the BUILT daemon with `vehicle: {kind: "pilot-mcu",
 * sim: true}` starts the real firmware in its own harness, wires the MCU's permit in series with
 * the simulated plant's contactor coil, and lets the vehicle model answer the PWM on its own;
 * `pilectl sim` plugs, and hangs the MCU.
 *
 * Needs the firmware-bridge toolchain and the radio tools of the e2e tier; fails naming them.
 */
import assert from "node:assert/strict";
import { before, test } from "node:test";
import type { StatusView } from "../../src/control/index.js";
import { simPileConfig } from "../../src/daemon/sim-config.js";
import { assertOutcome, central, unlockOver } from "../e2e/air.js";
import { startPile } from "../helpers/pile-proc.js";
import { buildFirmware } from "../helpers/pilot-harness.js";

before(() => {
  const r = buildFirmware();
  assert.equal(r.status, 0, r.output);
});

interface SimState {
  plant: { outputs: { contactor: boolean }; feedback: { contactor: boolean }; permit?: boolean };
  pilot: { vehicle: string; permit: boolean; auto: boolean; dutyPercent: number | null };
}

test("npm start's pile: the firmware in the daemon's harness, the vehicle model answers the PWM, the coil needs the MCU's permit", async (t) => {
  // npm start's vehicle sense (sim-config.ts with pilot): no plug line, the MCU in the harness.
  const { gpio, vehicle } = simPileConfig({ pileId: "x", dir: "/x", pilot: true }) as Record<string, unknown>;
  const pile = await startPile({ pileId: `SIMP-${process.pid}`, config: { gpio, vehicle } });
  t.after(() => pile.stop());
  const sim = async (a: string) => (await pile.control("sim", [a])) as SimState;
  const idle = await pile.status();
  assert.equal(idle.pilot?.state, "A");
  assert.equal(idle.pilot?.firmware, "1.0.0");
  const s0 = await sim("state");
  assert.equal(s0.plant.permit, false, "the permit is in series with the coil, off at start");
  assert.equal(s0.pilot.auto, true);

  await sim("plug-in");
  await pile.waitStatus((s) => s.pilot?.state === "B" && s.vehiclePresent === true);
  const c = await central(pile);
  t.after(c.close);
  const code = pile.issuer.issue({ deviceId: "SIM-CAR", pileId: pile.pileId, validForS: 600 });
  assert.ok(code.ok);
  const one = await unlockOver(c.central, code.value);
  assertOutcome(one.outcome, "accepted");
  one.stopStatus();
  await one.link.close();
  // No `vehicle-c`: the model goes to C on its own once the PWM offers current.
  const on = await pile.waitStatus((s) => s.state === "CHARGING" && s.contactor === "closed", 20_000);
  assert.equal(on.pilot?.permit, "charge");
  const s1 = await sim("state");
  assert.equal(s1.pilot.vehicle, "C");
  assert.ok(s1.plant.outputs.contactor && s1.plant.permit && s1.plant.feedback.contactor, JSON.stringify(s1));

  // A hung MCU: its watchdog resets it, the permit drops, the coil with it; the daemon faults.
  await sim("mcu-freeze");
  const f = await pile.waitStatus(
    (s: StatusView) =>
      s.faults.includes("PILOT_MCU") && s.contactor === "open" && s.pilot?.lastReset === "WDT",
  );
  assert.equal(f.state, "FAULTED");
  const s2 = await sim("state");
  assert.equal(s2.plant.permit, false);
  assert.equal(s2.plant.feedback.contactor, false);
  await sim("plug-out");
  await pile.waitStatus((s) => s.state === "AVAILABLE" && s.faults.length === 0 && s.pilot?.state === "A");
});
