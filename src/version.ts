/**
 * The package version, read once from package.json (the single source of the number that
 * `piled --version`, `pilectl --version` and the status view report).
 */
import { readFileSync } from "node:fs";

/** dist/src/version.js and src/version.ts both sit two levels below the package root or one. */
function readVersion(): string {
  for (const rel of ["../../package.json", "../package.json"]) {
    try {
      const j = JSON.parse(readFileSync(new URL(rel, import.meta.url), "utf8")) as {
        name?: unknown;
        version?: unknown;
      };
      if (j.name === "piled" && typeof j.version === "string") return j.version;
    } catch {
      // not at this level
    }
  }
  return "unknown";
}

export const VERSION: string = readVersion();
