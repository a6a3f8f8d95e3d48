import { encodeMessage, type PileMessage, PROTOCOL_VERSION, type Status } from "../protocol/messages.js";
import { deviceProof, pileProof, stopProof } from "../protocol/proofs.js";
import { Reason, type ReasonName, reasonName } from "../protocol/reasons.js";
import type { CryptoSuite } from "../protocol/suite.js";

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
