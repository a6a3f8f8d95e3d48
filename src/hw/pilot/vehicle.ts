/**
 * The pilot MCU as the pile's vehicle sense (the `VehicleSense` port with its `pilot` part): the
 * MCU's STATE lines become reports (A–F, X), its silence "lost", an unasked HELLO "reset". After
 * a reset or a silence the adapter asks the MCU's state again and re-sends its heartbeat limit;
 * the MCU came up with PWM and permit off, so nothing is re-asked for the session (the core
 * faults it). An MCU that does not answer when the UART opens is "lost" from the start (the pile
 * comes up faulted) and is set up the same way once it is heard. The MCU's own counters are read
 * once a second for the status pages.
 */
import type { PilotDetails, PilotPort, PilotReport, Unsubscribe, VehicleSense } from "../ports.js";
import { openPilotSerial } from "./link.js";
import type { McuCounters, PilotStatus } from "./messages.js";
import { PilotMcu, PilotMcuError } from "./pilot-mcu.js";

export interface PilotVehicleOptions {
  port: string;
  baud?: number;
  heartbeatMs: number;
  silenceMs: number;
  /** The MCU drops its permit when no heartbeat came for this long (CFG). */
  heartbeatLimitMs: number;
  /** Called once the UART is open, before the HELLO (a simulator releases its MCU here). */
  onOpen?: () => Promise<void>;
  onError?: (what: string, e: unknown) => void;
}

const PRESENT: Record<string, boolean | undefined> = { A: false, B: true, C: true, D: true };

export class PilotVehicle implements VehicleSense {
  readonly pilot: PilotPort = {
    report: () => this.#last,
    watch: (listener) => {
      this.#listeners.add(listener);
      return () => this.#listeners.delete(listener);
    },
    setCurrent: (amps) => this.mcu.setCurrent(amps),
    testPermit: (on) => this.mcu.relayTest(on),
    details: () => this.#details(),
  };
  #last: PilotReport | undefined;
  #status: PilotStatus | undefined;
  #mcuCounters: McuCounters | undefined;
  #firmware: string | null = null;
  #lastReset: string | null = null;
  #resets = 0;
  #ready = false;
  readonly #listeners = new Set<(r: PilotReport) => void>();
  #timer: NodeJS.Timeout | undefined;

  private constructor(
    readonly mcu: PilotMcu,
    private readonly o: PilotVehicleOptions,
  ) {}

  /** Opens the UART and waits for the MCU's HELLO (rejects if it does not answer). */
  static async open(o: PilotVehicleOptions): Promise<PilotVehicle> {
    const link = await openPilotSerial({
      path: o.port,
      ...(o.baud ? { baud: o.baud } : {}),
      onError: (e) => o.onError?.("serial", e),
    });
    const mcu = new PilotMcu({ link, heartbeatMs: o.heartbeatMs, silenceMs: o.silenceMs });
    const v = new PilotVehicle(mcu, o);
    mcu.on("status", (s) => v.#onStatus(s));
    mcu.on("lost", () => v.#emit({ state: "lost", diodeFailed: false }));
    mcu.on("back", () => void v.#resync("back"));
    mcu.on("reset", (h) => {
      v.#lastReset = h.cause;
      // The MCU's own boot HELLO, heard while opening, is no reset of a running pile.
      if (!v.#ready) return;
      // Nor is the first HELLO of an MCU that was silent since the pile started: it is up now.
      if (v.#firmware !== null) {
        v.#resets++;
        v.#emit({ state: "reset", diodeFailed: false });
      }
      void v.#resync("reset");
    });
    try {
      // An MCU that has just come up says HELLO on its own: wait for it a little, so the HELLO
      // asked below is not mistaken for the reply to a later reset.
      const first = new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 500);
        mcu.once("hello", () => {
          clearTimeout(t);
          resolve();
        });
      });
      await o.onOpen?.();
      await first;
      const hello = await mcu.start();
      v.#firmware = hello.fw;
      v.#lastReset = hello.cause;
      await v.#configure();
    } catch (e) {
      // An MCU that does not answer is lost, not a daemon that cannot start: the pile comes up
      // faulted (PILOT_MCU, its permit is off anyway) and the MCU is set up once it is heard.
      if (!(e instanceof PilotMcuError && e.code === "TIMEOUT") || !mcu.lost) {
        await mcu.close().catch(() => undefined);
        throw e;
      }
      o.onError?.("no answer at start", e);
      v.#emit({ state: "lost", diodeFailed: false });
    }
    v.#ready = true;
    v.#timer = setInterval(() => {
      mcu.counters().then(
        (c) => {
          v.#mcuCounters = c;
        },
        () => undefined,
      );
    }, 1000);
    v.#timer.unref();
    return v;
  }

  async #configure(): Promise<void> {
    await this.mcu.setHeartbeatLimit(this.o.heartbeatLimitMs);
    // The reply comes as a STATE line, taken by the "status" listener in wire order; applying
    // the resolved value again here could put an older state over a newer one.
    await this.mcu.readStatus();
  }

  async #resync(why: string): Promise<void> {
    try {
      if (why === "reset" || this.#firmware === null) {
        const h = await this.mcu.hello();
        this.#firmware = h.fw;
        this.#lastReset ??= h.cause;
      }
      await this.#configure();
    } catch (e) {
      this.o.onError?.(`resync after ${why}`, e);
    }
  }

  #onStatus(s: PilotStatus): void {
    this.#status = s;
    this.#emit({ state: s.state, diodeFailed: s.diode === "fail" && s.pwm });
  }

  #emit(r: PilotReport): void {
    const l = this.#last;
    if (l && l.state === r.state && l.diodeFailed === r.diodeFailed) return;
    this.#last = r;
    for (const f of this.#listeners) f(r);
  }

  /** The plug-style watch is not served: the pilot's reports (`pilot.watch`) say more. */
  watch(_listener: (present: boolean) => void): Unsubscribe {
    return () => undefined;
  }

  async present(): Promise<boolean | undefined> {
    return this.#last ? PRESENT[this.#last.state] : undefined;
  }

  #details(): PilotDetails {
    const s = this.#status;
    const lost = this.#last?.state === "lost" || this.#last?.state === "reset";
    const link = this.mcu.stats;
    const m = this.#mcuCounters;
    return {
      state: this.#last?.state ?? "lost",
      permit: s && !lost ? s.permit : "unknown",
      diode: s?.diode ?? "unknown",
      pwm: s?.pwm ?? false,
      dutyPermille: s?.dutyPermille ?? 1000,
      why: s?.why ?? [],
      firmware: this.#firmware,
      lastReset: this.#lastReset,
      resets: this.#resets,
      counters: {
        "board.rxOk": link.rxOk,
        "board.rxBad": link.rxBad,
        "board.rxGap": link.rxGap,
        "board.rxUnknown": link.rxUnknown,
        "board.tx": link.tx,
        "board.timeouts": link.timeouts,
        ...(m
          ? {
              "mcu.rxOk": m.ok,
              "mcu.rxBad": m.bad,
              "mcu.rxGap": m.gap,
              "mcu.txDrop": m.txDrop,
              "mcu.uptimeMs": m.uptimeMs,
            }
          : {}),
      },
    };
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#listeners.clear();
    await this.mcu.close();
  }
}
