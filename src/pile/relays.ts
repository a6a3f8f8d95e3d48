/**
 * The two actuators of the pile, the contactor and the lock, both an `Actuator` (actuator.ts):
 * what a confirmed command leads to in each phase, what a settled output's unexpected change
 * means, and what a missed deadline latches.
 */
import { bootContactorOpen, bootProgress } from "./boot.js";
import { fault } from "./faults.js";
import { tryClose } from "./interlock.js";
import type { Kernel } from "./kernel.js";
import { charging, sessionContactorOpen, unlocked } from "./session.js";
import { relayTestDone } from "./technician.js";

export function contactorFeedback(k: Kernel, closed: boolean): void {
  const c = k.contactor;
  const r = c.feedback(closed);
  if (r.kind === "confirmed") contactorConfirmed(k);
  if (r.kind !== "settled") return;
  if (c.cmd === false && closed) fault(k, "WELD", "contactor reads closed while commanded open");
  else if (c.cmd === true && !closed && r.was !== false) fault(k, "CONTACTOR_LOST", "contactor dropped out");
}

function contactorConfirmed(k: Kernel): void {
  const c = k.contactor;
  switch (k.phase) {
    case "booting":
      bootContactorOpen(k);
      return;
    case "closing":
      if (c.cmd === true) charging(k);
      return;
    case "opening":
      if (c.cmd === false) sessionContactorOpen(k);
      return;
    case "relayTest":
      if (c.cmd === true) k.commandContactor(false, k.cfg.contactorOpenMs);
      if (k.contactor.deadline === undefined) relayTestDone(k);
      return;
    default:
      return;
  }
}

export function contactorTimeout(k: Kernel): void {
  if (k.contactor.inPlace()) {
    k.contactor.expire();
    contactorConfirmed(k);
    return;
  }
  if (k.contactor.expire() === false)
    fault(k, "WELD", `contactor still closed ${k.cfg.contactorOpenMs} ms after opening`);
  else fault(k, "CONTACTOR_CLOSE_TIMEOUT", `contactor not closed within ${k.cfg.contactorCloseMs} ms`);
}

export function lockFeedback(k: Kernel, engaged: boolean): void {
  const l = k.lock;
  const r = l.feedback(engaged);
  if (r.kind === "confirmed") lockConfirmed(k);
  if (r.kind !== "settled") return;
  if (l.cmd === true && !engaged && r.was !== false) {
    if (k.session && !k.session.ended) fault(k, "LOCK_LOST", "lock released during a session");
    else k.log("warn", "lock.released_unexpectedly", {});
  } else if (l.cmd === false && engaged && r.was !== true) {
    k.log("warn", "lock.engaged_unexpectedly", {});
  }
}

export function lockConfirmed(k: Kernel): void {
  switch (k.phase) {
    case "booting":
      bootProgress(k);
      return;
    case "locking": {
      const s = k.session;
      if (s && k.lock.cmd === true) {
        s.lockConfirmedAt = k.now;
        tryClose(k);
      }
      return;
    }
    case "unlocking":
      if (k.lock.cmd === false) unlocked(k);
      return;
    default:
      return;
  }
}

export function lockTimeout(k: Kernel): void {
  if (k.lock.inPlace()) {
    k.lock.expire();
    lockConfirmed(k);
    return;
  }
  if (k.lock.expire() === true)
    fault(k, "LOCK_ENGAGE_TIMEOUT", `lock not engaged within ${k.cfg.lockConfirmMs} ms`);
  else {
    fault(k, "LOCK_RELEASE_TIMEOUT", `lock not released within ${k.cfg.lockReleaseMs} ms`);
    if (k.phase === "unlocking") unlocked(k);
  }
  bootProgress(k);
}
