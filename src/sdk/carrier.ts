/**
 * The carrier client (PROTOCOL.md §3): what the vehicle device or the owner's phone runs to unlock
 * a pile with a code, and to stop the session. Two parts:
 *
 * - `carrierStep` (carrier-step.ts, re-exported here): the pure decision logic, state + input →
 *   state + actions. No timers, no I/O; the only computation is HMAC through the injected suite.
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
import { decodePileMessage, NONCE16, type Status } from "../protocol/messages.js";
import type { CryptoSuite } from "../protocol/suite.js";
import {
  type CarrierInput,
  type CarrierOutcome,
  type CarrierState,
  carrierStep,
  DEFAULT_TIMEOUT_MS,
  type ExchangeParams,
} from "./carrier-step.js";
import { forgeSuite } from "./forge-suite.js";
import type { CarrierLink } from "./transport.js";

export type { Status } from "../protocol/messages.js";

export * from "./carrier-step.js";

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

/** The link's notifications, reassembled and decoded into the machine's inputs. */
function notifications(
  link: CarrierLink,
  clock: RunnerClock,
  counters: CarrierCounters,
  feed: (input: CarrierInput) => void,
): () => void {
  const reasm = new Reassembler(link.mtu);
  return link.onNotify((frag) => {
    for (const o of reasm.push(frag, clock.now())) {
      if (o.kind === "error") counters.badFragments++;
      if (o.kind !== "message") continue;
      const m = decodePileMessage(o.message);
      if (m.ok) feed({ kind: "message", message: m.value });
      else counters.badMessages++;
    }
  });
}

/** The caller's abort signal as the machine's input; gives the unsubscribe. */
function onAbort(s: AbortSignal, feed: (input: CarrierInput) => void): () => void {
  const abort = () => feed({ kind: "abort" });
  s.addEventListener("abort", abort, { once: true });
  return () => s.removeEventListener("abort", abort);
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
    notifications(link, clock, counters, feed),
    link.onDisconnect(() => feed({ kind: "disconnected" })),
  );
  if (opts.signal) unsubscribers.push(onAbort(opts.signal, feed));
  timer = clock.setTimeout(() => {
    timer = undefined;
    feed({ kind: "deadline" });
  }, timeoutMs);
  feed({ kind: "start", clientNonce: params.suite.randomBytes(NONCE16) });
  return result;
}
