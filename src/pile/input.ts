/**
 * The core's inputs: one zod schema that is both the `PileInput` type and its validation.
 * Inputs may come from anywhere: `handle` never trusts their shape, and a malformed one is
 * refused (BAD_INPUT) before anything changes.
 */
import { z } from "zod";
import { FAULT_CODES } from "./types.js";

const bool = z.boolean();
const bytes = z.custom<Uint8Array>((v) => v instanceof Uint8Array, "must be a Uint8Array");
const connId = z.string().min(1).max(256);

/** Everything the daemon knows of the plant at boot, read after nothing else was done. */
export const bootFeedbackSchema = z.object({
  contactorClosed: bool,
  lockEngaged: bool,
  /** undefined = the pile cannot tell. */
  vehicle: bool.optional(),
  emergencyStop: bool.optional(),
  /** Where a pilot MCU senses the vehicle: its state at boot. */
  pilot: z.enum(["A", "B", "C", "D", "E", "F", "X", "lost", "reset"]).optional(),
});

/**
 * What the pilot MCU says (IEC 61851 states): A no vehicle, B connected, C/D asks for energy,
 * E/F pilot fault, X a level in no band; "lost" = the MCU is silent, "reset" = it reset (its permit is off).
 */
export const pilotStateSchema = z.enum(["A", "B", "C", "D", "E", "F", "X", "lost", "reset"]);

export const meterSampleSchema = z.object({
  energyImportWh: z.number().min(0),
  powerW: z.number(),
  /** Monotonic ms when the reading arrived. */
  takenAt: z.number().min(0),
});

/** The plant's input lines whose reads can fail (inputHealth). */
export const inputLineSchema = z.enum(["contactorFeedback", "lockFeedback", "emergencyStop"]);

export const technicianCommandSchema = z.discriminatedUnion("command", [
  z.object({ command: z.literal("stop") }),
  z.object({ command: z.literal("clearFault") }),
  z.object({ command: z.literal("setAvailable"), available: bool }),
  z.object({ command: z.literal("relayTest") }),
  /** The technician's cap on the current the pilot PWM offers (A, 6–80); null lifts it. */
  z.object({ command: z.literal("setCurrentLimit"), currentA: z.number().min(6).max(80).nullable() }),
]);

const at = {
  /** Monotonic ms (the daemon's Clock.monotonic()). Non-decreasing; an earlier value is taken as the latest seen. */
  mono: z.number().min(0).max(Number.MAX_SAFE_INTEGER),
  /** Unix ms from the board clock, where the daemon has it. */
  wall: z.number().optional(),
};

const input = <T extends string, S extends z.ZodRawShape>(type: T, shape: S) =>
  z.object({ type: z.literal(type), ...at, ...shape });

export const pileInputSchema = z.discriminatedUnion("type", [
  input("boot", {
    feedback: bootFeedbackSchema,
    /** Time floor loaded from the store: newest issuedAt ever accepted, Unix ms. */
    floor: z.bigint().min(0n),
    /** Faults latched before the restart (the store keeps them): they stay latched. */
    latched: z.array(z.enum(FAULT_CODES)).optional(),
  }),
  input("tick", {}),
  input("connected", { connId }),
  /** One reassembled message's bytes. */
  input("message", { connId, bytes }),
  /** The reassembler answered a fragment with an error (PROTOCOL.md §3). */
  input("fragmentError", { connId }),
  input("disconnected", { connId }),
  input("contactorFeedback", { closed: bool }),
  input("lockFeedback", { engaged: bool }),
  input("vehicle", { present: bool.optional() }),
  /** The pilot MCU's report; diodeFailed: the low half of the PWM is not at −12 V. */
  input("pilot", { state: pilotStateSchema, diodeFailed: bool.optional() }),
  input("emergencyStop", { active: bool }),
  /** A line's reads failed (readable false) or succeed again (true). */
  input("inputHealth", { line: inputLineSchema, readable: bool }),
  input("meterReading", { reading: meterSampleSchema }),
  input("meterError", { code: z.string() }),
  /** The radio went down (up false) or is up again; the pile is UNAVAILABLE while it is down. */
  input("radio", { up: bool }),
  /**
   * What keeps the store from taking a new session's records (a record that could not be
   * written, the state directory nearly full); empty when it is healthy. While any is set the
   * pile is UNAVAILABLE with these reasons and refuses new codes (FAULTED).
   */
  input("store", { problems: z.array(z.string().min(1).max(200)).max(8) }),
  /** Acknowledges a recordCode effect: ok = durably written. */
  input("codeRecorded", { codeId: bytes, ok: bool }),
  z.discriminatedUnion("command", [
    input("technician", { command: z.literal("stop") }),
    input("technician", { command: z.literal("clearFault") }),
    input("technician", { command: z.literal("setAvailable"), available: bool }),
    input("technician", { command: z.literal("relayTest") }),
    input("technician", {
      command: z.literal("setCurrentLimit"),
      currentA: z.number().min(6).max(80).nullable(),
    }),
  ]),
]);

export type BootFeedback = z.infer<typeof bootFeedbackSchema>;
export type MeterSample = z.infer<typeof meterSampleSchema>;
export type InputLine = z.infer<typeof inputLineSchema>;
export type TechnicianCommand = z.infer<typeof technicianCommandSchema>;
export type PileInput = z.infer<typeof pileInputSchema>;
export type PileInputType = PileInput["type"];
export type PilotInputState = z.infer<typeof pilotStateSchema>;

const INPUT_TYPES: ReadonlySet<string> = new Set(
  pileInputSchema.options.map((o) => ("shape" in o ? o.shape.type.value : "technician")),
);

/** The input's type when it names one, else "unknown" (for the refusal of a malformed input). */
export function inputType(input: unknown): string {
  const t = typeof input === "object" && input !== null ? (input as { type?: unknown }).type : undefined;
  return typeof t === "string" && INPUT_TYPES.has(t) ? t : "unknown";
}

/** Why an input is malformed ("path: message"), or undefined when it is well-formed. */
export function validateInput(input: unknown): string | undefined {
  const r = pileInputSchema.safeParse(input);
  if (r.success) return undefined;
  const i = r.error.issues[0];
  return i ? `${i.path.join(".") || "(input)"}: ${i.message}` : "malformed input";
}
