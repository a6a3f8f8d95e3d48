/**
 * The carrier client (PROTOCOL.md §3): what the vehicle device or the owner's phone runs to unlock
 * a pile with a code, and to stop the session. Two parts:
 *
 * - `carrierStep`: the pure decision logic, state + input → state + actions. No timers, no I/O;
 *   the only computation is HMAC through the injected suite.
 * - `unlock` / `stop`: a runner that performs those actions over a `CarrierLink` (fragmenting at
 *   the link MTU, reassembling notifications, arming the exchange deadline).
 *
 * The code is never handed to a pile whose pileProof does not verify against the pileId the
 * platform named: PRESENT is only ever produced from a verified CHALLENGE.
 */
import { utf8 } from "../protocol/bytes.js";
import {
  CODE_ID_LENGTH,
  MAX_CODE_LENGTH,
  MAX_ID_BYTES,
  MIN_CODE_LENGTH,
  parseCodeHeader,
} from "../protocol/code.js";
import { fragment, Reassembler } from "../protocol/fragments.js";
import {
  decodePileMessage,
  encodeMessage,
  NONCE16,
  type PileMessage,
  PROTOCOL_VERSION,
  type Status,
} from "../protocol/messages.js";
import { deviceProof, pileProof, stopProof } from "../protocol/proofs.js";
import { Reason, type ReasonName, reasonName } from "../protocol/reasons.js";
import type { CryptoSuite } from "../protocol/suite.js";
import { forgeSuite } from "./forge-suite.js";
import type { CarrierLink } from "./transport.js";

export type { Status } from "../protocol/messages.js";

/** PROTOCOL.md §3: a pile drops an exchange 10 s after its HELLO; the carrier waits a bit longer. */
export const DEFAULT_TIMEOUT_MS = 12_000;

/** Where an exchange stood when it ended without an answer. */
export type ExchangeStage = "idle" | "helloSent" | "presentSent" | "stopSent" | "session";

export type CarrierOutcome =
  /** The pile accepted the code and started a session; `sessionId` is the carrier's receipt. */
  | { kind: "accepted"; sessionId: Uint8Array }
  /** The RESULT of a PRESENT or STOP other than ACCEPTED / STOPPED. */
  | { kind: "rejected"; reason: ReasonName }
  /** An ERROR from the pile (malformed, refused HELLO, out of order, timed out…). */
  | { kind: "error"; reason: ReasonName }
  /** The pileProof did not verify: this pile does not hold the key, or is not the named pile. */
  | { kind: "rogue-pile" }
  | { kind: "timeout"; stage: ExchangeStage }
  | { kind: "disconnected"; stage: ExchangeStage }
  | { kind: "link-error"; stage: ExchangeStage; message: string }
  | { kind: "aborted"; stage: ExchangeStage }
  /** The pile ended the session and confirmed the contactor open. */
  | { kind: "stopped" }
  /** The caller's own arguments cannot make an exchange; nothing was sent. */
  | { kind: "bad-input"; why: string };

export interface ExchangeParams {
  mode: "unlock" | "stop";
  keyId: number;
  codeId: Uint8Array;
  verifySecret: Uint8Array;
  pileId: string;
  /** The code bytes (unlock only). */
  code?: Uint8Array;
  suite: CryptoSuite;
}

export type CarrierState =
  | { stage: "idle" }
  | { stage: "helloSent"; clientNonce: Uint8Array }
  | { stage: "presentSent" }
  | { stage: "stopSent" }
  | { stage: "session"; sessionId: Uint8Array }
  | { stage: "done"; outcome: CarrierOutcome };

export type CarrierInput =
  | { kind: "start"; clientNonce: Uint8Array }
  | { kind: "message"; message: PileMessage }
  | { kind: "deadline" }
  | { kind: "disconnected" }
  | { kind: "link-error"; message: string }
  | { kind: "abort" };

export type CarrierAction =
  /** Write this message (the runner fragments it). */
  | { kind: "send"; message: Uint8Array }
  /** Settle the caller's promise; the exchange deadline no longer applies. */
  | { kind: "outcome"; outcome: CarrierOutcome }
  | { kind: "status"; status: Status }
  /** A message that has no place in this state; dropped (counted by the runner). */
  | { kind: "ignored"; message: PileMessage["type"] }
  /** Release the link's listeners: nothing more will happen. */
  | { kind: "end" };

export interface Step {
  state: CarrierState;
  actions: CarrierAction[];
}

const name = (code: number): ReasonName => reasonName(code) ?? "BAD_MESSAGE";

function finish(outcome: CarrierOutcome): Step {
  return { state: { stage: "done", outcome }, actions: [{ kind: "outcome", outcome }, { kind: "end" }] };
}

/** The carrier's decisions. Pure: the same inputs give the same outputs. */
export function carrierStep(p: ExchangeParams, state: CarrierState, input: CarrierInput): Step {
  const stay = (...actions: CarrierAction[]): Step => ({ state, actions });
  if (state.stage === "done") return stay();

  switch (input.kind) {
    case "start": {
      if (state.stage !== "idle") return stay();
      const hello = encodeMessage({
        type: "HELLO",
        version: PROTOCOL_VERSION,
        keyId: p.keyId,
        codeId: p.codeId,
        clientNonce: input.clientNonce,
      });
      return {
        state: { stage: "helloSent", clientNonce: input.clientNonce },
        actions: [{ kind: "send", message: hello }],
      };
    }
    case "deadline":
      return state.stage === "session" ? stay() : finish({ kind: "timeout", stage: state.stage });
    case "disconnected":
      return state.stage === "session"
        ? {
            state: { stage: "done", outcome: { kind: "disconnected", stage: "session" } },
            actions: [{ kind: "end" }],
          }
        : finish({ kind: "disconnected", stage: state.stage });
    case "link-error":
      return state.stage === "session"
        ? stay()
        : finish({ kind: "link-error", stage: state.stage, message: input.message });
    case "abort":
      return state.stage === "session"
        ? {
            state: { stage: "done", outcome: { kind: "aborted", stage: "session" } },
            actions: [{ kind: "end" }],
          }
        : finish({ kind: "aborted", stage: state.stage });
    case "message":
      return onMessage(p, state, input.message);
  }
}

function onMessage(p: ExchangeParams, state: Exclude<CarrierState, { stage: "done" }>, m: PileMessage): Step {
  const ignore: Step = { state, actions: [{ kind: "ignored", message: m.type }] };
  const stay = (...actions: CarrierAction[]): Step => ({ state, actions });
  switch (state.stage) {
    case "idle":
      return ignore;
    case "helloSent": {
      if (m.type === "ERROR") return finish({ kind: "error", reason: name(m.reason) });
      if (m.type !== "CHALLENGE") return ignore;
      const expected = pileProof(p.suite, p.verifySecret, p.codeId, state.clientNonce, m.pileNonce, p.pileId);
      if (!p.suite.timingSafeEqual(expected, m.pileProof)) return finish({ kind: "rogue-pile" });
      if (p.mode === "unlock" && p.code) {
        const proof = deviceProof(p.suite, p.verifySecret, p.codeId, m.pileNonce, state.clientNonce);
        return {
          state: { stage: "presentSent" },
          actions: [
            { kind: "send", message: encodeMessage({ type: "PRESENT", deviceProof: proof, code: p.code }) },
          ],
        };
      }
      const proof = stopProof(p.suite, p.verifySecret, p.codeId, m.pileNonce);
      return {
        state: { stage: "stopSent" },
        actions: [{ kind: "send", message: encodeMessage({ type: "STOP", stopProof: proof }) }],
      };
    }
    case "presentSent":
      if (m.type === "ERROR") return finish({ kind: "error", reason: name(m.reason) });
      if (m.type !== "RESULT") return ignore;
      if (m.reason === Reason.ACCEPTED && m.sessionId) {
        const outcome: CarrierOutcome = { kind: "accepted", sessionId: m.sessionId };
        return {
          state: { stage: "session", sessionId: m.sessionId },
          actions: [{ kind: "outcome", outcome }],
        };
      }
      return finish({ kind: "rejected", reason: name(m.reason) });
    case "stopSent":
      if (m.type === "STATUS") return stay({ kind: "status", status: m });
      if (m.type === "ERROR") return finish({ kind: "error", reason: name(m.reason) });
      if (m.type !== "RESULT") return ignore;
      return finish(
        m.reason === Reason.STOPPED ? { kind: "stopped" } : { kind: "rejected", reason: name(m.reason) },
      );
    case "session":
      if (m.type === "STATUS") return stay({ kind: "status", status: m });
      return ignore;
  }
}

/** Time and timers of the runner; defaults are the globals. Tests may use node:test mock timers. */
export interface RunnerClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const systemClock: RunnerClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export interface RunOptions {
  /** Deadline of the exchange, from HELLO to its RESULT; default 12 s. */
  timeoutMs?: number;
  suite?: CryptoSuite;
  /** STATUS notifications: after ACCEPTED until the link closes (or `signal` aborts), and during a STOP. */
  onStatus?: (s: Status) => void;
  /** Ends the exchange (outcome `aborted`), or, after ACCEPTED, the delivery of STATUS. */
  signal?: AbortSignal;
  clock?: RunnerClock;
}

export interface UnlockOptions extends RunOptions {
  code: Uint8Array;
  verifySecret: Uint8Array;
  pileId: string;
}

export interface StopOptions extends RunOptions {
  codeId: Uint8Array;
  keyId: number;
  verifySecret: Uint8Array;
  pileId: string;
}

/** Counters of what a run dropped, for diagnostics. */
export interface CarrierCounters {
  badFragments: number;
  badMessages: number;
  ignoredMessages: number;
}

function checkCommon(verifySecret: unknown, pileId: unknown): string | undefined {
  if (!(verifySecret instanceof Uint8Array) || verifySecret.length !== 32)
    return "verifySecret must be 32 bytes";
  if (typeof pileId !== "string") return "pileId must be a string";
  const n = utf8(pileId).length;
  if (n < 1 || n > MAX_ID_BYTES) return "pileId must be 1..64 bytes of UTF-8";
  return undefined;
}

/**
 * Unlocks a pile with a code: HELLO, check the pileProof, PRESENT, RESULT. Resolves with the
 * outcome (never rejects); after `accepted` keeps calling `onStatus` until the link closes.
 */
export function unlock(
  link: CarrierLink,
  opts: UnlockOptions,
  counters?: CarrierCounters,
): Promise<CarrierOutcome> {
  const bad = checkCommon(opts.verifySecret, opts.pileId);
  if (bad) return Promise.resolve({ kind: "bad-input", why: bad });
  if (!(opts.code instanceof Uint8Array))
    return Promise.resolve({ kind: "bad-input", why: "code must be bytes" });
  const header = opts.code.length <= MAX_CODE_LENGTH ? parseCodeHeader(opts.code) : undefined;
  if (!header)
    return Promise.resolve({
      kind: "bad-input",
      why: `code is not a v1 code of ${MIN_CODE_LENGTH}..${MAX_CODE_LENGTH} bytes`,
    });
  return run(
    link,
    {
      mode: "unlock",
      keyId: header.keyId,
      codeId: header.codeId,
      verifySecret: opts.verifySecret,
      pileId: opts.pileId,
      code: opts.code,
      suite: opts.suite ?? forgeSuite,
    },
    opts,
    counters,
  );
}

/** Stops the session of a code: HELLO, check the pileProof, STOP, RESULT (`stopped` on success). */
export function stop(
  link: CarrierLink,
  opts: StopOptions,
  counters?: CarrierCounters,
): Promise<CarrierOutcome> {
  const bad = checkCommon(opts.verifySecret, opts.pileId);
  if (bad) return Promise.resolve({ kind: "bad-input", why: bad });
  if (!(opts.codeId instanceof Uint8Array) || opts.codeId.length !== CODE_ID_LENGTH)
    return Promise.resolve({ kind: "bad-input", why: "codeId must be 16 bytes" });
  if (!Number.isInteger(opts.keyId) || opts.keyId < 0 || opts.keyId > 0xffffffff)
    return Promise.resolve({ kind: "bad-input", why: "keyId must be a whole number in 0..4294967295" });
  return run(
    link,
    {
      mode: "stop",
      keyId: opts.keyId,
      codeId: opts.codeId,
      verifySecret: opts.verifySecret,
      pileId: opts.pileId,
      suite: opts.suite ?? forgeSuite,
    },
    opts,
    counters,
  );
}

function run(
  link: CarrierLink,
  params: ExchangeParams,
  opts: RunOptions,
  counters: CarrierCounters = { badFragments: 0, badMessages: 0, ignoredMessages: 0 },
): Promise<CarrierOutcome> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!(Number.isFinite(timeoutMs) && timeoutMs > 0))
    return Promise.resolve({ kind: "bad-input", why: "timeoutMs must be a positive number" });
  if (opts.signal?.aborted) return Promise.resolve({ kind: "aborted", stage: "idle" });
  const clock = opts.clock ?? systemClock;
  const reasm = new Reassembler(link.mtu);
  let state: CarrierState = { stage: "idle" };
  let timer: unknown;
  let writes: Promise<void> = Promise.resolve();
  const unsubscribers: (() => void)[] = [];
  let settle!: (o: CarrierOutcome) => void;
  const result = new Promise<CarrierOutcome>((resolve) => {
    settle = resolve;
  });

  const end = () => {
    if (timer !== undefined) clock.clearTimeout(timer);
    timer = undefined;
    for (const u of unsubscribers.splice(0)) u();
  };

  const feed = (input: CarrierInput): void => {
    const step = carrierStep(params, state, input);
    state = step.state;
    for (const a of step.actions) {
      switch (a.kind) {
        case "send":
          for (const f of fragment(a.message, link.mtu)) {
            writes = writes.then(() =>
              state.stage === "done"
                ? undefined
                : link.write(f).catch((e: unknown) => {
                    feed({ kind: "link-error", message: e instanceof Error ? e.message : String(e) });
                  }),
            );
          }
          break;
        case "outcome":
          if (timer !== undefined) clock.clearTimeout(timer);
          timer = undefined;
          settle(a.outcome);
          break;
        case "status":
          try {
            opts.onStatus?.(a.status);
          } catch {
            // a failing listener must not break the link's event delivery
          }
          break;
        case "ignored":
          counters.ignoredMessages++;
          break;
        case "end":
          end();
          break;
      }
    }
  };

  unsubscribers.push(
    link.onNotify((frag) => {
      for (const o of reasm.push(frag, clock.now())) {
        if (o.kind === "error") counters.badFragments++;
        if (o.kind !== "message") continue;
        const m = decodePileMessage(o.message);
        if (m.ok) feed({ kind: "message", message: m.value });
        else counters.badMessages++;
      }
    }),
    link.onDisconnect(() => feed({ kind: "disconnected" })),
  );
  if (opts.signal) {
    const onAbort = () => feed({ kind: "abort" });
    const s = opts.signal;
    s.addEventListener("abort", onAbort, { once: true });
    unsubscribers.push(() => s.removeEventListener("abort", onAbort));
  }
  timer = clock.setTimeout(() => {
    timer = undefined;
    feed({ kind: "deadline" });
  }, timeoutMs);
  feed({ kind: "start", clientNonce: params.suite.randomBytes(NONCE16) });
  return result;
}
