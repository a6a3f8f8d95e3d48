/**
 * The control module: what a technician may ask of the running pile (views, `PileControl`), the
 * one command table both front ends dispatch through, the socket's wire format and its client.
 * The daemon serves it (src/daemon/control-socket.ts, the console); `pilectl` asks through it.
 */
export { type ClientErrorCode, ControlClientError, requestControl } from "./client.js";
export {
  auditArgs,
  audited,
  COMMAND_NAMES,
  commandHelp,
  executeCommand,
  formatResult,
  resolveCommand,
} from "./commands.js";
export { OCPP_SPECS, type OcmfView, type OcppControl, type OcppView } from "./ocpp.js";
export { type ControlReply, type ControlRequest, MAX_REQUEST_BYTES, requestSchema } from "./protocol.js";
export { carriesKey, REDACTED_WORD, redactText, redactWord, redactWords } from "./redact.js";
export { type CommandContext, type CommandName, type CommandSpec, parseKeyId, SPECS } from "./table.js";
export type * from "./views.js";
