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
import type { Noble, Peripheral } from "@stoprocent/noble";
import { decodeInfo } from "../../protocol/messages.js";
import type { CarrierLink, CarrierTransport } from "../../protocol/transport.js";
import {
  absorbLateSerialErrors,
  type BleController,
  BleError,
  type BleLog,
  hciBindingOptions,
  silentLog,
} from "./errors.js";
import { CONTROL_UUID, compactUuid, EVENT_UUID, INFO_UUID, matchName, SERVICE_UUID } from "./gatt.js";
import { msg, NobleLink, withDeadline } from "./noble-link.js";

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
