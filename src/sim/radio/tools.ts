/**
 * What the emulated radio (../radio.ts) needs from the machine: the tools, with the Debian
 * package of each, and the AF_ALG shim compiled once into a cache folder.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { accessSync, constants, existsSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";

export type RadioErrorCode = "MISSING_TOOL" | "NOT_PERMITTED" | "START_FAILED" | "BRIDGE_FAILED" | "CLOSED";

export class RadioError extends Error {
  override readonly name = "RadioError";
  constructor(
    readonly code: RadioErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Which Debian package brings each tool. */
const TOOLS: Array<[tool: string, pkg: string]> = [
  ["btvirt", "bluez-test-tools"],
  ["socat", "socat"],
  ["gcc", "gcc"],
  ["unshare", "util-linux"],
  ["mount", "mount"],
];

function findTool(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "/usr/bin:/bin").split(delimiter)) {
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return undefined;
}

/** Names every missing tool with its Debian package; throws MISSING_TOOL. */
export function checkRadioTools(): void {
  const missing = TOOLS.filter(([t]) => findTool(t) === undefined);
  if (missing.length > 0) {
    throw new RadioError(
      "MISSING_TOOL",
      `the emulated BLE radio needs ${missing.map(([t, p]) => `${t} (Debian package ${p})`).join(", ")}`,
    );
  }
}

function defaultShimSource(): string {
  // dist/src/sim/radio/tools.js → the repository root is four levels up; src/sim/radio/tools.ts → three.
  const here = fileURLToPath(new URL(".", import.meta.url));
  for (const up of ["../../../..", "../../.."]) {
    const p = join(here, up, "src/sim/radio/af_alg_shim.c");
    if (existsSync(p)) return p;
  }
  throw new RadioError("START_FAILED", "src/sim/radio/af_alg_shim.c not found beside this module");
}

function defaultCacheDir(): string {
  return join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "piled");
}

/** Compiles the AF_ALG shim once per source version; returns the .so path. */
export function buildShim(opts: { cacheDir?: string; shimSourcePath?: string } = {}): string {
  const src = opts.shimSourcePath ?? defaultShimSource();
  const code = readFileSync(src);
  const tag = createHash("sha256").update(code).digest("hex").slice(0, 16);
  const dir = opts.cacheDir ?? defaultCacheDir();
  const out = join(dir, `af_alg_shim-${tag}.so`);
  if (existsSync(out)) return out;
  mkdirSync(dir, { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  const r = spawnSync("gcc", ["-shared", "-fPIC", "-O2", "-o", tmp, src, "-ldl"], { encoding: "utf8" });
  if (r.status !== 0) {
    throw new RadioError(
      "START_FAILED",
      `gcc could not build the AF_ALG shim: ${(r.stderr || String(r.error)).trim()}`,
    );
  }
  renameSync(tmp, out); // atomic: concurrent builders race harmlessly
  return out;
}
