/**
 * pilectl's control commands: ask the running daemon over its control socket.
 *   pilectl status|meter-now|sessions [N] [--ocmf]|faults|clear-fault CODE|all|stop|relay-test|ocpp|
 *           available on|off|current-limit A|off|keys [list|add ID HEX|retire ID]|time|log [N]  [--socket PATH] [--json]
 * Exit 0: done; 1: the daemon refused; 2: usage, or no daemon on the socket.
 */
import { commandHelp, formatResult, requestControl, resolveCommand } from "../control/index.js";
import { CliError, type CliIo, EXIT_OK, EXIT_REJECTED, EXIT_USAGE, parseOptions, printJson } from "./io.js";

export const DEFAULT_SOCKET = "/run/piled/control.sock";

export async function run(cmd: string, rest: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseOptions(
    rest,
    {
      socket: { type: "string" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
      ...(cmd === "sessions" ? { ocmf: { type: "boolean" as const } } : {}),
    },
    true,
  );
  // `sessions --ocmf`: the sealed OCMF records of the last sessions (the `ocmf` command).
  const name = resolveCommand(cmd === "sessions" && values["ocmf"] === true ? "ocmf" : cmd);
  if (values["help"] === true || name === undefined) {
    const help = commandHelp().replace(/^ {2}meter {4}/m, "  meter-now");
    const text = `usage: pilectl ${cmd} [ARGS] [--socket PATH] [--json]\n${help}\n`;
    if (values["help"] !== true) {
      io.err(text);
      return EXIT_USAGE;
    }
    io.out(text);
    return EXIT_OK;
  }
  const socket =
    typeof values["socket"] === "string" ? values["socket"] : (process.env["PILED_SOCKET"] ?? DEFAULT_SOCKET);
  const json = values["json"] === true;

  const r = await requestControl(socket, name, positionals);
  if (!r.ok) throw new CliError(r.error.message, EXIT_USAGE);
  const reply = r.value;
  if (json) printJson(io, reply);
  if (!reply.ok) {
    if (!json) io.err(`pilectl ${cmd}: ${reply.error.code}: ${reply.error.message}\n`);
    return reply.error.code === "USAGE" || reply.error.code === "UNKNOWN_COMMAND"
      ? EXIT_USAGE
      : EXIT_REJECTED;
  }
  if (!json) io.out(`${formatResult(name, reply.result)}\n`);
  return EXIT_OK;
}
