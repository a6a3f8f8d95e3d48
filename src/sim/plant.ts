/**
 * The simulated GPIO plant: contactor and lock whose feedback contacts follow their coils after
 * a delay, a plug, an emergency stop, and fault switches. It implements the same ports as the
 * onoff adapters, so the daemon runs on it unchanged (on a desk, in tests, in the demo). Time
 * comes from injectable timers so tests can run it on fake time.
 */
import {
  type DigitalInput,
  type DigitalOutput,
  systemTimers,
  type Timers,
  type Unsubscribe,
  type VehicleSense,
} from "../hw/ports.js";

export { ManualClock } from "./plant/clock.js";

/** The timers port (src/hw/ports.ts); the default calls the globals at call time. */
export type PlantTimers = Timers;

const globalTimers: PlantTimers = systemTimers;

export interface PlantOptions {
  /** Coil to auxiliary contact, ms. Default 30. */
  contactorMs?: number;
  /** Lock actuator travel, ms. Default 200. */
  lockMs?: number;
  /** A plug is in at start. Default false. */
  plugPresent?: boolean;
  /**
   * A pilot MCU's contactor permit is wired in series with the board's contactor line: the coil
   * is energised only when both are on (`setPermit`). Off at start.
   */
  permitInSeries?: boolean;
  timers?: PlantTimers;
}

export interface PlantFaults {
  welded: boolean;
  contactorNeverCloses: boolean;
  lockStuckOpen: boolean;
  lockOpensUnderLoad: boolean;
}

export interface PlantState {
  /** Logical output levels as last written. */
  outputs: { contactor: boolean; lock: boolean };
  /** What the feedback contacts read now. */
  feedback: { contactor: boolean; lock: boolean };
  plugPresent: boolean;
  emergencyStop: boolean;
  faults: PlantFaults;
  /** The pilot MCU's permit, where it is in series with the contactor line. */
  permit?: boolean;
}

type Listener = (level: boolean) => void;

/** One two-state signal with listeners. */
class Signal {
  private readonly listeners = new Set<Listener>();
  constructor(public level: boolean) {}
  set(level: boolean): void {
    if (level === this.level) return;
    this.level = level;
    for (const l of [...this.listeners]) l(level);
  }
  on(l: Listener): Unsubscribe {
    this.listeners.add(l);
    return () => {
      this.listeners.delete(l);
    };
  }
}

/** An actuator: a commanded level, a feedback that moves to its target after a delay. */
class Actuator {
  command = false;
  readonly feedback = new Signal(false);
  private pending: { handle: unknown; target: boolean } | undefined;

  constructor(
    private readonly delayMs: number,
    private readonly timers: PlantTimers,
  ) {}

  /** Moves the feedback toward `target` after the delay (restarting only if the target changed). */
  settle(target: boolean, after: () => void): void {
    if (this.pending && this.pending.target === target) return;
    this.cancel();
    if (this.feedback.level === target) return;
    const handle = this.timers.setTimeout(() => {
      this.pending = undefined;
      this.feedback.set(target);
      after();
    }, this.delayMs);
    this.pending = { handle, target };
  }

  cancel(): void {
    if (this.pending) this.timers.clearTimeout(this.pending.handle);
    this.pending = undefined;
  }
}

class PlantOutput implements DigitalOutput {
  constructor(
    readonly name: string,
    private readonly onWrite: (active: boolean) => void,
  ) {}
  async write(active: boolean): Promise<void> {
    this.onWrite(active);
  }
  async close(): Promise<void> {}
}

class PlantInput implements DigitalInput {
  constructor(
    readonly name: string,
    private readonly signal: Signal,
  ) {}
  async read(): Promise<boolean> {
    return this.signal.level;
  }
  watch(listener: (active: boolean) => void): Unsubscribe {
    return this.signal.on(listener);
  }
  async close(): Promise<void> {}
}

class PlantVehicleSense implements VehicleSense {
  constructor(private readonly signal: Signal) {}
  async present(): Promise<boolean | undefined> {
    return this.signal.level;
  }
  watch(listener: (present: boolean) => void): Unsubscribe {
    return this.signal.on(listener);
  }
  async close(): Promise<void> {}
}

export class SimPlant {
  readonly contactor: DigitalOutput;
  readonly lock: DigitalOutput;
  readonly contactorFeedback: DigitalInput;
  readonly lockFeedback: DigitalInput;
  readonly emergencyStop: DigitalInput;
  readonly vehicle: VehicleSense;

  private readonly contactorAct: Actuator;
  private readonly lockAct: Actuator;
  private readonly plug: Signal;
  private readonly estop = new Signal(false);
  /** undefined = no permit in series. */
  private permit: boolean | undefined;
  private readonly faults: PlantFaults = {
    welded: false,
    contactorNeverCloses: false,
    lockStuckOpen: false,
    lockOpensUnderLoad: false,
  };

  constructor(opts: PlantOptions = {}) {
    const timers = opts.timers ?? globalTimers;
    this.contactorAct = new Actuator(opts.contactorMs ?? 30, timers);
    this.lockAct = new Actuator(opts.lockMs ?? 200, timers);
    this.plug = new Signal(opts.plugPresent ?? false);
    if (opts.permitInSeries) this.permit = false;
    this.contactor = new PlantOutput("contactor", (active) => {
      this.contactorAct.command = active;
      this.update();
    });
    this.lock = new PlantOutput("lock", (active) => {
      this.lockAct.command = active;
      this.update();
    });
    this.contactorFeedback = new PlantInput("contactor-feedback", this.contactorAct.feedback);
    this.lockFeedback = new PlantInput("lock-feedback", this.lockAct.feedback);
    this.emergencyStop = new PlantInput("emergency-stop", this.estop);
    this.vehicle = new PlantVehicleSense(this.plug);
  }

  /** The plant's lines in the shape the GPIO adapters' linesFromConfig returns. */
  pileLines(): {
    contactor: DigitalOutput;
    lock: DigitalOutput;
    contactorFeedback: DigitalInput;
    lockFeedback: DigitalInput;
    vehicle: VehicleSense;
    emergencyStop: DigitalInput;
    close(): Promise<void>;
  } {
    return {
      contactor: this.contactor,
      lock: this.lock,
      contactorFeedback: this.contactorFeedback,
      lockFeedback: this.lockFeedback,
      vehicle: this.vehicle,
      emergencyStop: this.emergencyStop,
      close: async () => this.dispose(),
    };
  }

  /** Power flows (the contacts are closed, welded or not): the meter simulator follows this. */
  onContactor(listener: (closed: boolean) => void): Unsubscribe {
    return this.contactorAct.feedback.on(listener);
  }

  state(): PlantState {
    return {
      outputs: { contactor: this.contactorAct.command, lock: this.lockAct.command },
      feedback: { contactor: this.contactorAct.feedback.level, lock: this.lockAct.feedback.level },
      plugPresent: this.plug.level,
      emergencyStop: this.estop.level,
      faults: { ...this.faults },
      ...(this.permit === undefined ? {} : { permit: this.permit }),
    };
  }

  /** The pilot MCU's permit pin (only where it is in series: permitInSeries). */
  setPermit(on: boolean): void {
    if (this.permit === undefined) return;
    this.permit = on;
    this.update();
  }

  /** The contacts weld: once closed they stay closed whatever the coil does. */
  weldContactor(): void {
    this.faults.welded = true;
    this.update();
  }
  /** The coil no longer pulls in: the contacts never close. */
  contactorNeverCloses(): void {
    this.faults.contactorNeverCloses = true;
    this.update();
  }
  /** The lock never reaches engaged (its feedback never confirms). */
  lockStuckOpen(): void {
    this.faults.lockStuckOpen = true;
    this.update();
  }
  /** The lock lets go while current flows. */
  lockOpensUnderLoad(): void {
    this.faults.lockOpensUnderLoad = true;
    this.update();
  }
  /** Clears the four fault switches (not the plug, not the emergency stop); feedbacks then follow their coils. */
  clearFaults(): void {
    this.faults.welded = false;
    this.faults.contactorNeverCloses = false;
    this.faults.lockStuckOpen = false;
    this.faults.lockOpensUnderLoad = false;
    this.update();
  }
  insertPlug(): void {
    this.plug.set(true);
  }
  pullPlug(): void {
    this.plug.set(false);
  }
  pressEmergencyStop(): void {
    this.estop.set(true);
  }
  releaseEmergencyStop(): void {
    this.estop.set(false);
  }

  /** Cancels every pending movement (feedbacks freeze where they are). */
  dispose(): void {
    this.contactorAct.cancel();
    this.lockAct.cancel();
  }

  private contactorTarget(): boolean {
    const act = this.contactorAct;
    if (this.faults.welded && act.feedback.level) return true;
    return act.command && this.permit !== false && !this.faults.contactorNeverCloses;
  }

  private lockTarget(): boolean {
    if (!this.lockAct.command || this.faults.lockStuckOpen) return false;
    return !(this.faults.lockOpensUnderLoad && this.contactorAct.feedback.level);
  }

  private update(): void {
    const again = (): void => this.update();
    this.contactorAct.settle(this.contactorTarget(), again);
    this.lockAct.settle(this.lockTarget(), again);
  }
}
