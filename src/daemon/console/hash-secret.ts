#!/usr/bin/env node
/**
 * Prints the scrypt hash string of a technician secret read from stdin (one line), for the
 * config's console.secretHash or the file named by console.secretHashFile:
 *   node dist/src/daemon/console/hash-secret.js < secret.txt > /etc/piled/console.hash
 * The secret itself is never written anywhere.
 */
import { hashSecret } from "./secret.js";

const chunks: Buffer[] = [];
process.stdin.on("data", (c: Buffer) => chunks.push(c));
process.stdin.on("end", () => {
  const secret = Buffer.concat(chunks)
    .toString("utf8")
    .replace(/\r?\n$/, "");
  if (secret.length < 8) {
    process.stderr.write("hash-secret: the secret must be at least 8 characters\n");
    process.exitCode = 2;
    return;
  }
  hashSecret(secret).then(
    (h) => process.stdout.write(`${h}\n`),
    (e: unknown) => {
      process.stderr.write(`hash-secret: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 1;
    },
  );
});
