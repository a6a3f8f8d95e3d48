/** What a figure ran on: printed beside it, since figures differ from one machine to the next. */
import { spawnSync } from "node:child_process";
import { arch, cpus, loadavg } from "node:os";

export function machine(): Record<string, unknown> {
  const c = cpus();
  return {
    cpus: c.length,
    cpuModel: c[0]?.model ?? "unknown",
    arch: arch(),
    node: process.version,
    loadAverage1m: Math.round((loadavg()[0] ?? 0) * 100) / 100,
  };
}

/** The file system type of `dir` (`stat -f -c %T`: ext2/ext3 for ext4, tmpfs, …). */
export function fsType(dir: string): string {
  const r = spawnSync("stat", ["-f", "-c", "%T", dir], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : "unknown";
}

export const round = (x: number, digits = 2): number => {
  const k = 10 ** digits;
  return Math.round(x * k) / k;
};
