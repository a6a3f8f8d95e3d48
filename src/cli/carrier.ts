/**
 * `pilectl carrier unlock|stop`: act as a carrier (vehicle device or phone) over BLE.
 *   pilectl carrier unlock --pile ID --code CODE --verify-secret HEX [--hci-uart PATH] [--hci-device N] [--timeout-ms N]
 *   pilectl carrier stop   --pile ID --code CODE --verify-secret HEX [--hci-uart PATH] [--hci-device N] [--timeout-ms N]
 * Prints one JSON line with the outcome (never the code's secret `V`); exit 0 accepted/stopped,
 * 1 refused or failed, 2 usage.
 */
import { NobleCentral } from "../hw/ble/central.js";
import { type BleController, BleError } from "../hw/ble/errors.js";
import { fromBase64Url } from "../protocol/bytes.js";
import { parseCodeHeader } from "../protocol/code.js";
// pilectl runs on Node: the carrier's proofs go through node:crypto (OpenSSL). The SDK's default,
// node-forge, is for runtimes without it; cold, its SHA-256 costs ~0.5 ms a call here.
import { nodeSuite } from "../protocol/node-suite.js";
import { type CarrierOutcome, stop, unlock } from "../sdk/carrier.js";
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

const OPTIONS = {
  pile: { type: "string" },
  code: { type: "string" },
  "verify-secret": { type: "string" },
  "hci-uart": { type: "string" },
  "hci-device": { type: "string" },
  "timeout-ms": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

const USAGE =
  "usage: pilectl carrier unlock|stop --pile ID --code CODE --verify-secret HEX [--hci-uart PATH | --hci-device N] [--timeout-ms N]\n";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

function describe(o: CarrierOutcome): Record<string, unknown> {
  switch (o.kind) {
    case "accepted":
      return { outcome: "accepted", sessionId: hex(o.sessionId) };
    case "rejected":
    case "error":
      return { outcome: o.kind, reason: o.reason };
    case "timeout":
    case "disconnected":
    case "aborted":
      return { outcome: o.kind, stage: o.stage };
    case "link-error":
      return { outcome: o.kind, stage: o.stage, message: o.message };
    case "bad-input":
      return { outcome: o.kind, why: o.why };
    default:
      return { outcome: o.kind };
  }
}

export async function run(args: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === "--help" || sub === "-h") {
    io.err(USAGE);
    return sub === undefined ? 2 : EXIT_OK;
  }
  if (sub !== "unlock" && sub !== "stop")
    throw new CliError(`carrier: unknown subcommand '${sub}'\n${USAGE}`);
  const { values } = parseOptions(rest, OPTIONS);
  if (values.help) {
    io.err(USAGE);
    return EXIT_OK;
  }
  const pileId = stringOption(values, "pile");
  const code = fromBase64Url(stringOption(values, "code"));
  if (!code) throw new CliError("--code must be base64url without padding");
  const header = parseCodeHeader(code);
  if (!header) throw new CliError("--code is not a v1 charging code");
  const secretHex = stringOption(values, "verify-secret");
  if (!/^[0-9a-fA-F]{64}$/.test(secretHex)) throw new CliError("--verify-secret must be 64 hex digits");
  const verifySecret = new Uint8Array(Buffer.from(secretHex, "hex"));
  const timeoutMs = intOption(values, "timeout-ms", 100, 600_000, 15_000);
  const uart =
    typeof values["hci-uart"] === "string" ? values["hci-uart"] : process.env.BLUETOOTH_HCI_SOCKET_UART_PORT;
  const controller: BleController =
    uart !== undefined && uart.length > 0
      ? { kind: "uart", path: uart }
      : { kind: "hci", device: intOption(values, "hci-device", 0, 15, 0) };

  const transport = new NobleCentral({ controller });
  const started = performance.now();
  try {
    const link = await transport.connect(pileId, { timeoutMs });
    const remaining = Math.max(100, timeoutMs - (performance.now() - started));
    const outcome =
      sub === "unlock"
        ? await unlock(link, { code, verifySecret, pileId, timeoutMs: remaining, suite: nodeSuite })
        : await stop(link, {
            codeId: header.codeId,
            keyId: header.keyId,
            verifySecret,
            pileId,
            timeoutMs: remaining,
            suite: nodeSuite,
          });
    printJson(io, { ...describe(outcome), pileId, mtu: link.mtu });
    await link.close();
    const good = sub === "unlock" ? outcome.kind === "accepted" : outcome.kind === "stopped";
    return good ? EXIT_OK : EXIT_REJECTED;
  } catch (e) {
    if (e instanceof BleError) {
      printJson(io, { outcome: "link-error", code: e.code, message: e.message, pileId });
      return EXIT_REJECTED;
    }
    throw e;
  } finally {
    await transport.close();
  }
}
