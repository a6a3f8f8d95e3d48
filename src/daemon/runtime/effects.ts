/**
 * The effect performer: each of the core's effects done in the order the core gave them —
 * outputs, durable records, messages, notifications. One performer per effect type.
 */
import type { DigitalOutput } from "../../hw/ports.js";
import type { PileEffect } from "../../pile/index.js";
import { toHex } from "../../protocol/index.js";
import { performPilot } from "../pilot-glue.js";
import { isRetryable } from "../store-health.js";
import type { BleBridge } from "./ble-bridge.js";
import { errText, type LoopContext } from "./context.js";
import type { StoreWrites } from "./store-writes.js";

/** The output lines as written; the contactor's level is true from the write of a close on. */
export class Outputs {
  contactorWritten = false;
  readonly #ctx: LoopContext;
  constructor(ctx: LoopContext) {
    this.#ctx = ctx;
  }

  async write(line: DigitalOutput, active: boolean, what: string): Promise<void> {
    try {
      await line.write(active);
    } catch (e) {
      // The core's feedback deadline turns a write that did not happen into a fault.
      this.#ctx.count("gpio.writeErrors");
      this.#ctx.log.error({ line: what, active, err: errText(e) }, "output write failed");
    }
  }

  async contactor(closed: boolean): Promise<void> {
    if (closed) this.contactorWritten = true;
    await this.write(this.#ctx.parts.lines.contactor, closed, "contactor");
    if (!closed) this.contactorWritten = false;
  }
}

export interface EffectEnv {
  ctx: LoopContext;
  writes: StoreWrites;
  ble: BleBridge;
  outputs: Outputs;
  /** The pile's state changed (the runtime notes since when). */
  stateChanged(state: string): void;
  securityEvent(failures: number): void;
  relayTestDone(r: { ok: boolean; detail: string }): void;
}

type Of<K extends PileEffect["type"]> = Extract<PileEffect, { type: K }>;
type Performers = { [K in PileEffect["type"]]: (env: EffectEnv, e: Of<K>) => Promise<void> | void };

/**
 * The code id and its session's start in one transaction: a code is never spent (nor its lock
 * moved) without a session record. Nothing is live yet (no output has moved).
 */
function recordCode(env: EffectEnv, e: Of<"recordCode">): void {
  const { writes, ctx } = env;
  const r = e.session;
  const problems = writes.health.measure();
  writes.syncProblems();
  const code = {
    codeId: e.codeId,
    keyId: e.keyId,
    issuedAt: e.issuedAt,
    expiresAt: e.expiresAt,
    carrier: r.carrier,
    deviceId: r.deviceId,
  };
  const session = {
    sessionId: r.sessionId,
    codeId: r.codeId,
    keyId: r.keyId,
    deviceId: r.deviceId,
    carrier: r.carrier,
    startedAt: Number(r.startedAt),
    meterStartWh: r.meterStartWh ?? null,
  };
  const ok =
    problems.length === 0 &&
    writes.guard(
      "sessions.beginWithCode",
      () => ctx.parts.store.sessions.beginWithCode(code, session),
      (err) => {
        if (!isRetryable(err)) return;
        writes.health.recordFailed(err);
        writes.syncProblems();
      },
    );
  if (!ok) ctx.log.error({ codeId: toHex(e.codeId), problems }, "cannot record the code id: refusing it");
  ctx.feedFirst({ type: "codeRecorded", codeId: e.codeId, ok });
}

async function sessionEnded(env: EffectEnv, e: Of<"sessionEnded">): Promise<void> {
  const r = e.record;
  await env.writes.write({
    op: "sessions.finish",
    sessionId: r.sessionId,
    finish: {
      stoppedAt: Number(r.endedAt),
      meterStopWh: r.energyStopWh ?? null,
      meterStartWh: r.energyStartWh ?? null,
      energyWh: r.energyWh,
      stopReason: r.stopReason,
      faults: r.faults,
    },
  });
  env.ctx.log.info(
    { sessionId: toHex(r.sessionId), stopReason: r.stopReason, energyWh: r.energyWh, faults: r.faults },
    "session ended",
  );
}

const performers: Performers = {
  contactor: (env, e) => env.outputs.contactor(e.closed),
  lock: (env, e) => env.outputs.write(env.ctx.parts.lines.lock, e.engaged, "lock"),
  pilot: (env, e) => performPilot(env.ctx.parts.vehicle?.pilot, e, env.ctx.log),
  recordCode,
  sessionStarted: (env, e) => {
    const r = e.record;
    env.ctx.log.info(
      { sessionId: toHex(r.sessionId), codeId: toHex(r.codeId), carrier: r.carrier, deviceId: r.deviceId },
      "session accepted",
    );
  },
  sessionUpdate: (env, e) => {
    const r = e.record;
    return env.writes.write({
      op: "sessions.progress",
      sessionId: r.sessionId,
      progress: {
        energyWh: r.energyWh,
        lastMeterWh: r.energyStartWh !== undefined ? r.energyStartWh + r.energyWh : null,
        meterStartWh: r.energyStartWh ?? null,
        at: env.ctx.parts.clock.now(),
      },
    });
  },
  sessionEnded,
  send: (env, e) => env.ble.send(e.connId, e.message),
  disconnect: (env, e) => env.ble.drop(e.connId, e.reason),
  securityEvent: (env, e) => {
    env.securityEvent(e.failures);
    env.ctx.count("security.events");
    env.ctx.log.error(
      { event: e.event, failures: e.failures, threshold: e.threshold, windowMs: e.windowMs },
      "security event: failed proofs past the threshold",
    );
    env.writes.auditNow("daemon", "security", e.event, `${e.failures} failed proofs within ${e.windowMs} ms`);
  },
  fault: async (env, e) => {
    const { clock } = env.ctx.parts;
    await env.writes.write({ op: "faults.raise", code: e.code, detail: e.detail, at: clock.now() });
    env.ctx.log.error({ fault: e.code, detail: e.detail }, "fault latched");
    env.writes.auditNow("daemon", "fault", e.code, e.detail);
  },
  faultCleared: async (env, e) => {
    const { clock } = env.ctx.parts;
    for (const code of e.codes)
      await env.writes.write({ op: "faults.clear", code, by: "technician", at: clock.now() });
    env.ctx.log.info({ faults: e.codes }, "faults cleared");
  },
  state: (env, e) => {
    env.stateChanged(e.state);
    env.ctx.log.info({ state: e.state }, "pile state");
    env.ctx.parts.notifier.status(`${e.state}`);
  },
  relayTestDone: (env, e) => env.relayTestDone({ ok: e.ok, detail: e.detail }),
  rejected: (env, e) => {
    env.ctx.count(`core.rejected.${e.input}`);
    env.ctx.log.warn({ input: e.input, code: e.code, detail: e.detail }, "input refused");
  },
  log: (env, e) => {
    env.ctx.log[e.level](e.fields, e.event);
  },
};

export function performEffect(env: EffectEnv, e: PileEffect): Promise<void> | void {
  const perform = performers[e.type] as (env: EffectEnv, e: PileEffect) => Promise<void> | void;
  return perform(env, e);
}
