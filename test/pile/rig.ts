/**
 * Test rig for the pile core: a tiny issuer (real codes and proofs through the node suite), an
 * in-memory ledger, fake monotonic and wall time, and a carrier that speaks §3 through the core.
 */
import { randomBytes } from "node:crypto";
import {
  type BootFeedback,
  defaultPileCoreConfig,
  type LedgerView,
  PileCore,
  type PileCoreConfig,
  type PileEffect,
  type PileInput,
} from "../../src/pile/index.js";
import {
  type CodeClaims,
  decodePileMessage,
  deriveVerifySecret,
  deviceProof,
  encodeMessage,
  KeyRing,
  type PileMessage,
  pileProof,
  sealCode,
  stopProof,
  toHex,
} from "../../src/protocol/index.js";
import { nodeSuite } from "../../src/protocol/node-suite.js";

export const PILE_ID = "PILE-7";
export const KEY_ID = 0x0a0b0c0d;
export const KEY = new Uint8Array(32).map((_, i) => i * 7 + 1);
/** 2024-06-01T00:00:00Z */
export const T0 = 1_717_200_000_000;

export function keyRing(): KeyRing {
  const ring = new KeyRing(nodeSuite);
  ring.add(KEY_ID, KEY);
  return ring;
}

export interface Issued {
  code: Uint8Array;
  codeId: Uint8Array;
  keyId: number;
  v: Uint8Array;
  claims: CodeClaims;
}

/** Issues a real code the way the platform does. */
export function issue(over: Partial<CodeClaims> & { keyId?: number; key?: Uint8Array } = {}): Issued {
  const keyId = over.keyId ?? KEY_ID;
  const ring = new KeyRing(nodeSuite);
  const entry = ring.add(keyId, over.key ?? KEY);
  const claims: CodeClaims = {
    issuedAt: over.issuedAt ?? BigInt(T0),
    validFor: over.validFor ?? 3600,
    maxEnergyWh: over.maxEnergyWh ?? 0,
    maxDurationS: over.maxDurationS ?? 0,
    carrier: over.carrier ?? "vehicle",
    deviceId: over.deviceId ?? "VIN-TEST-0001",
    pileId: over.pileId ?? PILE_ID,
  };
  const codeId = new Uint8Array(randomBytes(16));
  const sealed = sealCode(nodeSuite, entry, codeId, new Uint8Array(randomBytes(12)), claims);
  if (!sealed.ok) throw new Error(`cannot issue: ${sealed.error}`);
  return { code: sealed.value, codeId, keyId, v: deriveVerifySecret(nodeSuite, entry.key, codeId), claims };
}

export class MemoryLedger implements LedgerView {
  readonly used = new Set<string>();
  reads = 0;
  isUsed(codeId: Uint8Array): boolean {
    this.reads++;
    return this.used.has(toHex(codeId));
  }
}

/** Deterministic "random" bytes, so tests can replay a run. */
export function counterRandom(): (n: number) => Uint8Array {
  let k = 0;
  return (n) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = (k * 31 + i * 17 + 5) & 0xff;
    k++;
    return out;
  };
}

type NoTime<T> = T extends unknown ? Omit<T, "mono" | "wall"> : never;
export type Feed = NoTime<PileInput>;

export const healthyBoot: BootFeedback = {
  contactorClosed: false,
  lockEngaged: false,
  vehicle: true,
  emergencyStop: false,
};

export class Rig {
  readonly core: PileCore;
  readonly ledger = new MemoryLedger();
  readonly cfg: PileCoreConfig;
  mono = 1000;
  wall: number | undefined = T0 + 60_000;
  /** Every effect the core returned, in order. */
  readonly log: PileEffect[] = [];
  /** Every batch with the input that produced it. */
  readonly batches: { input: Feed; effects: PileEffect[] }[] = [];
  energyWh = 10_000;

  constructor(cfg: Partial<PileCoreConfig> = {}) {
    this.cfg = { ...defaultPileCoreConfig, pileId: PILE_ID, ...cfg };
    this.core = new PileCore(this.cfg, {
      suite: nodeSuite,
      keys: keyRing(),
      ledger: this.ledger,
      random: counterRandom(),
    });
  }

  feed(input: Feed): PileEffect[] {
    const full = { ...input, mono: this.mono, wall: this.wall } as PileInput;
    const effects = this.core.handle(full);
    this.log.push(...effects);
    this.batches.push({ input, effects });
    return effects;
  }

  /** Advances fake monotonic time (and the wall clock with it) and ticks. */
  advance(ms: number): PileEffect[] {
    this.mono += ms;
    if (this.wall !== undefined) this.wall += ms;
    return this.feed({ type: "tick" });
  }

  /** Boots on healthy feedback and gives the meter a fresh reading. */
  boot(feedback: Partial<BootFeedback> = {}, floor = 0n): PileEffect[] {
    const fx = this.feed({ type: "boot", feedback: { ...healthyBoot, ...feedback }, floor });
    this.meter();
    return fx;
  }

  meter(energyWh = this.energyWh, powerW = 7000): PileEffect[] {
    this.energyWh = energyWh;
    return this.feed({
      type: "meterReading",
      reading: { energyImportWh: energyWh, powerW, takenAt: this.mono },
    });
  }

  /** Messages sent to one connection so far. */
  sent(connId: string): PileMessage[] {
    return this.log.flatMap((e) => (e.type === "send" && e.connId === connId ? [e.message] : []));
  }

  state(): string {
    return this.core.snapshot().state;
  }

  /** Recorded codes, acknowledged as written (the daemon's part). */
  ackRecord(effects: PileEffect[], ok = true): PileEffect[] {
    const rec = effects.find((e) => e.type === "recordCode");
    if (rec?.type !== "recordCode") return [];
    if (ok) this.ledger.used.add(toHex(rec.codeId));
    return this.feed({ type: "codeRecorded", codeId: rec.codeId, ok });
  }

  /** A whole healthy start: HELLO, PRESENT, record, lock confirmed, contactor confirmed. */
  startCharging(issued: Issued = issue(), connId = "c1"): { carrier: Carrier; sessionId: Uint8Array } {
    const carrier = new Carrier(this, connId, issued);
    this.feed({ type: "connected", connId });
    carrier.hello();
    const fx = carrier.present();
    const acked = this.ackRecord(fx);
    const result = acked.find((e) => e.type === "send" && e.message.type === "RESULT");
    if (result?.type !== "send" || result.message.type !== "RESULT" || !result.message.sessionId)
      throw new Error(`session not accepted: ${JSON.stringify(carrier.lastReason())}`);
    this.feed({ type: "lockFeedback", engaged: true });
    this.feed({ type: "contactorFeedback", closed: true });
    if (this.state() !== "CHARGING") throw new Error(`not charging: ${this.state()}`);
    return { carrier, sessionId: result.message.sessionId };
  }
}

/** A carrier (vehicle device or phone) holding a code and its V. */
export class Carrier {
  clientNonce = new Uint8Array(16).fill(0x33);
  pileNonce: Uint8Array | undefined;
  /** Whether the last CHALLENGE's pileProof verified. */
  pileAuthentic = false;

  constructor(
    readonly rig: Rig,
    readonly connId: string,
    readonly issued: Issued,
  ) {}

  send(bytes: Uint8Array): PileEffect[] {
    return this.rig.feed({ type: "message", connId: this.connId, bytes });
  }

  hello(over: { version?: number; keyId?: number; codeId?: Uint8Array } = {}): PileEffect[] {
    this.clientNonce = new Uint8Array(randomBytes(16));
    const fx = this.send(
      encodeMessage({
        type: "HELLO",
        version: over.version ?? 1,
        keyId: over.keyId ?? this.issued.keyId,
        codeId: over.codeId ?? this.issued.codeId,
        clientNonce: this.clientNonce,
      }),
    );
    for (const e of fx) {
      if (e.type === "send" && e.connId === this.connId && e.message.type === "CHALLENGE") {
        // The wire bytes, as a real carrier would see them.
        const m = decodePileMessage(encodeMessage(e.message));
        if (!m.ok || m.value.type !== "CHALLENGE") throw new Error("bad CHALLENGE");
        this.pileNonce = m.value.pileNonce;
        const expect = pileProof(
          nodeSuite,
          this.issued.v,
          over.codeId ?? this.issued.codeId,
          this.clientNonce,
          m.value.pileNonce,
          PILE_ID,
        );
        this.pileAuthentic = toHex(expect) === toHex(m.value.pileProof);
      }
    }
    return fx;
  }

  present(over: { proof?: Uint8Array; code?: Uint8Array } = {}): PileEffect[] {
    const nonce = this.pileNonce ?? new Uint8Array(16);
    const proof =
      over.proof ?? deviceProof(nodeSuite, this.issued.v, this.issued.codeId, nonce, this.clientNonce);
    return this.send(
      encodeMessage({ type: "PRESENT", deviceProof: proof, code: over.code ?? this.issued.code }),
    );
  }

  stop(over: { proof?: Uint8Array } = {}): PileEffect[] {
    const nonce = this.pileNonce ?? new Uint8Array(16);
    const proof = over.proof ?? stopProof(nodeSuite, this.issued.v, this.issued.codeId, nonce);
    return this.send(encodeMessage({ type: "STOP", stopProof: proof }));
  }

  /** The last RESULT or ERROR this carrier got, as { type, reason }. */
  lastReason(): { type: string; reason: number } | undefined {
    const msgs = this.rig.sent(this.connId).filter((m) => m.type === "RESULT" || m.type === "ERROR");
    const m = msgs[msgs.length - 1];
    return m && (m.type === "RESULT" || m.type === "ERROR") ? { type: m.type, reason: m.reason } : undefined;
  }
}

/** Effects of a batch as short strings: "contactor:false", "send:c1:RESULT:17", "fault:WELD"… */
export function brief(effects: PileEffect[]): string[] {
  return effects.flatMap((e) => {
    switch (e.type) {
      case "contactor":
        return [`contactor:${e.closed}`];
      case "lock":
        return [`lock:${e.engaged}`];
      case "send": {
        const m = e.message;
        const detail =
          m.type === "RESULT" || m.type === "ERROR"
            ? `:${m.reason}`
            : m.type === "STATUS"
              ? `:${m.state}`
              : "";
        return [`send:${e.connId}:${m.type}${detail}`];
      }
      case "fault":
        return [`fault:${e.code}`];
      case "state":
        return [`state:${e.state}`];
      case "sessionEnded":
        return [`sessionEnded:${e.record.stopReason}`];
      case "log":
        return [];
      default:
        return [e.type];
    }
  });
}
