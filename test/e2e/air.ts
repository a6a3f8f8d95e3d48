/**
 * The carrier side of the end-to-end tests: carriers and a raw client in the test process, each
 * on its own controller of the emulated radio, talking to the daemon (another process) over the
 * air. Not a test file itself.
 */
import assert from "node:assert/strict";
import { NobleCentral } from "../../src/hw/ble/central.js";
import { fragment, Reassembler } from "../../src/protocol/fragments.js";
import {
  decodePileMessage,
  encodeMessage,
  type PileMessage,
  type Status,
} from "../../src/protocol/messages.js";
import { deviceProof, pileProof } from "../../src/protocol/proofs.js";
import { type ReasonName, reasonName } from "../../src/protocol/reasons.js";
import { type CarrierOutcome, stop, unlock } from "../../src/sdk/carrier.js";
import { forgeSuite } from "../../src/sdk/forge-suite.js";
import type { IssuedCode } from "../../src/sdk/issuer.js";
import type { CarrierLink } from "../../src/sdk/transport.js";
import type { PileProc } from "../helpers/pile-proc.js";

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A central on a fresh bridge of the pile's radio; closed (central, then bridge) by `close`. */
export async function central(
  pile: PileProc,
  opts: { mtu?: number; supervisionMs?: number } = {},
): Promise<{ central: NobleCentral; close: () => Promise<void> }> {
  const bridge = await pile.bridge();
  const c = new NobleCentral({ controller: { kind: "uart", path: bridge.path }, ...opts });
  return {
    central: c,
    close: async () => {
      await c.close().catch(() => undefined);
      await bridge.close();
    },
  };
}

/** Counters of the pile that a case compares before and after. */
export function counter(s: { counters: Record<string, number> }, name: string): number {
  return s.counters[name] ?? 0;
}

/** A carrier's unlock over a fresh connection; STATUS notifications are collected. */
export async function unlockOver(
  c: NobleCentral,
  code: IssuedCode,
  opts: { pileId?: string; verifySecret?: Uint8Array; timeoutMs?: number; connectTimeoutMs?: number } = {},
): Promise<{ link: CarrierLink; outcome: CarrierOutcome; statuses: Status[]; stopStatus: () => void }> {
  const link = await c.connect(opts.pileId ?? code.pileId, { timeoutMs: opts.connectTimeoutMs ?? 10_000 });
  const statuses: Status[] = [];
  const abort = new AbortController();
  const outcome = await unlock(link, {
    code: code.code,
    verifySecret: opts.verifySecret ?? code.verifySecret,
    pileId: opts.pileId ?? code.pileId,
    timeoutMs: opts.timeoutMs ?? 12_000,
    onStatus: (s) => statuses.push(s),
    signal: abort.signal,
  });
  return { link, outcome, statuses, stopStatus: () => abort.abort() };
}

/** STOP of a code's session over `link` (a new HELLO, then STOP). */
export function stopOver(link: CarrierLink, code: IssuedCode, onStatus?: (s: Status) => void) {
  return stop(link, {
    codeId: code.codeId,
    keyId: code.keyId,
    verifySecret: code.verifySecret,
    pileId: code.pileId,
    timeoutMs: 12_000,
    ...(onStatus ? { onStatus } : {}),
  });
}

export function assertOutcome(o: CarrierOutcome, kind: CarrierOutcome["kind"], reason?: ReasonName): void {
  assert.equal(o.kind, kind, `outcome ${JSON.stringify(o)}`);
  if (reason !== undefined) assert.equal((o as { reason?: string }).reason, reason, JSON.stringify(o));
}

/**
 * A client that writes whatever it is told (no carrier logic): HELLO, PRESENT with any proof,
 * single fragments, garbage. Pile messages are queued as they arrive.
 */
export class RawClient {
  readonly #reasm: Reassembler;
  readonly #queue: PileMessage[] = [];
  #wake: (() => void) | undefined;
  readonly #off: () => void;
  badFragments = 0;

  constructor(readonly link: CarrierLink) {
    this.#reasm = new Reassembler(link.mtu);
    this.#off = link.onNotify((f) => {
      for (const o of this.#reasm.push(f, Date.now())) {
        if (o.kind === "error") this.badFragments++;
        if (o.kind !== "message") continue;
        const m = decodePileMessage(o.message);
        if (m.ok) this.#queue.push(m.value);
      }
      this.#wake?.();
    });
  }

  static async connect(c: NobleCentral, pileId: string): Promise<RawClient> {
    return new RawClient(await c.connect(pileId, { timeoutMs: 10_000 }));
  }

  /** Writes one message, fragmented at the link MTU. */
  async send(message: Uint8Array): Promise<void> {
    for (const f of fragment(message, this.link.mtu)) await this.link.write(f);
  }

  write(frag: Uint8Array): Promise<void> {
    return this.link.write(frag);
  }

  /** The next pile message other than STATUS (unless `withStatus`), or undefined at the deadline. */
  async next(timeoutMs = 5000, withStatus = false): Promise<PileMessage | undefined> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const i = this.#queue.findIndex((m) => withStatus || m.type !== "STATUS");
      if (i >= 0) return this.#queue.splice(i, 1)[0];
      const left = end - Date.now();
      if (left <= 0) return undefined;
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.#wake = () => {
          clearTimeout(t);
          r();
        };
      });
      this.#wake = undefined;
    }
  }

  /** Every non-STATUS message that arrives within `ms`. */
  async drain(ms: number): Promise<PileMessage[]> {
    const out: PileMessage[] = [];
    const end = Date.now() + ms;
    for (;;) {
      const m = await this.next(Math.max(0, end - Date.now()));
      if (!m) return out;
      out.push(m);
    }
  }

  /** HELLO for a code; resolves with the CHALLENGE (or whatever came instead). */
  async hello(code: { keyId: number; codeId: Uint8Array }): Promise<{
    clientNonce: Uint8Array;
    answer: PileMessage | undefined;
  }> {
    const clientNonce = new Uint8Array(forgeSuite.randomBytes(16));
    await this.send(
      encodeMessage({ type: "HELLO", version: 1, keyId: code.keyId, codeId: code.codeId, clientNonce }),
    );
    return { clientNonce, answer: await this.next() };
  }

  /**
   * HELLO then PRESENT of `code` with the deviceProof made from `verifySecret` (the real V or
   * not); with no V at all the proof is random bytes, as a sniffer without V must send.
   */
  async present(code: IssuedCode, verifySecret: Uint8Array | undefined): Promise<PileMessage | undefined> {
    const { clientNonce, answer } = await this.hello(code);
    assert.equal(answer?.type, "CHALLENGE", `HELLO answered ${describe(answer)}`);
    if (answer?.type !== "CHALLENGE") return answer;
    const proof = verifySecret
      ? deviceProof(forgeSuite, verifySecret, code.codeId, answer.pileNonce, clientNonce)
      : new Uint8Array(forgeSuite.randomBytes(32));
    await this.send(encodeMessage({ type: "PRESENT", deviceProof: proof, code: code.code }));
    return this.next();
  }

  /** Whether the CHALLENGE proves the pile holds the key of `code` (as a carrier checks). */
  static challengeVerifies(
    code: IssuedCode,
    clientNonce: Uint8Array,
    challenge: PileMessage | undefined,
  ): boolean {
    if (challenge?.type !== "CHALLENGE") return false;
    const want = pileProof(
      forgeSuite,
      code.verifySecret,
      code.codeId,
      clientNonce,
      challenge.pileNonce,
      code.pileId,
    );
    return forgeSuite.timingSafeEqual(want, challenge.pileProof);
  }

  async close(): Promise<void> {
    this.#off();
    await this.link.close();
  }
}

export function describe(m: PileMessage | undefined): string {
  if (!m) return "nothing";
  if (m.type === "RESULT" || m.type === "ERROR") return `${m.type} ${reasonName(m.reason) ?? m.reason}`;
  return m.type;
}

/** Asserts a RESULT or ERROR with the given reason. */
export function assertAnswer(m: PileMessage | undefined, type: "RESULT" | "ERROR", reason: ReasonName): void {
  assert.equal(describe(m), `${type} ${reason}`);
}
