/**
 * A small pile responder for carrier tests, built on src/protocol only: answers HELLO, PRESENT and
 * STOP on the pile side of a memory link, with switches for the misbehaviours a carrier must
 * survive (rogue key, wrong pile identity, silence, garbage fragments, dropped connection).
 */
import {
  type ClientMessage,
  checkClaims,
  decodeClientMessage,
  deriveVerifySecret,
  deviceProof,
  encodeMessage,
  KeyRing,
  openCode,
  pileProof,
  Reason,
  type ReasonCode,
  Reassembler,
  stopProof,
  toHex,
} from "../../src/protocol/index.js";
import { nodeSuite } from "../../src/protocol/node-suite.js";
import type { PileSide } from "../../src/sdk/memory-link.js";

export interface FakePileOptions {
  pileId: string;
  keys: { keyId: number; key: Uint8Array }[];
  now?: bigint;
  skewMs?: number;
  /** Computes pileProof with a key it does not hold (a pile without K). */
  rogueKey?: boolean;
  /** Claims this pile identity in the pileProof instead of its own. */
  proofPileId?: string;
  /** Never answers. */
  silent?: boolean;
  /** Notifies malformed fragments and undecodable messages before every answer. */
  garbage?: boolean;
  /** Drops the connection on the first HELLO. */
  dropOnHello?: boolean;
  /** STATUS messages to notify right after ACCEPTED. */
  statusesAfterAccept?: number;
  /** Answers STOP with FAULTED instead of STOPPED. */
  faultOnStop?: boolean;
}

interface Exchange {
  keyId: number;
  codeId: Uint8Array;
  clientNonce: Uint8Array;
  pileNonce: Uint8Array;
  v: Uint8Array;
  presented: boolean;
}

export class FakePile {
  readonly received: ClientMessage[] = [];
  readonly used = new Set<string>();
  activeCodeId: string | undefined;
  readonly #ring = new KeyRing(nodeSuite);
  readonly #reasm: Reassembler;
  #exchange: Exchange | undefined;

  constructor(
    private readonly side: PileSide,
    private readonly opts: FakePileOptions,
  ) {
    for (const k of opts.keys) this.#ring.add(k.keyId, k.key);
    this.#reasm = new Reassembler(side.mtu);
    side.onWrite((f) => this.#onWrite(f));
  }

  #send(m: Parameters<typeof encodeMessage>[0]): void {
    if (this.opts.garbage) {
      this.side.notify(new Uint8Array()); // empty fragment
      this.side.notify(Uint8Array.of(0x05, 1, 2, 3)); // index out of sequence
      this.side.notify(Uint8Array.of(0x80, 0x77)); // unknown type
      this.side.notify(Uint8Array.of(0x80, 0x82, 0x00)); // ACCEPTED without sessionId
    }
    this.side.send(encodeMessage(m));
  }

  #error(reason: ReasonCode): void {
    this.#send({ type: "ERROR", reason });
  }

  #onWrite(f: Uint8Array): void {
    for (const o of this.#reasm.push(f, 0)) {
      if (o.kind === "error") this.#error(Reason.BAD_MESSAGE);
      if (o.kind !== "message") continue;
      const m = decodeClientMessage(o.message);
      if (!m.ok) {
        this.#error(Reason.BAD_MESSAGE);
        continue;
      }
      this.received.push(m.value);
      if (!this.opts.silent) this.#handle(m.value);
    }
  }

  #handle(m: ClientMessage): void {
    switch (m.type) {
      case "HELLO": {
        if (this.opts.dropOnHello) {
          this.side.disconnect();
          return;
        }
        if (m.version !== 1) {
          this.#error(Reason.UNSUPPORTED_VERSION);
          return;
        }
        const key = this.#ring.get(m.keyId);
        if (!key) {
          this.#error(Reason.UNKNOWN_KEY);
          return;
        }
        const k = this.opts.rogueKey ? nodeSuite.randomBytes(32) : key.key;
        const v = deriveVerifySecret(nodeSuite, k, m.codeId);
        const pileNonce = nodeSuite.randomBytes(16);
        this.#exchange = {
          keyId: m.keyId,
          codeId: m.codeId,
          clientNonce: m.clientNonce,
          pileNonce,
          v,
          presented: false,
        };
        const proof = pileProof(
          nodeSuite,
          v,
          m.codeId,
          m.clientNonce,
          pileNonce,
          this.opts.proofPileId ?? this.opts.pileId,
        );
        this.#send({ type: "CHALLENGE", pileNonce, pileProof: proof });
        return;
      }
      case "PRESENT": {
        const x = this.#exchange;
        if (!x || x.presented) {
          this.#error(Reason.OUT_OF_ORDER);
          return;
        }
        x.presented = true;
        const expected = deviceProof(nodeSuite, x.v, x.codeId, x.pileNonce, x.clientNonce);
        if (!nodeSuite.timingSafeEqual(expected, m.deviceProof)) {
          this.#result(Reason.BAD_PROOF);
          return;
        }
        const opened = openCode(nodeSuite, this.#ring, m.code);
        if (!opened.ok) {
          this.#result(Reason[opened.error]);
          return;
        }
        const failure = checkClaims(opened.value, {
          pileId: this.opts.pileId,
          now: this.opts.now ?? BigInt(Date.now()),
          skewMs: this.opts.skewMs ?? 120_000,
          expect: { keyId: x.keyId, codeId: x.codeId },
        });
        if (failure) {
          this.#result(Reason[failure]);
          return;
        }
        const id = toHex(opened.value.codeId);
        if (this.used.has(id)) {
          this.#result(Reason.REPLAYED);
          return;
        }
        this.used.add(id);
        this.activeCodeId = id;
        this.#send({ type: "RESULT", reason: Reason.ACCEPTED, sessionId: nodeSuite.randomBytes(16) });
        for (let i = 0; i < (this.opts.statusesAfterAccept ?? 0); i++) {
          this.#send({ type: "STATUS", state: 3, energyWh: i * 10, powerW: 7000, elapsedS: i });
        }
        return;
      }
      case "STOP": {
        const x = this.#exchange;
        if (!x) {
          this.#error(Reason.OUT_OF_ORDER);
          return;
        }
        const expected = stopProof(nodeSuite, x.v, x.codeId, x.pileNonce);
        if (!nodeSuite.timingSafeEqual(expected, m.stopProof)) {
          this.#result(Reason.BAD_PROOF);
          return;
        }
        if (this.activeCodeId !== toHex(x.codeId)) {
          this.#result(Reason.OUT_OF_ORDER);
          return;
        }
        this.activeCodeId = undefined;
        this.#send({ type: "STATUS", state: 4, energyWh: 100, powerW: 0, elapsedS: 60 });
        this.#result(this.opts.faultOnStop ? Reason.FAULTED : Reason.STOPPED);
        return;
      }
    }
  }

  #result(reason: ReasonCode): void {
    this.#exchange = undefined;
    this.#send({ type: "RESULT", reason });
  }
}
