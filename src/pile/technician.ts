/**
 * The technician's commands: stop a session, clear latched faults, set the pile (un)available,
 * and the relay test (close and reopen the contactor with nothing plugged in). Which phases take
 * which command is in transitions.ts; the checks here are those of the plant.
 */
import { contactorInterlocks } from "./guard.js";
import { facts } from "./interlock.js";
import type { Kernel } from "./kernel.js";
import { currentLimitChanged, testPermit } from "./pilot.js";
import { beginStop, releaseLockToRest } from "./session.js";
import type { TechnicianCommand } from "./types.js";

export function technician(k: Kernel, cmd: TechnicianCommand): void {
  switch (cmd.command) {
    case "stop":
      if (k.phase === "relayTest") abortRelayTest(k, "stopped by technician");
      else if (k.phase !== "opening") beginStop(k, "TECHNICIAN");
      return;
    case "clearFault":
      clearFault(k);
      return;
    case "setAvailable":
      if (k.unavailable === !cmd.available) return;
      k.unavailable = !cmd.available;
      k.log("info", "pile.availability", { available: cmd.available });
      return;
    case "relayTest":
      relayTest(k);
      return;
    case "setCurrentLimit":
      k.currentLimitA = cmd.currentA;
      k.log("info", "pile.current_limit", { currentA: cmd.currentA ?? "none" });
      currentLimitChanged(k);
      return;
  }
}

/** Clears the latched faults once the plant is safe (the phase is idle: transitions.ts). */
function clearFault(k: Kernel): void {
  if (k.faults.size === 0) {
    k.reject("technician", "NOT_FAULTED", "no fault latched");
    return;
  }
  const c = k.contactor;
  if (c.fb !== false || c.cmd !== false || c.deadline !== undefined) {
    k.reject("technician", "UNSAFE", "contactor does not read open");
    return;
  }
  if (k.estop) {
    k.reject("technician", "UNSAFE", "emergency stop active");
    return;
  }
  if (k.unreadable.size > 0) {
    k.reject("technician", "UNSAFE", `cannot read ${[...k.unreadable].join(",")}`);
    return;
  }
  const codes = [...k.faults];
  k.faults.clear();
  k.out.push({ type: "faultCleared", codes });
  if (k.cfg.lockSafeState === "engaged") {
    if (k.lock.cmd !== true) k.commandLock(true, k.cfg.lockConfirmMs);
  } else if (k.lock.cmd !== false || k.lock.fb !== false) releaseLockToRest(k);
}

/** Starts the relay test from idle (transitions.ts), nothing plugged in and no fault. */
function relayTest(k: Kernel): void {
  const blockers = contactorInterlocks(facts(k, "relayTest"));
  if (blockers.length > 0 || k.contactor.fb !== false) {
    k.reject("technician", "UNSAFE", `relay test refused: ${blockers.join(",") || "CONTACTOR"}`);
    return;
  }
  k.phase = "relayTest";
  k.relay = { ok: true, detail: "closed and reopened" };
  testPermit(k, true);
  k.commandContactor(true, k.cfg.contactorCloseMs);
  k.log("info", "relaytest.start", {});
}

export function abortRelayTest(k: Kernel, detail: string): void {
  if (k.phase !== "relayTest") return;
  k.relay = { ok: false, detail };
  if (k.contactor.cmd !== false) k.commandContactor(false, k.cfg.contactorOpenMs);
  // Never read closed: the test is over at once; the opening's deadline still watches for a weld.
  if (k.contactor.deadline === undefined || k.contactor.fb === false) relayTestDone(k);
}

export function relayTestDone(k: Kernel): void {
  const r = k.relay ?? { ok: false, detail: "unknown" };
  k.relay = undefined;
  k.phase = "idle";
  testPermit(k, false);
  k.out.push({ type: "relayTestDone", ok: r.ok, detail: r.detail });
  k.log(r.ok ? "info" : "warn", "relaytest.done", { ok: r.ok, detail: r.detail });
}
