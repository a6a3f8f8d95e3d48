/**
 * The pilot MCU adapter: HELLO, heartbeat, SET, STATE events and counters over the bridge
 * protocol (firmware-bridge/PROTOCOL.md). It heartbeats the MCU, counts every bad line, emits the
 * pilot's state changes, and tells when the MCU goes silent or resets. The MCU removes its permit
 * on its own; this side only reports and asks.
 */
import { EventEmitter } from "node:events";
import { encodeFrame, LineDecoder } from "./frame.js";
import type { PilotLink } from "./link.js";
import {
  type McuCounters,
  type McuHello,
  type McuMessage,
  type PilotState,
  type PilotStatus,
  parseMessage,
} from "./messages.js";

export type PilotMcuErrorCode = "RANGE" | "REFUSED" | "TIMEOUT" | "CLOSED";

export class PilotMcuError extends Error {
  constructor(
    readonly code: PilotMcuErrorCode,
    message: string,
    /** The MCU's error name for REFUSED (ARG, RANGE, STATE, CMD). */
    readonly mcuError?: string,
  ) {
    super(message);
    this.name = "PilotMcuError";
  }
}

export interface PilotMcuOptions {
  link: PilotLink;
  /** Heartbeat period; 0 = none sent automatically. */
  heartbeatMs?: number;
  /** No valid line for this long = MCU lost. */
  silenceMs?: number;
  replyTimeoutMs?: number;
  now?: () => number;
}

export interface PilotMcuEvents {
  hello: [McuHello];
  /** An unasked HELLO: the MCU has reset (its cause inside); the permit is off. */
  reset: [McuHello];
  status: [PilotStatus];
  pilot: [PilotState, PilotState | undefined];
  lost: [];
  back: [];
  badLine: [string];
}

export interface PilotMcuStats {
  rxOk: number;
  rxBad: number;
  rxGap: number;
  /** Good frames whose body this side does not know. */
  rxUnknown: number;
  tx: number;
  timeouts: number;
}

type Want = "hello" | "state" | "counters" | null;
interface Pending {
  want: Want;
  got: McuMessage | undefined;
  resolve: (m: McuMessage | undefined) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class PilotMcu extends EventEmitter<PilotMcuEvents> {
  private readonly link: PilotLink;
  private readonly decoder = new LineDecoder();
  private readonly pending = new Map<number, Pending>();
  private readonly now: () => number;
  private readonly replyTimeoutMs: number;
  private readonly silenceMs: number;
  private readonly heartbeatMs: number;
  private seq = 0;
  private closed = false;
  private lostFlag = false;
  private lastRx: number;
  private timer: NodeJS.Timeout | undefined;
  private unsub: () => void;
  private unknown = 0;
  private sent = 0;
  private timeouts = 0;
  private lastStatus: PilotStatus | undefined;

  constructor(o: PilotMcuOptions) {
    super();
    this.link = o.link;
    this.now = o.now ?? (() => performance.now());
    this.replyTimeoutMs = o.replyTimeoutMs ?? 500;
    this.silenceMs = o.silenceMs ?? 1000;
    this.heartbeatMs = o.heartbeatMs ?? 100;
    this.lastRx = this.now();
    this.unsub = this.link.onLine((l) => this.onLine(l));
  }

  /**
   * Starts the heartbeat and the silence watch and asks the MCU who it is. An MCU that does not
   * answer is lost at once (the start rejects with TIMEOUT); the watch keeps running, so its first
   * good line is `back`.
   */
  async start(): Promise<McuHello> {
    if (!this.timer && !this.closed) {
      const period = this.heartbeatMs > 0 ? this.heartbeatMs : Math.max(10, this.silenceMs / 4);
      this.timer = setInterval(() => this.tick(), period);
      this.timer.unref();
    }
    try {
      return await this.hello();
    } catch (e) {
      if (e instanceof PilotMcuError && e.code === "TIMEOUT" && !this.lostFlag && !this.closed) {
        this.lostFlag = true;
        this.emit("lost");
      }
      throw e;
    }
  }

  get status(): PilotStatus | undefined {
    return this.lastStatus;
  }

  get lost(): boolean {
    return this.lostFlag;
  }

  get stats(): PilotMcuStats {
    const c = this.decoder.counters;
    return {
      rxOk: c.ok,
      rxBad: c.bad,
      rxGap: c.gap,
      rxUnknown: this.unknown,
      tx: this.sent,
      timeouts: this.timeouts,
    };
  }

  async hello(): Promise<McuHello> {
    const m = await this.request("HELLO", "hello");
    if (m?.kind !== "hello") throw new PilotMcuError("TIMEOUT", "no HELLO before the ACK");
    return m.hello;
  }

  /** Round trip in ms. */
  async heartbeat(): Promise<number> {
    const t0 = this.now();
    await this.request("HB", null);
    return this.now() - t0;
  }

  /** PWM at `amps` (6–80 A, 0.1 A steps), or `null` for the PWM off (steady +12 V). */
  async setCurrent(amps: number | null): Promise<void> {
    if (amps === null) {
      await this.request("SET 0 0", null);
      return;
    }
    const da = Math.round(amps * 10);
    if (!Number.isFinite(amps) || da < 60 || da > 800) {
      throw new PilotMcuError("RANGE", `current ${amps} A outside 6–80 A`);
    }
    await this.request(`SET 1 ${da}`, null);
  }

  /** The MCU's heartbeat limit (50–10000 ms). */
  async setHeartbeatLimit(ms: number): Promise<void> {
    if (!Number.isInteger(ms) || ms < 50 || ms > 10000)
      throw new PilotMcuError("RANGE", `heartbeat limit ${ms} ms`);
    await this.request(`CFG ${ms}`, null);
  }

  /** The relay-test permit: the MCU grants it only in state A with the PWM off. */
  async relayTest(on: boolean): Promise<void> {
    await this.request(`TEST ${on ? 1 : 0}`, null);
  }

  async readStatus(): Promise<PilotStatus> {
    const m = await this.request("GET", "state");
    if (m?.kind !== "state") throw new PilotMcuError("TIMEOUT", "no STATE before the ACK");
    return m.status;
  }

  async counters(): Promise<McuCounters> {
    const m = await this.request("CNT", "counters");
    if (m?.kind !== "counters") throw new PilotMcuError("TIMEOUT", "no CNT before the ACK");
    return m.counters;
  }

  /** Sends raw text as it is (tests: garbage and bad frames toward the MCU). */
  sendRaw(text: string): boolean {
    return this.link.write(text);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.unsub();
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new PilotMcuError("CLOSED", "adapter closed"));
    }
    this.pending.clear();
    await this.link.close();
  }

  private request(body: string, want: Want): Promise<McuMessage | undefined> {
    if (this.closed) return Promise.reject(new PilotMcuError("CLOSED", "adapter closed"));
    const seq = this.seq;
    this.seq = (this.seq + 1) & 0xff;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(seq);
        this.timeouts++;
        reject(
          new PilotMcuError("TIMEOUT", `no reply to ${body.split(" ")[0]} in ${this.replyTimeoutMs} ms`),
        );
      }, this.replyTimeoutMs);
      this.pending.get(seq)?.reject(new PilotMcuError("TIMEOUT", "sequence reused"));
      this.pending.set(seq, { want, got: undefined, resolve, reject, timer });
      if (!this.link.write(encodeFrame(seq, body))) {
        clearTimeout(timer);
        this.pending.delete(seq);
        reject(new PilotMcuError("CLOSED", "link not open"));
        return;
      }
      this.sent++;
    });
  }

  private tick(): void {
    if (this.closed) return;
    if (!this.lostFlag && this.now() - this.lastRx > this.silenceMs) {
      this.lostFlag = true;
      this.emit("lost");
    }
    if (this.heartbeatMs > 0) this.heartbeat().catch(() => {});
  }

  private onLine(line: Uint8Array): void {
    for (const d of this.decoder.decode(line)) {
      if (!d.ok) {
        this.emit("badLine", d.reason);
        continue;
      }
      this.lastRx = this.now();
      if (this.lostFlag) {
        this.lostFlag = false;
        this.emit("back");
      }
      const m = parseMessage(d.body);
      if (!m) {
        this.unknown++;
        continue;
      }
      this.onMessage(m);
    }
  }

  private onMessage(m: McuMessage): void {
    if (m.kind === "ack") {
      const p = this.pending.get(m.seq);
      if (!p) return;
      this.pending.delete(m.seq);
      clearTimeout(p.timer);
      if (m.error) p.reject(new PilotMcuError("REFUSED", `MCU refused: ${m.error}`, m.error));
      else p.resolve(p.got);
      return;
    }
    const asked = [...this.pending.values()].find((p) => p.want === m.kind && !p.got);
    if (asked) asked.got = m;
    if (m.kind === "hello") {
      this.emit("hello", m.hello);
      if (!asked) this.emit("reset", m.hello);
    } else if (m.kind === "state") {
      const prev = this.lastStatus?.state;
      this.lastStatus = m.status;
      this.emit("status", m.status);
      if (prev !== m.status.state) this.emit("pilot", m.status.state, prev);
    }
  }
}
