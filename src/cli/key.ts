/** `pilectl key new --key-id N --out FILE [--force]`: makes a pile virtual key file (mode 0600). */
import { randomBytes } from "node:crypto";
import { KEY_LENGTH } from "../protocol/code.js";
import { writeKeyFile } from "../sdk/keyfile.js";
import { CliError, type CliIo, EXIT_OK, intOption, parseOptions, printJson, stringOption } from "./io.js";

const USAGE = "usage: pilectl key new --key-id N --out FILE [--force]\n";

export async function run(args: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === "--help" || sub === "-h" || sub === "help") {
    io.out(USAGE);
    return EXIT_OK;
  }
  if (sub !== "new") throw new CliError(`key: unknown subcommand '${sub ?? ""}'\n${USAGE}`.trimEnd());
  const { values } = parseOptions(rest, {
    "key-id": { type: "string" },
    out: { type: "string" },
    force: { type: "boolean" },
  });
  const keyId = intOption(values, "key-id", 0, 0xffffffff);
  const out = stringOption(values, "out");
  const key = new Uint8Array(randomBytes(KEY_LENGTH));
  const w = writeKeyFile(out, keyId, key, { overwrite: values.force === true });
  key.fill(0);
  if (!w.ok)
    throw new CliError(
      w.error.code === "EXISTS" ? `${w.error.message} (use --force to replace it)` : w.error.message,
    );
  // The key itself is never printed.
  printJson(io, { keyId, file: out });
  return EXIT_OK;
}
