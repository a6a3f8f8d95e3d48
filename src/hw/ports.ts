/**
 * Ports: the small interfaces, in the language of the pile, that the daemon drives. Adapters in
 * this folder implement them over libraries (onoff, modbus-serial, bleno, serialport); the
 * simulators in src/sim implement the same interfaces. The daemon never knows which it has.
 */

export type Unsubscribe = () => void;

/** Wall clock and monotonic clock, injectable for tests. */
export interface Clock {
  /** Unix time in ms (the board's idea of true time; may be wrong without an RTC). */
  now(): number;
  /** Monotonic ms for deadlines. */
  monotonic(): number;
}

/**
 * Timers on the same time line as a Clock, injectable so the control loop, the debouncers and
 * the simulated plant run on fake time in tests (src/sim/plant/clock.ts ManualClock).
 */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The globals, called at call time (so node:test's mock.timers also governs them). */
export const systemTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** A clock with timers on its time line: what the control loop runs on. */
export type TimedClock = Clock & Timers;

export const systemClock: TimedClock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  ...systemTimers,
};

/** A digital output line (a relay coil). `active` is the logical level, after active-low. */
export interface DigitalOutput {
  readonly name: string;
  write(active: boolean): Promise<void>;
  close(): Promise<void>;
}

/** A digital input line (a feedback contact, a plug switch, an emergency-stop loop). */
export interface DigitalInput {
  readonly name: string;
  /** The current (debounced, where configured) logical level. */
  read(): Promise<boolean>;
  /** Called on every debounced change; watched where the kernel supports it, sampled otherwise. */
  watch(listener: (active: boolean) => void): Unsubscribe;
  /**
   * Where reads of the line can fail: called when they start failing (readable false; `read()`
   * then gives the last level seen, which may be wrong) and when they succeed again.
   */
  health?(listener: (readable: boolean, detail: string) => void): Unsubscribe;
  close(): Promise<void>;
}

/**
 * Whether a vehicle is there and what it asks for: a plug-present GPIO, or the control-pilot MCU
 * over a UART (IEC 61851 states A–F; then `pilot` is set). `undefined` = the pile cannot tell.
 */
export interface VehicleSense {
  present(): Promise<boolean | undefined>;
  /** Plug changes; a pilot adapter reports through `pilot.watch` instead. */
  watch(listener: (present: boolean) => void): Unsubscribe;
  /** Where a pilot MCU senses the vehicle. */
  pilot?: PilotPort;
  close(): Promise<void>;
}

/**
 * What the pilot says: A no vehicle, B connected, C/D asks for energy, E/F pilot fault, X a level
 * in no band; "lost" = the MCU is silent, "reset" = it came back from a reset (its permit off).
 */
export type PilotPortState = "A" | "B" | "C" | "D" | "E" | "F" | "X" | "lost" | "reset";

export interface PilotReport {
  state: PilotPortState;
  /** PWM running and its low half not at −12 V: the vehicle's diode is missing or shorted. */
  diodeFailed: boolean;
}

/** The pilot MCU as the daemon sees it (JSON-safe, for status pages). */
export interface PilotDetails {
  state: PilotPortState;
  /** The MCU's contactor permit: off, granted for charging, or the relay-test permit. */
  permit: "off" | "charge" | "test" | "unknown";
  diode: "unknown" | "ok" | "fail";
  pwm: boolean;
  /** Duty in per mille (1000 = steady +12 V). */
  dutyPermille: number;
  /** Why the permit is off (state, pwm, diode, heartbeat). */
  why: string[];
  firmware: string | null;
  /** The cause of the MCU's last reset (POR, EXT, BOR, WDT) and how many it had since start. */
  lastReset: string | null;
  resets: number;
  /** Bad lines, sequence gaps and good lines each side counted; the MCU's own as last read. */
  counters: Record<string, number>;
}

export interface PilotPort {
  /** The latest report; undefined before the MCU was first heard. */
  report(): PilotReport | undefined;
  watch(listener: (r: PilotReport) => void): Unsubscribe;
  /** PWM at `amps` (6–80 A), or null for the PWM off (steady +12 V). Rejects if the MCU refuses. */
  setCurrent(amps: number | null): Promise<void>;
  /** The relay-test permit (granted by the MCU only in A with the PWM off). */
  testPermit(on: boolean): Promise<void>;
  details(): PilotDetails;
}

/** One energy-meter reading, stamped with when it was taken (monotonic ms of the Clock). */
export interface MeterReading {
  /** Total active import energy, Wh. */
  energyImportWh: number;
  /** Total active power, W (negative = export). */
  powerW: number;
  /** L1 voltage, V. */
  voltageV: number;
  /** L1 current, A. */
  currentA: number;
  /** Clock.monotonic() when the reply arrived. */
  takenAt: number;
}

/**
 * IMPLAUSIBLE: a well-formed reply whose values the meter cannot have measured (out of its range,
 * energy going backwards or growing faster than the power and the time allow).
 */
export type MeterErrorCode =
  | "TIMEOUT"
  | "CRC"
  | "EXCEPTION"
  | "PORT"
  | "NOT_AVAILABLE"
  | "IMPLAUSIBLE"
  | "CLOSED";

export class MeterError extends Error {
  override readonly name = "MeterError";
  constructor(
    readonly code: MeterErrorCode,
    message: string,
    readonly detail?: { modbusCode?: number },
  ) {
    super(message);
  }
}

export interface Meter {
  /** Reads every value of MeterReading; rejects with MeterError. */
  read(): Promise<MeterReading>;
  close(): Promise<void>;
}

/** One BLE central connected to the pile's peripheral. */
export interface BleConnection {
  /** Opaque, unique for the life of the connection. */
  readonly id: string;
  /** Current ATT MTU (23 until negotiated). */
  readonly mtu: number;
  /** Sends one fragment as an Event notification (no-op if not subscribed or gone). */
  notify(fragment: Uint8Array): void;
  /** Ends the connection from the pile's side; `BleHandlers.disconnect` follows. No-op if gone. */
  disconnect(): void;
}

export interface BleHandlers {
  /** Info characteristic value, one snapshot per read (long reads reuse it). */
  info(): Uint8Array;
  connect(conn: BleConnection): void;
  /** One Control write (one fragment). */
  write(conn: BleConnection, data: Uint8Array): void;
  disconnect(conn: BleConnection): void;
  /** The controller came up (advertising) or went away. */
  radio(state: "up" | "down", detail?: string): void;
}

export interface BlePeripheral {
  start(handlers: BleHandlers): Promise<void>;
  stop(): Promise<void>;
}

/** A byte link to the technician's terminal. */
export interface ConsoleLink {
  onData(listener: (chunk: Uint8Array) => void): Unsubscribe;
  write(text: string): void;
  close(): Promise<void>;
}
