/**
 * `pilectl store recover`: the technician's explicit way out of a store piled refuses to open
 * (CORRUPT, LOST_PAST, FOREIGN). Stop piled first: the damaged database, its journal and identity
 * file are moved aside (kept as `<name>.damaged-<ms>`, never deleted), a new store is created with
 * its time floor raised to now (or --floor-ms if later) so no code issued before can be accepted
 * again, and the act is written to the new store's audit log.
 *
 *   pilectl store recover --db PATH --yes [--floor-ms N] [--reason TEXT]
 *
 * Prints one JSON line {"recovered", "floorMs", "keptAs"}; a store error prints
 * {"error": CODE, "message"} and exits 1; usage errors exit 2.
 */
import { StoreError } from "../store/errors.js";
import { recoverStore } from "../store/store.js";
import { CliError, type CliIo, EXIT_OK, EXIT_REJECTED, parseOptions, printJson, stringOption } from "./io.js";

const USAGE = "usage: pilectl store recover --db PATH --yes [--floor-ms N] [--reason TEXT]\n";
const DEC = /^(0|[1-9][0-9]{0,19})$/;

export async function run(args: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === "--help" || sub === "-h") {
    io.out(USAGE);
    return EXIT_OK;
  }
  if (sub !== "recover") throw new CliError(`store: unknown subcommand '${sub ?? ""}'\n${USAGE}`);
  const { values } = parseOptions(rest, {
    db: { type: "string" },
    yes: { type: "boolean" },
    "floor-ms": { type: "string" },
    reason: { type: "string" },
  });
  const db = stringOption(values, "db");
  if (values["yes"] !== true) {
    throw new CliError("store recover starts a new store (the damaged one is kept aside): pass --yes");
  }
  const floorRaw = values["floor-ms"];
  if (floorRaw !== undefined && (typeof floorRaw !== "string" || !DEC.test(floorRaw))) {
    throw new CliError("--floor-ms must be a Unix ms count");
  }
  const floorMs = typeof floorRaw === "string" ? BigInt(floorRaw) : undefined;
  if (floorMs !== undefined && floorMs > 0xffffffffffffffffn)
    throw new CliError("--floor-ms is out of range");
  const reason = typeof values["reason"] === "string" ? values["reason"] : undefined;
  try {
    const r = recoverStore(db, {
      ...(floorMs === undefined ? {} : { floorMs }),
      ...(reason === undefined ? {} : { reason }),
    });
    r.store.close();
    printJson(io, { recovered: db, floorMs: r.floor, keptAs: r.keptAs });
    return EXIT_OK;
  } catch (e) {
    if (!(e instanceof StoreError)) throw e;
    printJson(io, { error: e.code, message: e.message });
    return EXIT_REJECTED;
  }
}
