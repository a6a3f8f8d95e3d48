/**
 * The pile core: verification exchange, session state machine, interlocks and fault policy.
 * Pure: `handle(input)` returns the effects to perform, in order; see index.ts for the contract.
 *
 * This file is the front door: it validates an input, consults the machine's table
 * (transitions.ts), fires the deadlines the input passed (deadlines.ts) and dispatches to the
 * room that handles it: boot.ts, exchange.ts and handshake.ts (the verification exchange and the
 * record-before-accept handshake), session.ts, relays.ts (contactor and lock), plant.ts,
 * interlock.ts, faults.ts, technician.ts; the shared state is kernel.ts.
 */
import { toHex } from "../protocol/index.js";
import { boot } from "./boot.js";
import type { PileCoreConfig } from "./config.js";
import { earliest, fire } from "./deadlines.js";
import { EffectBuffer } from "./effects.js";
import { connected, disconnected, fragmentError, markBusy, message } from "./exchange.js";
import { failSafe } from "./faults.js";
import { codeRecorded } from "./handshake.js";
import { inputType, validateInput } from "./input.js";
import { enforce } from "./interlock.js";
import { Kernel, type PileCoreDeps } from "./kernel.js";
import { pilotReport, recover } from "./pilot.js";
import { emergencyStop, inputHealth, meterReading, radio, vehicleSense } from "./plant.js";
import { protocolProofPolicy } from "./rate-limit.js";
import { contactorFeedback, lockFeedback } from "./relays.js";
import { stateOf, syncState, unavailableBecause } from "./status.js";
import { technician } from "./technician.js";
import { inputKind, transition } from "./transitions.js";
import type { PileEffect, PileInput, PileSnapshot } from "./types.js";

export { validateInput } from "./input.js";
export type { LedgerView, PileCoreDeps } from "./kernel.js";

export class PileCore {
  readonly #k: Kernel;

  constructor(cfg: PileCoreConfig, deps: PileCoreDeps) {
    this.#k = new Kernel(cfg, deps);
  }

  /** Feeds one input; returns the effects to perform, in order. Never throws. */
  handle(input: PileInput): PileEffect[] {
    const k = this.#k;
    k.out = new EffectBuffer();
    try {
      const bad = validateInput(input);
      if (bad !== undefined) {
        k.reject(inputType(input), "BAD_INPUT", bad);
        return k.out.drain();
      }
      // Before boot nothing is taken but boot (and no time passes: no deadline is armed yet).
      const early = k.phase === "unbooted" ? transition(k.phase, inputKind(input, undefined)) : undefined;
      if (early && "refuse" in early) {
        k.reject(input.type, early.refuse, early.detail);
        return k.out.drain();
      }
      const mono = Math.max(input.mono, k.now);
      if (input.wall !== undefined && Number.isFinite(input.wall)) k.lastWall = { wall: input.wall, mono };
      k.inputMono = mono;
      if (this.#answersDeadline(input)) {
        // A relay's feedback that matches its command answers that relay's deadline however late
        // the loop hands it over: after a stall, due timers run before the I/O poll. The runtime
        // reads the feedbacks again before it lets any deadline be declared missed.
        k.now = mono;
        markBusy(k);
        this.#dispatch(input);
        this.#expire(mono);
      } else {
        this.#expire(mono);
        k.now = mono;
        markBusy(k);
        this.#dispatch(input);
      }
      enforce(k);
      recover(k);
      syncState(k);
      markBusy(k);
    } catch (e) {
      failSafe(k, e);
    }
    return k.out.drain();
  }

  #answersDeadline(input: PileInput): boolean {
    if (input.type === "contactorFeedback") return this.#k.contactor.answers(input.closed);
    if (input.type === "lockFeedback") return this.#k.lock.answers(input.engaged);
    return false;
  }

  /** Monotonic ms of the next deadline; feed { type: "tick" } at (or after) it. */
  nextDeadline(): number | undefined {
    return earliest(this.#k)?.at;
  }

  /**
   * Idle, the contactor commanded open and reading open: no energy can flow, so the meter only
   * has to stay fresh (the daemon polls it more slowly then). Cheap: no snapshot is built.
   */
  quiet(): boolean {
    const k = this.#k;
    return k.phase === "idle" && k.contactor.cmd !== true && k.contactor.fb === false;
  }

  snapshot(): PileSnapshot {
    const k = this.#k;
    const s = k.session;
    return {
      pileId: k.cfg.pileId,
      state: stateOf(k),
      phase: k.phase,
      faults: [...k.faults],
      unavailable: k.unavailable,
      unavailableBecause: unavailableBecause(k),
      outputs: { contactor: k.contactor.cmd === true, lock: k.lock.cmd },
      feedback: {
        contactor: k.contactor.fb,
        lock: k.lock.fb,
        vehicle: k.vehicle,
        emergencyStop: k.estop,
        ...(k.pilot ? { pilot: { ...k.pilot, pwmA: k.pwmA, testPermit: k.testPermit } } : {}),
      },
      meter: k.meter && {
        energyImportWh: k.meter.energyImportWh,
        powerW: k.meter.powerW,
        ageMs: k.now - k.meter.takenAt,
      },
      session: s && {
        sessionId: toHex(s.sessionId),
        codeId: toHex(s.code.codeId),
        keyId: s.code.keyId,
        carrier: s.code.claims.carrier,
        deviceId: s.code.claims.deviceId,
        energyWh: k.sessionEnergy(s),
        powerW: k.powerNow(),
        elapsedS: k.elapsedS(s),
        stopReason: s.stopReason,
        limits: {
          maxEnergyWh: s.code.claims.maxEnergyWh,
          maxDurationS: s.code.claims.maxDurationS,
          pwmA: k.pilot ? k.pwmA : null,
        },
      },
      timeFloorMs: k.floor.floor.toString(),
      proofs: k.proofs.snapshot(k.now),
      rateLimitedConnections: [...k.conns.values()].filter(
        (c) => c.failures >= protocolProofPolicy.perConnection,
      ).length,
      connections: k.conns.size,
      counters: { ...k.counters, reasons: { ...k.counters.reasons } },
    };
  }

  /** Fires every deadline up to `mono`, each at its own time, earliest first. */
  #expire(mono: number): void {
    const k = this.#k;
    for (let guard = 0; guard < 10_000; guard++) {
      const next = earliest(k, mono);
      if (!next) return;
      k.now = Math.max(k.now, next.at);
      markBusy(k);
      fire(k, next);
      enforce(k);
      syncState(k);
      markBusy(k);
    }
    throw new Error("deadlines do not progress");
  }

  #dispatch(input: PileInput): void {
    const k = this.#k;
    if (input.type !== "message") {
      // Messages are told apart once decoded (exchange.ts consults the table then).
      const rule = transition(k.phase, inputKind(input, undefined));
      if ("refuse" in rule) {
        if (rule.noFaultFirst && k.faults.size === 0) k.reject(input.type, "NOT_FAULTED", "no fault latched");
        else k.reject(input.type, rule.refuse, rule.detail);
        return;
      }
    }
    switch (input.type) {
      case "boot":
        boot(k, input);
        return;
      case "tick":
        return;
      case "connected":
        connected(k, input.connId);
        return;
      case "disconnected":
        disconnected(k, input.connId);
        return;
      case "message":
        message(k, input.connId, input.bytes, input.wall);
        return;
      case "fragmentError":
        fragmentError(k, input.connId);
        return;
      case "contactorFeedback":
        contactorFeedback(k, input.closed);
        return;
      case "lockFeedback":
        lockFeedback(k, input.engaged);
        return;
      case "vehicle":
        vehicleSense(k, input.present);
        return;
      case "pilot":
        pilotReport(k, input.state, input.diodeFailed === true);
        return;
      case "emergencyStop":
        emergencyStop(k, input.active);
        return;
      case "inputHealth":
        inputHealth(k, input.line, input.readable);
        return;
      case "meterReading":
        meterReading(k, input.reading);
        return;
      case "radio":
        radio(k, input.up);
        return;
      case "store":
        k.storeProblems = [...input.problems];
        return;
      case "meterError":
        // Counted only: the runtime logs an outage once when it begins and once when it ends.
        k.counters.meterErrors++;
        return;
      case "codeRecorded":
        codeRecorded(k, input.codeId, input.ok);
        return;
      case "technician":
        technician(k, input);
        return;
    }
  }
}
