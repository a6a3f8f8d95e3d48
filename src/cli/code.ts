/**
 * `pilectl code issue …`: issues a charging code as the platform would (SDK issuer).
 * `pilectl code check …`: opens a code and runs the pure checks of PROTOCOL.md §2 (1–4) as a
 * pile would, with node:crypto. It cannot know replay: that needs the pile's ledger.
 */
import { fromBase64Url, toHex, U64_MAX } from "../protocol/bytes.js";
import {
  type Carrier,
  checkClaims,
  DEFAULT_SKEW_MS,
  KeyRing,
  type OpenedCode,
  openCode,
} from "../protocol/code.js";
import { nodeSuite } from "../protocol/node-suite.js";
import { Issuer } from "../sdk/issuer.js";
import { type KeyFileContents, readKeyFile } from "../sdk/keyfile.js";
import {
  CliError,
  type CliIo,
  EXIT_OK,
  EXIT_REJECTED,
  intOption,
  parseOptions,
  printJson,
  stringOption,
} from "./io.js";

const USAGE = `usage:
  pilectl code issue --key FILE --device ID --pile ID [--valid-for S] [--issued-at MS]
                     [--carrier vehicle|mobile] [--max-energy-wh N] [--max-duration-s N]
  pilectl code check --key FILE [--key FILE …] --pile ID [--now MS] [--skew-ms N] CODE
`;

export { DEFAULT_SKEW_MS };

export async function run(args: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case "issue":
      return issue(rest, io);
    case "check":
      return check(rest, io);
    case "--help":
    case "-h":
    case "help":
      io.out(USAGE);
      return EXIT_OK;
    default:
      throw new CliError(`code: unknown subcommand '${sub ?? ""}'\n${USAGE}`.trimEnd());
  }
}

function loadKey(path: string): KeyFileContents {
  const r = readKeyFile(path);
  if (!r.ok) throw new CliError(r.error.message);
  return r.value;
}

/** Unix milliseconds 0..2^64−1 as a bigint; `fallback` when absent. */
function msOption(values: Record<string, unknown>, name: string, fallback: () => bigint): bigint {
  const raw = values[name];
  if (raw === undefined) return fallback();
  if (typeof raw !== "string" || !/^\d{1,20}$/.test(raw))
    throw new CliError(`--${name} must be a whole number of ms`);
  const n = BigInt(raw);
  if (n > U64_MAX) throw new CliError(`--${name} must be at most ${U64_MAX}`);
  return n;
}

function fields(o: OpenedCode) {
  const c = o.claims;
  return {
    codeId: toHex(o.codeId),
    keyId: o.keyId,
    issuedAt: c.issuedAt.toString(),
    validFor: c.validFor,
    maxEnergyWh: c.maxEnergyWh,
    maxDurationS: c.maxDurationS,
    carrier: c.carrier,
    deviceId: c.deviceId,
    pileId: c.pileId,
  };
}

async function issue(args: string[], io: CliIo): Promise<number> {
  const { values } = parseOptions(args, {
    key: { type: "string" },
    device: { type: "string" },
    pile: { type: "string" },
    "valid-for": { type: "string" },
    "issued-at": { type: "string" },
    carrier: { type: "string" },
    "max-energy-wh": { type: "string" },
    "max-duration-s": { type: "string" },
  });
  const keyPath = stringOption(values, "key");
  const deviceId = stringOption(values, "device");
  const pileId = stringOption(values, "pile");
  const validForS = intOption(values, "valid-for", 1, 2_678_400, 86_400);
  const issuedAtMs = msOption(values, "issued-at", () => BigInt(Date.now()));
  const carrier = values.carrier ?? "vehicle";
  if (carrier !== "vehicle" && carrier !== "mobile")
    throw new CliError("--carrier must be vehicle or mobile");
  const maxEnergyWh = intOption(values, "max-energy-wh", 0, 0xffffffff, 0);
  const maxDurationS = intOption(values, "max-duration-s", 0, 0xffffffff, 0);
  const key = loadKey(keyPath);
  const issuer = Issuer.create({ keys: [key] });
  if (!issuer.ok) throw new CliError(issuer.error.message);
  const r = issuer.value.issue({
    deviceId,
    pileId,
    validForS,
    issuedAtMs,
    carrier: carrier as Carrier,
    limits: { maxEnergyWh, maxDurationS },
  });
  if (!r.ok) throw new CliError(r.error.message);
  const c = r.value;
  printJson(io, {
    code: c.codeText,
    // V goes to the carrier with the code (PROTOCOL.md §1); this command plays the platform.
    verifySecret: toHex(c.verifySecret),
    codeId: toHex(c.codeId),
    keyId: c.keyId,
    issuedAt: c.claims.issuedAt.toString(),
    validFor: c.claims.validFor,
    maxEnergyWh: c.claims.maxEnergyWh,
    maxDurationS: c.claims.maxDurationS,
    carrier: c.carrier,
    deviceId: c.deviceId,
    pileId: c.pileId,
  });
  return EXIT_OK;
}

async function check(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseOptions(
    args,
    {
      key: { type: "string", multiple: true },
      pile: { type: "string" },
      now: { type: "string" },
      "skew-ms": { type: "string" },
    },
    true,
  );
  const keyPaths = (values.key as string[] | undefined) ?? [];
  if (keyPaths.length === 0) throw new CliError("--key is required");
  const pileId = stringOption(values, "pile");
  const now = msOption(values, "now", () => BigInt(Date.now()));
  const skewMs = intOption(values, "skew-ms", 0, 86_400_000, DEFAULT_SKEW_MS);
  if (positionals.length !== 1) throw new CliError("code check takes exactly one CODE (base64url)");
  const ring = new KeyRing(nodeSuite);
  for (const p of keyPaths) {
    const k = loadKey(p);
    if (ring.has(k.keyId)) throw new CliError(`key ${k.keyId} is given twice (${p})`);
    ring.add(k.keyId, k.key);
  }
  const bytes = fromBase64Url(positionals[0]!);
  if (!bytes) {
    printJson(io, { reason: "BAD_CODE" });
    return EXIT_REJECTED;
  }
  const opened = openCode(nodeSuite, ring, bytes);
  if (!opened.ok) {
    printJson(io, { reason: opened.error });
    return EXIT_REJECTED;
  }
  const failure = checkClaims(opened.value, { pileId, now, skewMs });
  printJson(io, { reason: failure ?? "OK", ...fields(opened.value) });
  return failure ? EXIT_REJECTED : EXIT_OK;
}
