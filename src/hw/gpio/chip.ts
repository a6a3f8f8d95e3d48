/**
 * Resolves a line named by chip + offset to its legacy sysfs number through
 * `<root>/gpiochip*\/{label,base,ngpio}`. Never assumes base 0: Raspberry Pi kernels from 6.6
 * number the SoC's lines from 512 (and the expander from 570/571).
 */
import { readdirSync, readFileSync, realpathSync } from "node:fs";
import { basename, join } from "node:path";
import { errnoOf, GpioError } from "./errors.js";

export const DEFAULT_SYSFS_ROOT = "/sys/class/gpio";

/** A line as the config names it. */
export interface LineSpec {
  /** Chip label (e.g. "pinctrl-bcm2711") or chip name ("gpiochip0", either the sysfs directory or the device). */
  chip: string;
  /** Offset of the line within its chip. */
  line: number;
  /** The line is active when its pin is low. */
  activeLow?: boolean;
}

export interface ChipInfo {
  /** sysfs directory name, "gpiochip<base>". */
  dir: string;
  /** Name of the underlying device ("gpiochip0"), where sysfs shows it. */
  device?: string;
  label: string;
  base: number;
  ngpio: number;
}

export interface ResolvedLine {
  /** The legacy sysfs number: base + offset. */
  number: number;
  chip: ChipInfo;
  offset: number;
  activeLow: boolean;
}

function readTrim(path: string): string {
  return readFileSync(path, "utf8").trim();
}

function parseCount(text: string): number | undefined {
  return /^\d+$/.test(text) ? Number(text) : undefined;
}

/** Every chip sysfs shows under `root`; chips whose files cannot be read are skipped. */
export function listChips(root: string = DEFAULT_SYSFS_ROOT): ChipInfo[] {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch (err) {
    throw new GpioError("NO_CHIP", `cannot list GPIO chips in ${root}: ${errnoOf(err) ?? String(err)}`, {
      errno: errnoOf(err),
      labels: [],
    });
  }
  const chips: ChipInfo[] = [];
  for (const dir of names.filter((n) => /^gpiochip\d+$/.test(n)).sort()) {
    try {
      const label = readTrim(join(root, dir, "label"));
      const base = parseCount(readTrim(join(root, dir, "base")));
      const ngpio = parseCount(readTrim(join(root, dir, "ngpio")));
      if (base === undefined || ngpio === undefined) continue;
      const chip: ChipInfo = { dir, label, base, ngpio };
      try {
        chip.device = basename(realpathSync(join(root, dir, "device")));
      } catch {
        // no device link: the chip is known by label and directory only
      }
      chips.push(chip);
    } catch {
      // unreadable chip: not one we can use
    }
  }
  return chips;
}

/** Finds the chip named by `name` among `chips`: label first, then sysfs directory, then device name. */
export function findChip(chips: readonly ChipInfo[], name: string): ChipInfo {
  const byLabel = chips.filter((c) => c.label === name);
  if (byLabel.length === 1) return byLabel[0]!;
  if (byLabel.length > 1) {
    throw new GpioError(
      "AMBIGUOUS_CHIP",
      `label "${name}" names ${byLabel.length} chips (${byLabel.map((c) => c.dir).join(", ")}): give the chip as gpiochipN`,
      { labels: chips.map((c) => c.label) },
    );
  }
  const byName = chips.find((c) => c.dir === name) ?? chips.find((c) => c.device === name);
  if (byName) return byName;
  const seen = chips.map((c) => `${c.label} (${c.dir}${c.device ? `, ${c.device}` : ""})`);
  throw new GpioError(
    "NO_CHIP",
    `no GPIO chip "${name}"; chips seen: ${seen.length > 0 ? seen.join(", ") : "none"}`,
    { labels: chips.map((c) => c.label) },
  );
}

/** Resolves one line to its sysfs number; throws GpioError NO_CHIP / AMBIGUOUS_CHIP / LINE_RANGE. */
export function resolveLine(spec: LineSpec, opts: { sysfsRoot?: string } = {}): ResolvedLine {
  const chip = findChip(listChips(opts.sysfsRoot ?? DEFAULT_SYSFS_ROOT), spec.chip);
  if (!Number.isInteger(spec.line) || spec.line < 0 || spec.line >= chip.ngpio) {
    throw new GpioError(
      "LINE_RANGE",
      `line ${spec.line} is outside chip "${chip.label}" (${chip.dir}: ${chip.ngpio} lines)`,
      { line: `${spec.chip}:${spec.line}` },
    );
  }
  return { number: chip.base + spec.line, chip, offset: spec.line, activeLow: spec.activeLow === true };
}

/** "label:offset" for messages and logs. */
export function describeLine(spec: LineSpec): string {
  return `${spec.chip}:${spec.line}${spec.activeLow ? " (active-low)" : ""}`;
}
