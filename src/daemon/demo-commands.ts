/**
 * The commands the desk demo prints for one more unlock against it: the platform issues a code
 * with the demo's key file, a carrier presents it over the demo's spare controller. Kept apart
 * from the demo's main so a test can run what is printed.
 */
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const PILECTL = resolve(dirname(fileURLToPath(import.meta.url)), "..", "cli", "pilectl.js");

/** The shell lines for one more unlock (and its stop), indented for the demo's closing text. */
export function unlockCommands(pileId: string, keyFile: string, codeFile: string, hciUart: string): string {
  const field = (f: string) =>
    `"$(node -e 'process.stdout.write(require(process.argv[1]).${f})' ${codeFile})"`;
  return `  one more unlock (the platform issues a code, a carrier presents it):
    node ${PILECTL} code issue --key ${keyFile} --device VIN-DESK-0001 --pile ${pileId} --carrier mobile > ${codeFile}
    node ${PILECTL} carrier unlock --pile ${pileId} --code ${field("code")} --verify-secret ${field("verifySecret")} --hci-uart ${hciUart}
    node ${PILECTL} carrier stop   --pile ${pileId} --code ${field("code")} --verify-secret ${field("verifySecret")} --hci-uart ${hciUart}
`;
}
