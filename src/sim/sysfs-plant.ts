/**
 * A simulated plant at the sysfs level: it stands where the relays and their auxiliary contacts
 * would be wired, so the REAL GPIO adapters (onoff) and the ExecStopPost pass are exercised. It
 * watches the contactor and lock output value files and, after each relay's delay, writes the
 * matching feedback input's value file; the plug-present and emergency-stop inputs hold what
 * they are told. Values are the logical levels user space sees (active-low is the kernel's
 * business). Use it inside a mount namespace with a fake /sys/class/gpio
 * (scripts/fake-sysfs/run.sh), or on a bench with loop-back wiring.
 *
 *   node dist/src/sim/sysfs-plant.js --config FILE [--contactor-ms 30] [--lock-ms 100]
 *        [--plug in|out] [--weld] [--root /sys/class/gpio]
 * Prints "plant ready" once running; SIGTERM ends it. Commands on stdin, one per line:
 * weld, unweld, plug-in, plug-out, estop-press, estop-release.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { z } from "zod";
import { DEFAULT_SYSFS_ROOT, type LineSpec, resolveLine } from "../hw/gpio/chip.js";
import { lineDir } from "../hw/gpio/sysfs.js";

const POLL_MS = 5;

function readValue(root: string, n: number): boolean | undefined {
  try {
    const t = readFileSync(`${lineDir(root, n)}/value`, "utf8").trim();
    return t === "1" ? true : t === "0" ? false : undefined;
  } catch {
    return undefined;
  }
}

function writeValue(root: string, n: number, v: boolean): void {
  const dir = lineDir(root, n);
  if (!existsSync(dir)) return; // not exported yet: written on the next poll
  try {
    if (readValue(root, n) !== v) writeFileSync(`${dir}/value`, v ? "1" : "0");
  } catch {
    // the line went away (unexported): nothing to hold
  }
}

const { values } = parseArgs({
  options: {
    config: { type: "string" },
    "contactor-ms": { type: "string" },
    "lock-ms": { type: "string" },
    plug: { type: "string" },
    weld: { type: "boolean" },
    root: { type: "string" },
  },
  strict: true,
});
if (!values.config) {
  process.stderr.write(
    "usage: sysfs-plant --config FILE [--contactor-ms N] [--lock-ms N] [--plug in|out] [--weld] [--root SYSFS]\n",
  );
  process.exit(2);
}
// Only the daemon config's GPIO lines matter here (the daemon validates the rest).
const lineSchema = z.object({
  chip: z.string().min(1),
  line: z.int().min(0),
  activeLow: z.boolean().optional(),
});
const plantConfig = z.object({
  gpio: z.object({
    contactor: lineSchema,
    lock: lineSchema,
    contactorFeedback: lineSchema,
    lockFeedback: lineSchema,
    plugPresent: lineSchema.optional(),
    emergencyStop: lineSchema.optional(),
  }),
});
let parsed: z.infer<typeof plantConfig>;
try {
  const r = plantConfig.safeParse(JSON.parse(readFileSync(values.config, "utf8")));
  if (!r.success) throw new Error(r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
  parsed = r.data;
} catch (e) {
  process.stderr.write(`sysfs-plant: ${values.config}: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(2);
}
const root = values.root ?? DEFAULT_SYSFS_ROOT;
const g = parsed.gpio;
const num = (spec: LineSpec): number => resolveLine(spec, { sysfsRoot: root }).number;
const lines = {
  contactor: num(g.contactor),
  lock: num(g.lock),
  contactorFeedback: num(g.contactorFeedback),
  lockFeedback: num(g.lockFeedback),
  plug: g.plugPresent ? num(g.plugPresent) : undefined,
  estop: g.emergencyStop ? num(g.emergencyStop) : undefined,
};
const delay = { contactor: Number(values["contactor-ms"] ?? 30), lock: Number(values["lock-ms"] ?? 100) };
const state = {
  weld: values.weld === true,
  plug: values.plug !== "out",
  estop: false,
  contactorFb: false,
  lockFb: false,
};
let contactorTimer: NodeJS.Timeout | undefined;
let lockTimer: NodeJS.Timeout | undefined;
let contactorTarget: boolean | undefined;
let lockTarget: boolean | undefined;

setInterval(() => {
  const c = readValue(root, lines.contactor) ?? false;
  const wantC = state.weld ? state.contactorFb || c : c;
  if (wantC !== contactorTarget) {
    contactorTarget = wantC;
    clearTimeout(contactorTimer);
    contactorTimer = setTimeout(() => {
      state.contactorFb = wantC;
    }, delay.contactor);
  }
  const l = readValue(root, lines.lock) ?? false;
  if (l !== lockTarget) {
    lockTarget = l;
    clearTimeout(lockTimer);
    lockTimer = setTimeout(() => {
      state.lockFb = l;
    }, delay.lock);
  }
  writeValue(root, lines.contactorFeedback, state.contactorFb);
  writeValue(root, lines.lockFeedback, state.lockFb);
  if (lines.plug !== undefined) writeValue(root, lines.plug, state.plug);
  if (lines.estop !== undefined) writeValue(root, lines.estop, state.estop);
}, POLL_MS);

createInterface({ input: process.stdin }).on("line", (line) => {
  const cmd = line.trim();
  if (cmd === "weld") state.weld = true;
  else if (cmd === "unweld") state.weld = false;
  else if (cmd === "plug-in") state.plug = true;
  else if (cmd === "plug-out") state.plug = false;
  else if (cmd === "estop-press") state.estop = true;
  else if (cmd === "estop-release") state.estop = false;
  else {
    process.stderr.write(`sysfs-plant: unknown command '${cmd}'\n`);
    return;
  }
  process.stdout.write(`ok ${cmd}\n`);
});
process.on("SIGTERM", () => process.exit(0));
process.stdout.write(`plant ready ${JSON.stringify(lines)}\n`);
