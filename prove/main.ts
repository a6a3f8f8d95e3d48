#!/usr/bin/env node
/**
 * The long proof runs (docs/reliability.md, docs/performance.md):
 *   npm run prove -- crash [--seed N] [--kills N]
 *   npm run prove -- fuzz [--n N] [--seed N]
 *   npm run prove -- soak [--sessions N] [--minutes M] [--meter-poll-ms N] [--meter-stale-ms N] [--seed N]
 * Each prints its progress and a JSON summary; the exit status is 1 when a violation was found.
 */
import { runCrash } from "./crash.js";
import { runFuzz } from "./fuzz.js";
import { intArg } from "./rng.js";
import { runSoak } from "./soak.js";

const [what, ...argv] = process.argv.slice(2);
const seed = intArg(argv, "seed", Math.floor(Math.random() * 2 ** 31));
const log = (l: string) => process.stderr.write(`${l}\n`);
const plantAt = argv.indexOf("--plant");
const plant = plantAt >= 0 ? (argv[plantAt + 1] as "replay" | "tamper") : undefined;

async function main(): Promise<number> {
  let r: { violations: string[] };
  if (what === "crash") r = await runCrash({ seed, kills: intArg(argv, "kills", 500), log, plant });
  else if (what === "fuzz") r = await runFuzz({ seed, n: intArg(argv, "n", 100_000), log });
  else if (what === "soak")
    r = await runSoak({
      seed,
      sessions: intArg(argv, "sessions", 10_000),
      minutes: intArg(argv, "minutes", 0),
      meter: {
        ...(argv.includes("--meter-poll-ms") ? { pollMs: intArg(argv, "meter-poll-ms", 500) } : {}),
        ...(argv.includes("--meter-stale-ms") ? { staleMs: intArg(argv, "meter-stale-ms", 5000) } : {}),
      },
      log,
    });
  else {
    process.stderr.write(
      "usage: prove crash [--seed N] [--kills N] | fuzz [--n N] | soak [--sessions N] [--minutes M] [--meter-poll-ms N] [--meter-stale-ms N]\n",
    );
    return 2;
  }
  if (process.env.PROVE_NS !== "1") process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
  return r.violations.length === 0 ? 0 : 1;
}

main().then(
  (c) => process.exit(c),
  (e) => {
    process.stderr.write(`prove: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(2);
  },
);
