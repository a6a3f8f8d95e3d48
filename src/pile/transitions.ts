/**
 * The pile core's machine on one page: for every phase, each input it takes and the phases it may
 * leave the core in once that input (with the deadlines it passed and whatever follows at once) is
 * handled, or the typed refusal it gets. The core consults this table before any handler runs, so
 * a refusal written here is the refusal given; `test/pile/transitions.test.ts` walks every
 * (phase, input) pair and checks the phase the core ends in against it.
 *
 * Reading it: a session goes idle → authorizing (PRESENT verified, code being recorded) →
 * locking (recorded; lock commanded) → closing (interlock passed; contactor commanded) →
 * charging → opening (stop or fault: contactor commanded open) → unlocking (ended; lock released
 * to rest) → idle. A fault in locking, closing or charging stops the session (STOP_PATH). A
 * `tick` stands for the deadlines it fires (relay confirmations, record acknowledgement, meter
 * freshness, duration limit, STATUS period, exchange timeout, idle drop).
 *
 * Where a pilot MCU senses the vehicle, `pilot` carries its IEC 61851 state (pilot.ts): in
 * locking, PWM is asked once the lock is confirmed and C closes the contactor; B while closing or
 * charging stops the session (VEHICLE_DONE), A stops it (PLUG_REMOVED); E, F, a missing diode, a
 * silent or reset MCU latch a pilot fault, which clears on its own when idle at A or B again.
 */
import type { Phase, PileCoreErrorCode, PileInput } from "./types.js";

/** An input as the machine tells them apart (a message by its type, a technician by command). */
export type InputKind =
  | "boot"
  | "tick"
  | "connected"
  | "disconnected"
  | "fragmentError"
  | "HELLO"
  | "PRESENT"
  | "STOP"
  | "badMessage"
  | "contactorFeedback"
  | "lockFeedback"
  | "vehicle"
  | "pilot"
  | "emergencyStop"
  | "inputHealth"
  | "meterReading"
  | "meterError"
  | "radio"
  | "store"
  | "codeRecorded"
  | "technician.stop"
  | "technician.clearFault"
  | "technician.setAvailable"
  | "technician.relayTest"
  | "technician.setCurrentLimit";

export type Transition =
  /** Taken: the core ends in one of these phases. */
  | { to: readonly Phase[] }
  /**
   * Refused with this code; nothing changes. `noFaultFirst`: a pile with no fault latched is
   * answered NOT_FAULTED before this refusal.
   */
  | { refuse: PileCoreErrorCode; detail: string; noFaultFirst?: boolean };

export const PHASES: readonly Phase[] = [
  "unbooted",
  "booting",
  "idle",
  "authorizing",
  "locking",
  "closing",
  "charging",
  "opening",
  "unlocking",
  "relayTest",
];

export const INPUT_KINDS: readonly InputKind[] = [
  "boot",
  "tick",
  "connected",
  "disconnected",
  "fragmentError",
  "HELLO",
  "PRESENT",
  "STOP",
  "badMessage",
  "contactorFeedback",
  "lockFeedback",
  "vehicle",
  "pilot",
  "emergencyStop",
  "inputHealth",
  "meterReading",
  "meterError",
  "radio",
  "store",
  "codeRecorded",
  "technician.stop",
  "technician.clearFault",
  "technician.setAvailable",
  "technician.relayTest",
  "technician.setCurrentLimit",
];

const to = (...phases: Phase[]): Transition => ({ to: phases });
const refuse = (code: PileCoreErrorCode, detail: string, noFaultFirst = false): Transition =>
  noFaultFirst ? { refuse: code, detail, noFaultFirst } : { refuse: code, detail };

/** A session being stopped: the contactor opens, then the lock goes to rest, then idle. */
const STOP_PATH: Phase[] = ["opening", "unlocking", "idle"];

/** Every input but boot, taken without leaving `phase`. */
function staying(phase: Phase): Record<InputKind, Transition> {
  const stay = to(phase);
  const all = Object.fromEntries(INPUT_KINDS.map((k) => [k, stay])) as Record<InputKind, Transition>;
  return {
    ...all,
    boot: refuse("ALREADY_BOOTED", "boot fed twice"),
    "technician.stop": refuse("NO_SESSION", "no session running"),
    "technician.clearFault": refuse("BUSY", `pile is ${phase}`, true),
    "technician.relayTest": refuse("BUSY", `pile is ${phase}`),
  };
}

/** In a session that may be live: anything that latches a fault stops it. */
function running(phase: Phase, own: Partial<Record<InputKind, Transition>>): Record<InputKind, Transition> {
  const stops = to(phase, ...STOP_PATH);
  return {
    ...staying(phase),
    tick: stops,
    STOP: stops,
    contactorFeedback: stops,
    lockFeedback: stops,
    vehicle: stops,
    pilot: stops,
    emergencyStop: stops,
    inputHealth: stops,
    "technician.stop": to(...STOP_PATH),
    ...own,
  };
}

const unbooted = Object.fromEntries(
  INPUT_KINDS.map((k) => [k, refuse("NOT_BOOTED", "feed boot first")]),
) as Record<InputKind, Transition>;

export const TRANSITIONS: Readonly<Record<Phase, Readonly<Record<InputKind, Transition>>>> = {
  unbooted: { ...unbooted, boot: to("booting", "idle") },
  booting: {
    ...staying("booting"),
    tick: to("booting", "idle"),
    contactorFeedback: to("booting", "idle"),
    lockFeedback: to("booting", "idle"),
    emergencyStop: to("booting", "idle"),
    inputHealth: to("booting", "idle"),
    pilot: to("booting", "idle"),
  },
  idle: {
    ...staying("idle"),
    PRESENT: to("idle", "authorizing"),
    "technician.clearFault": to("idle", "unlocking"),
    "technician.relayTest": to("idle", "relayTest"),
  },
  authorizing: {
    ...staying("authorizing"),
    tick: to("authorizing", "idle"),
    codeRecorded: to("idle", "locking", "closing", "charging"),
    "technician.stop": refuse("BUSY", "session being set up"),
  },
  locking: running("locking", {
    lockFeedback: to("locking", "closing", "charging", ...STOP_PATH),
    meterReading: to("locking", "closing", "charging"),
    pilot: to("locking", "closing", "charging", ...STOP_PATH),
  }),
  closing: running("closing", { contactorFeedback: to("closing", "charging", ...STOP_PATH) }),
  charging: running("charging", { meterReading: to("charging", ...STOP_PATH) }),
  opening: {
    ...staying("opening"),
    tick: to("opening", "unlocking", "idle"),
    contactorFeedback: to("opening", "unlocking", "idle"),
    lockFeedback: to("opening", "unlocking", "idle"),
    "technician.stop": to("opening"),
  },
  unlocking: {
    ...staying("unlocking"),
    tick: to("unlocking", "idle"),
    contactorFeedback: to("unlocking", "idle"),
    lockFeedback: to("unlocking", "idle"),
  },
  relayTest: {
    ...staying("relayTest"),
    tick: to("relayTest", "idle"),
    contactorFeedback: to("relayTest", "idle"),
    vehicle: to("relayTest", "idle"),
    pilot: to("relayTest", "idle"),
    emergencyStop: to("relayTest", "idle"),
    inputHealth: to("relayTest", "idle"),
    "technician.stop": to("relayTest", "idle"),
  },
};

/** The machine's name for an input (a well-formed one: validated before). */
export function inputKind(
  input: PileInput,
  messageType: "HELLO" | "PRESENT" | "STOP" | undefined,
): InputKind {
  if (input.type === "technician") return `technician.${input.command}`;
  if (input.type === "message") return messageType ?? "badMessage";
  return input.type;
}

export function transition(phase: Phase, kind: InputKind): Transition {
  return TRANSITIONS[phase][kind];
}
