/**
 * The pile's pure core: verification exchange (PROTOCOL.md §3), code checks (§2), rate limit,
 * time floor, replay rules, session state machine, interlocks and fail-safes (DESIGN.md).
 *
 * Contract with the daemon
 * ------------------------
 * - Construct one `PileCore(cfg, { suite, keys, ledger, random })`. It does no I/O, reads no
 *   clock and has no timers: every input carries `mono` (monotonic ms, non-decreasing) and,
 *   where the daemon has it, `wall` (Unix ms from the board clock; needed on BLE messages).
 * - `handle(input)` never throws. It returns the effects to perform, IN ORDER: outputs towards
 *   their safe state first (`contactor` open, then `lock` engaged; at most one of each per
 *   batch), then durable records (`recordCode`, `sessionStarted`, `sessionUpdate`,
 *   `sessionEnded`), then a `contactor` closing, then `send`s, then a `lock` releasing, then notices (`fault`, `faultCleared`, `state`, `relayTestDone`, `rejected`) and
 *   `log`s. A lock never lets a plug go before the session's end is written and the carrier told.
 *   Perform them one after the other; a failed output write is a fault the daemon reports by
 *   feeding the feedback it reads (the core's deadlines turn silence into a fault).
 * - Feed first `boot`, with the feedback lines read at start, the time floor from the store and
 *   the session the store found open (closed as INTERRUPTED). Nothing else is accepted before.
 *   Its first effect drives the contactor open; the lock follows `lockSafeState`, but is only
 *   released once the contactor reads open (a weld keeps it engaged).
 * - Feed every change of the plant: `contactorFeedback`, `lockFeedback`, `vehicle`,
 *   `emergencyStop`, `meterReading` (each poll, `takenAt` = monotonic ms of the reply) and
 *   `meterError`. Feedback must be fed after the daemon performed the command it answers.
 * - Feed BLE traffic per connection id: `connected`, `message` (one reassembled message's bytes;
 *   garbage is answered ERROR BAD_MESSAGE), `fragmentError` (the reassembler's error outcome),
 *   `disconnected`. `send` effects carry a `PileMessage`: encode, fragment at the connection's
 *   MTU, notify. A `send` to a connection that is gone is dropped.
 * - `recordCode` is durable: write the code id to the ledger (with its carrier and device, and
 *   raise the stored time floor to `issuedAt`) and open its `session` record, in ONE transaction,
 *   then feed `{ type: "codeRecorded", codeId, ok }`. Nothing moves before that: the RESULT
 *   ACCEPTED and the lock come with the acknowledgement (`sessionStarted` is then a notice). Without
 *   it within `recordTimeoutMs` the PRESENT is answered RESULT FAULTED.
 * - `sessionEnded` is durable and always precedes the RESULT/STATUS it explains in its batch, and
 *   the lock's release. A STATUS never carries more energy than the records before it hold.
 * - Call `nextDeadline()` after each batch and feed `{ type: "tick" }` at (or after) that
 *   monotonic time. Any input also fires the deadlines it passed, each at its own time.
 * - `snapshot()` is JSON-safe (ids hex, times as strings) for INFO, STATUS and the console;
 *   `infoMessage(snapshot, keyIds)` builds the Info characteristic's value.
 * - Keys, verification secrets and proofs never appear in an effect or a snapshot.
 *
 * Refusals of a technician command or of a malformed input come back as a `rejected` effect with
 * a `PileCoreErrorCode`; nothing changes then. PRESENT preconditions are answered as
 * BUSY (session running or being set up, pile booting, finishing or testing its relay),
 * FAULTED (fault latched, UNAVAILABLE for maintenance, emergency stop, meter silent, or the
 * store failing the code record), NO_VEHICLE (vehicle sense reads absent; cannot tell = pass).
 * A session's duration limit counts from the moment the contactor is commanded closed.
 */
export {
  deadlineFields,
  defaultPileCoreConfig,
  lockSafeStateSchema,
  meterFresh,
  type PileCoreConfig,
  type PileCoreConfigInput,
  parsePileCoreConfig,
  pileCoreConfigSchema,
  pileIdSchema,
  skewMsSchema,
  statusIntervalMsSchema,
} from "./config.js";
export { type LedgerView, PileCore, type PileCoreDeps, validateInput } from "./core.js";
export { EFFECT_ORDER, type EffectRank, effectRank } from "./effects.js";
export { contactorInterlocks, type Interlock, type InterlockFacts, mayCloseContactor } from "./guard.js";
export { infoBytes, infoMessage } from "./info.js";
export { pileInputSchema } from "./input.js";
export {
  ProofFailureWatch,
  type ProofPolicy,
  type ProofWatchSnapshot,
  protocolProofPolicy,
} from "./rate-limit.js";
export { TimeFloor } from "./time-floor.js";
export {
  INPUT_KINDS,
  type InputKind,
  inputKind,
  PHASES,
  TRANSITIONS,
  type Transition,
  transition,
} from "./transitions.js";
export * from "./types.js";
