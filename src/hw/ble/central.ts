/**
 * The carrier's side of the radio (a `CarrierTransport`) over @stoprocent/noble: scans for the
 * pile's service, matches `PILE-<pileId>` (confirming by Info when the name is cut or missing),
 * connects, discovers, negotiates the MTU, subscribes to Event. Every step has a deadline and
 * fails with a BleError.
 *
 * Link supervision: a controller whose peer vanishes does not always report a disconnection (the
 * emulated radio never does). An idle link is therefore probed by reading Info; a probe or any
 * GATT operation that times out ends the link as DISCONNECTED, as an ATT transaction timeout would.
 */
import { createRequire } from "node:module";
import type { Characteristic, Noble, Peripheral } from "@stoprocent/noble";
import { decodeInfo } from "../../protocol/messages.js";
import type { CarrierLink, CarrierTransport, Unsubscribe } from "../../protocol/transport.js";
import {
  absorbLateSerialErrors,
  type BleController,
  BleError,
  type BleLog,
  hciBindingOptions,
  silentLog,
} from "./errors.js";
import { CONTROL_UUID, compactUuid, EVENT_UUID, INFO_UUID, matchName, SERVICE_UUID } from "./gatt.js";

const require = createRequire(import.meta.url);

export interface NobleCentralOptions {
  controller: BleController;
  log?: BleLog;
  /** Time allowed for the controller to power on. Default 5 s. */
  powerOnTimeoutMs?: number;
  /** Deadline of one GATT operation (write, read, subscribe). Default 5 s. */
  gattTimeoutMs?: number;
  /** ATT MTU to ask for. Default 256 (the most bleno grants). */
  mtu?: number;
  /** Probe an idle link this often; 0 disables supervision. Default 2000 ms. */
  supervisionMs?: number;
}

type NobleModule = { withBindings(type: "hci", options: Record<string, unknown>): Noble };

const SERVICE = compactUuid(SERVICE_UUID);

function withDeadline<T>(p: Promise<T>, ms: number, onTimeout: () => BleError): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(onTimeout()), Math.max(0, ms));
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

const msg = (e: unknown) => (e instanceof Error ? e.message : String(e));

class NobleLink implements CarrierLink {
  #notify = new Set<(f: Uint8Array) => void>();
  #disc = new Set<() => void>();
  #down = false;
  #downWaiters = new Set<(e: BleError) => void>();
  #lastActivity = performance.now();
  #probeTimer: NodeJS.Timeout | undefined;
  #probing = false;

  constructor(
    private readonly peripheral: Peripheral,
    private readonly info: Characteristic,
    private readonly control: Characteristic,
    private readonly event: Characteristic,
    readonly mtu: number,
    private readonly gattTimeoutMs: number,
    private readonly supervisionMs: number,
    private readonly log: BleLog,
    private readonly onGone: (link: NobleLink) => void,
  ) {
    event.on("data", this.#onData);
    peripheral.once("disconnect", this.#onDisconnect);
    if (supervisionMs > 0) this.#probeTimer = setInterval(() => void this.#probe(), supervisionMs / 2);
  }

  get closed(): boolean {
    return this.#down;
  }

  readonly #onData = (data: Buffer) => {
    this.#lastActivity = performance.now();
    const f = new Uint8Array(data);
    for (const l of [...this.#notify]) {
      try {
        l(f);
      } catch (e) {
        this.log.warn({ err: msg(e) }, "ble notify listener threw");
      }
    }
  };

  readonly #onDisconnect = (reason?: unknown) => {
    this.#goDown(`link down (reason ${String(reason)})`);
  };

  #goDown(why: string): void {
    if (this.#down) return;
    this.#down = true;
    clearInterval(this.#probeTimer);
    this.event.removeListener("data", this.#onData);
    this.peripheral.removeListener("disconnect", this.#onDisconnect);
    this.log.info({ why }, "ble link down");
    const err = new BleError("DISCONNECTED", why);
    for (const w of [...this.#downWaiters]) w(err);
    this.#downWaiters.clear();
    for (const l of [...this.#disc]) {
      try {
        l();
      } catch (e) {
        this.log.warn({ err: msg(e) }, "ble disconnect listener threw");
      }
    }
    this.#disc.clear();
    this.onGone(this);
    // Best effort: tell the controller too (it may still think the link is up).
    try {
      this.peripheral.disconnect();
    } catch {
      // already gone
    }
  }

  /** Runs one GATT operation with a deadline; a timeout ends the link (ATT transaction timeout). */
  async #op<T>(what: string, run: () => Promise<T>): Promise<T> {
    if (this.#down) throw new BleError("DISCONNECTED", `${what}: link is down`);
    let waiter: ((e: BleError) => void) | undefined;
    const down = new Promise<never>((_, reject) => {
      waiter = reject;
      this.#downWaiters.add(reject);
    });
    try {
      const v = await withDeadline(Promise.race([run(), down]), this.gattTimeoutMs, () => {
        return new BleError("DISCONNECTED", `${what}: no answer within ${this.gattTimeoutMs} ms`);
      });
      this.#lastActivity = performance.now();
      return v;
    } catch (e) {
      if (e instanceof BleError) {
        if (e.code === "DISCONNECTED") this.#goDown(e.message);
        throw e;
      }
      throw new BleError("GATT", `${what}: ${msg(e)}`);
    } finally {
      if (waiter) this.#downWaiters.delete(waiter);
      down.catch(() => {});
    }
  }

  async #probe(): Promise<void> {
    if (this.#down || this.#probing) return;
    if (performance.now() - this.#lastActivity < this.supervisionMs / 2) return;
    this.#probing = true;
    try {
      await withDeadline(
        this.#op("supervision", () => this.info.readAsync()),
        this.supervisionMs,
        () => {
          return new BleError("DISCONNECTED", `supervision: no answer within ${this.supervisionMs} ms`);
        },
      );
    } catch (e) {
      this.#goDown(msg(e));
    } finally {
      this.#probing = false;
    }
  }

  write(fragment: Uint8Array): Promise<void> {
    return this.#op("Control write", () => this.control.writeAsync(Buffer.from(fragment), false));
  }

  onNotify(listener: (fragment: Uint8Array) => void): Unsubscribe {
    this.#notify.add(listener);
    return () => this.#notify.delete(listener);
  }

  async readInfo(): Promise<Uint8Array> {
    return new Uint8Array(await this.#op("Info read", () => this.info.readAsync()));
  }

  onDisconnect(listener: () => void): Unsubscribe {
    if (this.#down) {
      queueMicrotask(listener);
      return () => {};
    }
    this.#disc.add(listener);
    return () => this.#disc.delete(listener);
  }

  async close(): Promise<void> {
    if (this.#down) return;
    const p = this.peripheral;
    this.#goDown("closed by the carrier");
    await withDeadline(p.state === "disconnected" ? Promise.resolve() : p.disconnectAsync(), 2000, () => {
      return new BleError("DISCONNECTED", "disconnect not confirmed");
    }).catch(() => {});
  }
}

export class NobleCentral implements CarrierTransport {
  readonly #opts: Required<Omit<NobleCentralOptions, "log">> & { log: BleLog };
  #noble: Noble | undefined;
  #links = new Set<NobleLink>();
  #busy: Promise<unknown> = Promise.resolve();
  #closed = false;
  /** MTU of the last link made, for reports. */
  lastMtu: number | undefined;
  /** Phases of the last successful connect(), ms: scan until found, link up, GATT ready. */
  lastTimings: { scanMs: number; linkMs: number; gattMs: number } | undefined;

  constructor(opts: NobleCentralOptions) {
    this.#opts = {
      controller: opts.controller,
      log: opts.log ?? silentLog,
      powerOnTimeoutMs: opts.powerOnTimeoutMs ?? 5000,
      gattTimeoutMs: opts.gattTimeoutMs ?? 5000,
      mtu: opts.mtu ?? 256,
      supervisionMs: opts.supervisionMs ?? 2000,
    };
  }

  /** Powers the controller on (once); NO_RADIO if it does not come up in time. */
  async powerOn(): Promise<Noble> {
    if (this.#closed) throw new BleError("NO_RADIO", "the transport is closed");
    let sigintBefore: Set<unknown> | undefined;
    if (!this.#noble) {
      sigintBefore = new Set(process.listeners("SIGINT"));
      try {
        const mod = require("@stoprocent/noble") as NobleModule;
        this.#noble = mod.withBindings("hci", hciBindingOptions(this.#opts.controller));
      } catch (e) {
        throw new BleError("NO_RADIO", `noble could not load: ${msg(e)}`);
      }
      this.#noble.on("warning", () => {});
    }
    const noble = this.#noble;
    const ready = noble.waitForPoweredOnAsync(this.#opts.powerOnTimeoutMs);
    if (sigintBefore) {
      // The bindings start on the next tick and install a SIGINT handler that exits the process;
      // the caller owns signals, so it is removed once they have started.
      const before = sigintBefore;
      setImmediate(() => {
        for (const l of process.listeners("SIGINT")) if (!before.has(l)) process.removeListener("SIGINT", l);
      });
    }
    try {
      await ready;
    } catch (e) {
      throw new BleError("NO_RADIO", `controller did not power on: ${msg(e)}`);
    }
    return noble;
  }

  connect(pileId: string, opts: { timeoutMs: number }): Promise<CarrierLink> {
    // One scan/connect at a time on one controller.
    const run = this.#busy.then(() => this.#connect(pileId, opts.timeoutMs));
    this.#busy = run.catch(() => {});
    return run;
  }

  async #connect(pileId: string, timeoutMs: number): Promise<CarrierLink> {
    const deadline = performance.now() + timeoutMs;
    const left = () => deadline - performance.now();
    const noble = await withDeadline(
      this.powerOn(),
      left(),
      () => new BleError("NO_RADIO", "controller did not power on in time"),
    );
    const tried = new Set<string>();
    for (;;) {
      const t0 = performance.now();
      const { peripheral, match } = await this.#scan(noble, pileId, tried, left());
      const scanMs = performance.now() - t0;
      tried.add(peripheral.id);
      const link = await this.#open(noble, peripheral, left());
      if (this.lastTimings) this.lastTimings.scanMs = scanMs;
      if (match === "exact") return link;
      // Shortened or missing name: confirm the pileId by Info.
      let confirmed = false;
      try {
        const info = decodeInfo(
          await withDeadline(link.readInfo(), left(), () => new BleError("NOT_FOUND", "Info read timed out")),
        );
        confirmed = info.ok && info.value.pileId === pileId;
      } catch {
        confirmed = false;
      }
      if (confirmed) return link;
      await link.close();
      if (left() <= 0) throw new BleError("NOT_FOUND", `no pile PILE-${pileId} found within ${timeoutMs} ms`);
    }
  }

  #scan(
    noble: Noble,
    pileId: string,
    tried: Set<string>,
    ms: number,
  ): Promise<{ peripheral: Peripheral; match: "exact" | "prefix" }> {
    return new Promise((resolve, reject) => {
      let prefixCandidate: Peripheral | undefined;
      const finish = (r: { peripheral: Peripheral; match: "exact" | "prefix" } | BleError) => {
        clearTimeout(timer);
        clearTimeout(graceTimer);
        noble.removeListener("discover", onDiscover);
        noble.stopScanningAsync().then(
          () => (r instanceof BleError ? reject(r) : resolve(r)),
          () => (r instanceof BleError ? reject(r) : resolve(r)),
        );
      };
      let graceTimer: NodeJS.Timeout | undefined;
      const onDiscover = (p: Peripheral) => {
        if (tried.has(p.id) || !p.connectable) return;
        if (!(p.advertisement.serviceUuids ?? []).includes(SERVICE)) return;
        const m = matchName(p.advertisement.localName, pileId);
        if (m === "exact") finish({ peripheral: p, match: "exact" });
        else if (m === "prefix" && !prefixCandidate) {
          // Give an exact match a moment to show up before settling for a cut name.
          prefixCandidate = p;
          graceTimer = setTimeout(() => finish({ peripheral: p, match: "prefix" }), 200);
        }
      };
      const timer = setTimeout(
        () => finish(new BleError("NOT_FOUND", `no pile PILE-${pileId} advertising`)),
        Math.max(0, ms),
      );
      noble.on("discover", onDiscover);
      noble
        .startScanningAsync([SERVICE], true)
        .catch((e) => finish(new BleError("NO_RADIO", `scan failed: ${msg(e)}`)));
    });
  }

  async #open(noble: Noble, p: Peripheral, ms: number): Promise<NobleLink> {
    const t0 = performance.now();
    const left = () => ms - (performance.now() - t0);
    const timeout = (what: string) => () =>
      new BleError("CONNECT_TIMEOUT", `${what} did not complete in time`);
    const drop = () => {
      try {
        if (p.state === "connecting") p.cancelConnect();
        else p.disconnect();
      } catch {
        // ignore
      }
    };
    this.lastTimings = undefined;
    try {
      await withDeadline(
        noble.connectAsync(p.id, { mtu: this.#opts.mtu } as Parameters<Noble["connectAsync"]>[1]),
        left(),
        timeout("connection"),
      );
    } catch (e) {
      drop();
      if (e instanceof BleError) throw e;
      throw new BleError("CONNECT_TIMEOUT", `connection failed: ${msg(e)}`);
    }
    const linkMs = performance.now() - t0;
    try {
      const { characteristics } = await withDeadline(
        p.discoverSomeServicesAndCharacteristicsAsync(
          [SERVICE],
          [INFO_UUID, CONTROL_UUID, EVENT_UUID].map(compactUuid),
        ),
        left(),
        timeout("GATT discovery"),
      );
      const find = (u: string) => characteristics.find((c) => c.uuid === compactUuid(u));
      const info = find(INFO_UUID);
      const control = find(CONTROL_UUID);
      const event = find(EVENT_UUID);
      if (!info || !control || !event)
        throw new BleError("GATT", "the pile's service lacks Info, Control or Event");
      await withDeadline(
        event.subscribeAsync(),
        Math.min(left(), this.#opts.gattTimeoutMs),
        timeout("Event subscription"),
      );
      const mtu = typeof p.mtu === "number" && p.mtu >= 23 ? p.mtu : 23;
      this.lastMtu = mtu;
      this.lastTimings = { scanMs: 0, linkMs, gattMs: performance.now() - t0 - linkMs };
      const link = new NobleLink(
        p,
        info,
        control,
        event,
        mtu,
        this.#opts.gattTimeoutMs,
        this.#opts.supervisionMs,
        this.#opts.log,
        (l) => this.#links.delete(l),
      );
      this.#links.add(link);
      this.#opts.log.info({ peripheral: p.id, mtu }, "ble connected to pile");
      return link;
    } catch (e) {
      drop();
      if (e instanceof BleError) throw e;
      throw new BleError("GATT", `GATT setup failed: ${msg(e)}`);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#links].map((l) => l.close()));
    const n = this.#noble;
    this.#noble = undefined;
    if (n) {
      try {
        n.stop();
      } catch {
        // controller already gone
      }
      absorbLateSerialErrors(n);
      n.removeAllListeners();
    }
  }
}
