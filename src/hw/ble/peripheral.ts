/**
 * The pile's GATT peripheral (PROTOCOL.md §3) over @stoprocent/bleno: advertises the service
 * UUID and `PILE-<pileId>`, serves Info / Control / Event, tracks every connection, and keeps
 * the radio up: a controller that fails to power on or goes away is reported through
 * `handlers.radio("down")` and retried with backoff. Nothing here throws into the daemon.
 *
 * bleno facts this adapter relies on (v0.12, hci-socket bindings):
 * - per-connection identity is the HCI connection handle passed to every GATT callback and to
 *   `accept`/`disconnect`; several centrals may be connected at once on stacks that allow it;
 * - `mtuChange` does not name the connection: the MTU is read per handle (see `mtuOf`);
 * - `startAdvertising(name)` mis-sizes non-ASCII and > 29-byte names, so the advertising and
 *   scan-response payloads are built here (gatt.ts) and sent with startAdvertisingWithEIRData;
 * - its bindings install a SIGINT handler that exits the process: removed here, the daemon owns
 *   signals.
 */
import { createRequire } from "node:module";
import type { Bleno, ConnectionHandle } from "@stoprocent/bleno";
import { type BleHandlers, type BlePeripheral, systemTimers, type Timers } from "../ports.js";
import {
  absorbLateSerialErrors,
  type BleController,
  type BleLog,
  hciBindingOptions,
  silentLog,
} from "./errors.js";
import { buildAdvertisingData } from "./gatt.js";
import { pileService, type ServedConn } from "./gatt-service.js";

const require = createRequire(import.meta.url);

export interface BlenoPeripheralOptions {
  controller: BleController;
  pileId: string;
  log?: BleLog;
  /** First retry delay after the radio goes down or fails to come up. Default 500 ms. */
  retryInitialMs?: number;
  /** Longest retry delay. Default 10 s. */
  retryMaxMs?: number;
  /** How long one attempt may take to power on and advertise. Default 5 s. */
  powerOnTimeoutMs?: number;
  /** The retry and power-on timers (a ManualClock in tests). Default the globals. */
  timers?: Timers;
}

/** Counters for the console and the logs. */
export interface PeripheralStats {
  connections: number;
  accepted: number;
  /** `accept` for a handle already in use (the emulated radio does this for a 2nd central). */
  duplicateAccepts: number;
  /** Notifications not sent: not subscribed, gone, or longer than MTU−3. */
  notifyDropped: number;
  /** Exceptions thrown by a handler, caught here. */
  handlerErrors: number;
  /** Times the radio came up. */
  radioUps: number;
  /** Times the radio went (or stayed) down. */
  radioDowns: number;
}

const DEFAULT_MTU = 23;

type BlenoModule = { withBindings(type: "hci", options: Record<string, unknown>): Bleno };

class Conn implements ServedConn {
  notifyFn: ((data: Buffer) => void) | undefined;
  infoSnapshot: Uint8Array | undefined;
  knownMtu = DEFAULT_MTU;
  open = true;
  constructor(
    readonly id: string,
    readonly handle: ConnectionHandle,
    readonly address: string,
    private readonly owner: BlenoPeripheral,
  ) {}
  get mtu(): number {
    return this.owner.mtuOf(this);
  }
  notify(fragment: Uint8Array): void {
    this.owner.notify(this, fragment);
  }
  disconnect(): void {
    this.owner.disconnect(this);
  }
}

export class BlenoPeripheral implements BlePeripheral {
  readonly #opts: Required<Omit<BlenoPeripheralOptions, "log">> & { log: BleLog };
  #handlers: BleHandlers | undefined;
  #bleno: Bleno | undefined;
  #conns = new Map<ConnectionHandle, Conn>();
  #seq = 0;
  #stopped = false;
  #up = false;
  #retryMs: number;
  #retryTimer: unknown;
  #attemptTimer: unknown;
  #firstOutcome: (() => void) | undefined;
  readonly #stats: PeripheralStats = {
    connections: 0,
    accepted: 0,
    duplicateAccepts: 0,
    notifyDropped: 0,
    handlerErrors: 0,
    radioUps: 0,
    radioDowns: 0,
  };

  constructor(opts: BlenoPeripheralOptions) {
    this.#opts = {
      controller: opts.controller,
      pileId: opts.pileId,
      log: opts.log ?? silentLog,
      retryInitialMs: opts.retryInitialMs ?? 500,
      retryMaxMs: opts.retryMaxMs ?? 10_000,
      powerOnTimeoutMs: opts.powerOnTimeoutMs ?? 5000,
      timers: opts.timers ?? systemTimers,
    };
    this.#retryMs = this.#opts.retryInitialMs;
  }

  stats(): PeripheralStats {
    return { ...this.#stats, connections: this.#conns.size };
  }

  /**
   * Starts the radio; resolves once it is advertising or the first attempt has failed (then
   * reported as down and retried in the background). Never rejects for radio trouble.
   */
  async start(handlers: BleHandlers): Promise<void> {
    if (this.#handlers) throw new Error("BlenoPeripheral.start called twice");
    this.#handlers = handlers;
    await new Promise<void>((resolve) => {
      this.#firstOutcome = resolve;
      this.#attempt();
    });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#opts.timers.clearTimeout(this.#retryTimer);
    this.#opts.timers.clearTimeout(this.#attemptTimer);
    this.#dropAll();
    this.#teardown();
    this.#settleFirst();
  }

  /** The connection's ATT MTU, per handle (bleno's mtuChange event does not say whose it is). */
  mtuOf(conn: Conn): number {
    // bleno keeps the negotiated MTU per connection only in its GATT server's private map; read
    // it there when present, else fall back to what the subscription told us.
    const gatt = (
      this.#bleno as unknown as { _bindings?: { _gatt?: { _connections?: Map<unknown, { mtu?: unknown }> } } }
    )?._bindings?._gatt?._connections;
    const m = gatt?.get(conn.handle)?.mtu;
    if (conn.open && typeof m === "number" && m >= DEFAULT_MTU) conn.knownMtu = m;
    return conn.knownMtu;
  }

  notify(conn: Conn, fragment: Uint8Array): void {
    if (!conn.open || conn.notifyFn === undefined || fragment.length > this.mtuOf(conn) - 3) {
      this.#stats.notifyDropped++;
      return;
    }
    try {
      conn.notifyFn(Buffer.from(fragment));
    } catch (e) {
      this.#stats.notifyDropped++;
      this.#opts.log.debug({ conn: conn.id, err: String(e) }, "ble notify failed");
    }
  }

  /**
   * Asks the controller to end `conn` (HCI Disconnect of its handle); the close follows bleno's
   * `disconnect` event as for a central leaving. Its typings omit the handle bleno takes here.
   */
  disconnect(conn: Conn): void {
    const b = this.#bleno;
    if (!conn.open || !b || this.#conns.get(conn.handle) !== conn) return;
    // bleno reads a handle of 0 as "every connection": only safe when this is the only one.
    if (!conn.handle && this.#conns.size > 1) {
      this.#opts.log.warn({ conn: conn.id }, "ble cannot disconnect handle 0 alone; kept");
      return;
    }
    try {
      (b as unknown as { disconnect(handle: ConnectionHandle): void }).disconnect(conn.handle);
      this.#opts.log.info({ conn: conn.id }, "ble disconnecting central");
    } catch (e) {
      this.#opts.log.warn({ conn: conn.id, err: String(e) }, "ble disconnect failed");
    }
  }

  #settleFirst(): void {
    const f = this.#firstOutcome;
    this.#firstOutcome = undefined;
    f?.();
  }

  #call(what: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.#stats.handlerErrors++;
      this.#opts.log.warn(
        { handler: what, err: e instanceof Error ? e.message : String(e) },
        "ble handler threw",
      );
    }
  }

  #attempt(): void {
    if (this.#stopped) return;
    let bleno: Bleno;
    const sigintBefore = new Set(process.listeners("SIGINT"));
    try {
      const mod = require("@stoprocent/bleno") as BlenoModule;
      bleno = mod.withBindings("hci", hciBindingOptions(this.#opts.controller));
    } catch (e) {
      this.#down(`bleno could not load: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    this.#bleno = bleno;
    bleno.on("accept", (address, handle) => this.#onAccept(bleno, address, handle));
    bleno.on("disconnect", (_address, handle) => this.#onDisconnect(bleno, handle));
    bleno.on("advertisingStart", (err) => {
      if (bleno !== this.#bleno) return;
      if (err) this.#down(`advertising failed: ${err.message}`);
      else this.#radioUp();
    });
    bleno.on("stateChange", (state) => this.#onState(bleno, state));
    // Registering stateChange initialised the bindings, which added their SIGINT handler.
    for (const l of process.listeners("SIGINT")) {
      if (!sigintBefore.has(l)) process.removeListener("SIGINT", l);
    }
    this.#attemptTimer = this.#opts.timers.setTimeout(() => {
      if (bleno === this.#bleno && !this.#up)
        this.#down(`no power-on within ${this.#opts.powerOnTimeoutMs} ms`);
    }, this.#opts.powerOnTimeoutMs);
  }

  #onState(bleno: Bleno, state: string): void {
    if (bleno !== this.#bleno || this.#stopped) return;
    if (state === "poweredOn") {
      this.#advertise(bleno);
      return;
    }
    if (this.#up || state === "unsupported" || state === "unauthorized") this.#down(`controller ${state}`);
  }

  #advertise(bleno: Bleno): void {
    const { advertisement, scanResponse } = buildAdvertisingData(this.#opts.pileId);
    bleno.setServices([this.#service(bleno)], (err) => {
      if (err && bleno === this.#bleno) this.#down(`setServices failed: ${err.message}`);
    });
    bleno.startAdvertisingWithEIRData(Buffer.from(advertisement), Buffer.from(scanResponse));
  }

  #service(bleno: Bleno) {
    return pileService(bleno, {
      conn: (handle) => this.#conn(bleno, handle),
      existing: (handle) => this.#conns.get(handle),
      call: (what, fn) => this.#call(what, fn),
      handlers: () => this.#handlers,
    });
  }

  /** The connection of `handle`, created if bleno's accept was missed. */
  #conn(bleno: Bleno, handle: ConnectionHandle, address = "unknown"): Conn {
    let c = this.#conns.get(handle);
    if (!c) {
      c = new Conn(`${address}/${String(handle)}/${++this.#seq}`, handle, address, this);
      this.#conns.set(handle, c);
      this.#stats.accepted++;
      const created = c;
      if (bleno === this.#bleno) this.#call("connect", () => this.#handlers?.connect(created));
    }
    return c;
  }

  #onAccept(bleno: Bleno, address: string, handle: ConnectionHandle): void {
    if (bleno !== this.#bleno) return;
    if (this.#conns.has(handle)) {
      // The emulated radio (btvirt 5.66) reports a second central with the handle of the first;
      // its traffic cannot be told apart, so the existing connection is kept.
      this.#stats.duplicateAccepts++;
      this.#opts.log.warn({ handle, address }, "ble accept for a handle already connected; ignored");
      return;
    }
    const c = this.#conn(bleno, handle, address);
    this.#opts.log.info({ conn: c.id }, "ble central connected");
  }

  #onDisconnect(bleno: Bleno, handle: ConnectionHandle): void {
    if (bleno !== this.#bleno) return;
    const c = this.#conns.get(handle);
    if (!c) return;
    this.#close(c);
    this.#opts.log.info({ conn: c.id }, "ble central disconnected");
  }

  #close(c: Conn): void {
    this.#conns.delete(c.handle);
    c.open = false;
    c.notifyFn = undefined;
    c.infoSnapshot = undefined;
    this.#call("disconnect", () => this.#handlers?.disconnect(c));
  }

  #dropAll(): void {
    for (const c of [...this.#conns.values()]) this.#close(c);
  }

  #radioUp(): void {
    this.#opts.timers.clearTimeout(this.#attemptTimer);
    this.#retryMs = this.#opts.retryInitialMs;
    if (!this.#up) {
      this.#up = true;
      this.#stats.radioUps++;
      this.#opts.log.info({ pileId: this.#opts.pileId }, "ble advertising");
      this.#call("radio", () => this.#handlers?.radio("up"));
    }
    this.#settleFirst();
  }

  #down(detail: string): void {
    if (this.#stopped) return;
    this.#opts.timers.clearTimeout(this.#attemptTimer);
    this.#stats.radioDowns++;
    const wasUp = this.#up;
    this.#up = false;
    this.#dropAll();
    this.#teardown();
    this.#opts.log.warn({ detail, retryInMs: this.#retryMs, wasUp }, "ble radio down");
    this.#call("radio", () => this.#handlers?.radio("down", detail));
    this.#settleFirst();
    this.#opts.timers.clearTimeout(this.#retryTimer);
    this.#retryTimer = this.#opts.timers.setTimeout(() => this.#attempt(), this.#retryMs);
    this.#retryMs = Math.min(this.#retryMs * 2, this.#opts.retryMaxMs);
  }

  /** Stops the current bleno instance and silences it for good. */
  #teardown(): void {
    const b = this.#bleno;
    this.#bleno = undefined;
    if (!b) return;
    try {
      b.stopAdvertising();
    } catch {
      // the controller may be gone already
    }
    try {
      b.disconnect();
    } catch {
      // idem
    }
    try {
      b.stop();
    } catch {
      // idem
    }
    absorbLateSerialErrors(b);
    // bleno's HCI layer re-arms a 1 s device poll forever, even after stop(), which would keep
    // the process alive and leak one timer chain per retry: neuter it on the dead instance.
    const hci = (b as unknown as { _bindings?: { _hci?: { pollIsDevUp?: () => void } } })._bindings?._hci;
    if (hci && typeof hci.pollIsDevUp === "function") hci.pollIsDevUp = () => {};
    b.removeAllListeners();
  }
}
