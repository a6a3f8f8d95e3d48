/**
 * `npm run bench`: runs every bench/*.bench.js module and prints one JSON document of figures.
 * A module exports `name` and `run(): Promise<Record<string, unknown>>`. Figures are medians of
 * repeated runs; compare ratios rather than absolute numbers on a shared machine.
 */
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const results: Record<string, unknown> = {};
for (const f of readdirSync(here)
  .filter((n) => n.endsWith(".bench.js"))
  .sort()) {
  const mod = (await import(pathToFileURL(join(here, f)).href)) as {
    name: string;
    run: () => Promise<Record<string, unknown>>;
  };
  if (only.length > 0 && !only.includes(mod.name)) continue;
  process.stderr.write(`bench: ${mod.name}…\n`);
  results[mod.name] = await mod.run();
}
process.stdout.write(
  `${JSON.stringify({ machine: { cpus: (await import("node:os")).cpus().length, node: process.version }, results }, null, 2)}\n`,
);
