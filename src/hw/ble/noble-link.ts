/**
 * One link of the carrier's side of the radio (central.ts) over @stoprocent/noble: writes,
 * notifications, Info reads, each with its deadline, and the link supervision (an idle link is
 * probed by reading Info; a probe or any GATT operation that times out ends it as DISCONNECTED).
 */
import type { Characteristic, Peripheral } from "@stoprocent/noble";
import type { CarrierLink, Unsubscribe } from "../../protocol/transport.js";
import { BleError, type BleLog } from "./errors.js";

export function withDeadline<T>(p: Promise<T>, ms: number, onTimeout: () => BleError): Promise<T> {
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

export const msg = (e: unknown) => (e instanceof Error ? e.message : String(e));

export class NobleLink implements CarrierLink {
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
