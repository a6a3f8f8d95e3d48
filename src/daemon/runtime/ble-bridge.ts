/**
 * The BLE bridge: the peripheral's connections and Control writes reassembled into messages for
 * the core, the core's messages fragmented back at each connection's MTU, and the radio's state.
 */
import type { BleConnection, BlePeripheral } from "../../hw/ports.js";
import { infoBytes, type PileSnapshot } from "../../pile/index.js";
import { encodeMessage, type FragmentFault, fragment, Reassembler } from "../../protocol/index.js";
import { traceFrame } from "../log.js";
import type { LoopContext } from "./context.js";

interface ConnEntry {
  conn: BleConnection;
  reassembler: Reassembler;
}

export class BleBridge {
  state: "up" | "down" | "disabled";
  /** Resolves once the radio has been up (at once without BLE). */
  readonly up: Promise<void>;
  readonly #ctx: LoopContext;
  readonly #snapshot: () => PileSnapshot;
  readonly #conns = new Map<string, ConnEntry>();
  readonly #log: LoopContext["log"];
  #upResolve: () => void = () => {};
  /** Partial messages expired on connections that are gone. */
  #expiredGone = 0;

  constructor(ctx: LoopContext, snapshot: () => PileSnapshot) {
    this.#ctx = ctx;
    this.#snapshot = snapshot;
    this.#log = ctx.parts.log.child({ component: "ble" });
    this.state = ctx.parts.ble ? "down" : "disabled";
    this.up = new Promise((r) => {
      this.#upResolve = r;
    });
  }

  async start(): Promise<void> {
    const ble = this.#ctx.parts.ble;
    if (ble) await this.#start(ble);
    else this.#upResolve();
  }

  async #start(ble: BlePeripheral): Promise<void> {
    const { parts, feed, count } = this.#ctx;
    const log = this.#log;
    await ble.start({
      info: () => infoBytes(this.#snapshot(), parts.keys.ids()),
      connect: (conn) => {
        this.#conns.set(conn.id, { conn, reassembler: new Reassembler(conn.mtu) });
        count("ble.connections");
        log.info({ conn: conn.id }, "central connected");
        void feed({ type: "connected", connId: conn.id });
      },
      write: (conn, data) => this.#write(conn, data),
      disconnect: (conn) => {
        this.#expiredGone += this.#conns.get(conn.id)?.reassembler.expired ?? 0;
        this.#conns.delete(conn.id);
        log.info({ conn: conn.id }, "central disconnected");
        void feed({ type: "disconnected", connId: conn.id });
      },
      radio: (state, detail) => {
        this.state = state;
        void feed({ type: "radio", up: state === "up" });
        if (state === "up") {
          log.info({ detail }, "radio up, advertising");
          this.#upResolve();
        } else log.warn({ detail }, "radio down");
      },
    });
  }

  #write(conn: BleConnection, data: Uint8Array): void {
    const { parts, feed, count } = this.#ctx;
    const entry = this.#conns.get(conn.id);
    if (!entry) return;
    entry.reassembler.setMtu(conn.mtu);
    for (const out of entry.reassembler.push(data, parts.clock.monotonic())) {
      if (out.kind === "message") {
        traceFrame(this.#log, "rx", out.message, { conn: conn.id });
        void feed({ type: "message", connId: conn.id, bytes: out.message });
      } else if (out.kind === "error") {
        count(`ble.fragment.${out.why as FragmentFault}`);
        void feed({ type: "fragmentError", connId: conn.id });
      } else if (out.kind === "dropped") count("ble.fragment.dropped");
    }
  }

  /** Partial messages the reassemblers let expire, over every connection so far. */
  fragmentsExpired(): number {
    let n = this.#expiredGone;
    for (const e of this.#conns.values()) n += e.reassembler.expired;
    return n;
  }

  send(connId: string, message: Parameters<typeof encodeMessage>[0]): void {
    const entry = this.#conns.get(connId);
    if (!entry) return;
    const bytes = encodeMessage(message);
    this.#ctx.count(`ble.tx.${message.type}`);
    for (const f of fragment(bytes, entry.conn.mtu)) entry.conn.notify(f);
    traceFrame(this.#ctx.log, "tx", bytes, { conn: connId, type: message.type });
  }

  /** Ends a connection from the pile's side, as the core asked. */
  drop(connId: string, reason: string): void {
    const entry = this.#conns.get(connId);
    if (!entry) return;
    this.#ctx.count(`ble.drop.${reason}`);
    this.#ctx.log.info({ conn: connId, reason }, "dropping connection");
    entry.conn.disconnect();
  }

  async stop(): Promise<void> {
    await this.#ctx.parts.ble?.stop().catch(() => {});
  }
}
