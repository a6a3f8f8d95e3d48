/**
 * The unlock commands the demo prints run as printed: the code issue line writes a code file with
 * the demo's key file, and the carrier lines hand pilectl that code and its verify secret.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { unlockCommands } from "../../src/daemon/demo-commands.js";
import { writeKeyFile } from "../../src/sdk/keyfile.js";

const work = mkdtempSync(join(tmpdir(), "demo-commands-"));
after(() => rmSync(work, { recursive: true, force: true }));

test("the demo's printed unlock commands issue a code and pass it with its verify secret to the carrier", () => {
  mkdirSync(join(work, "keys"), { mode: 0o700 });
  const keyFile = join(work, "keys", "key-1.json");
  const wrote = writeKeyFile(keyFile, 1, crypto.getRandomValues(new Uint8Array(32)));
  assert.ok(wrote.ok);
  const codeFile = join(work, "code.json");
  const text = unlockCommands("SZ-0042", keyFile, codeFile, "/dev/pts/77");
  const lines = text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.startsWith("node "));
  assert.equal(lines.length, 3, text);

  const issue = spawnSync("bash", ["-c", lines[0]!], { encoding: "utf8" });
  assert.equal(issue.status, 0, issue.stderr);
  const code = JSON.parse(readFileSync(codeFile, "utf8")) as { code: string; verifySecret: string };
  assert.match(code.code, /\S{8,}/);
  assert.match(code.verifySecret, /\S{8,}/);

  for (const [line, verb] of [
    [lines[1]!, "unlock"],
    [lines[2]!, "stop"],
  ] as const) {
    // The words bash hands to pilectl, after the code file's fields are expanded.
    const words = spawnSync("bash", ["-c", `printf '%s\\n' ${line.slice("node ".length)}`], {
      encoding: "utf8",
    });
    assert.equal(words.status, 0, words.stderr);
    const argv = words.stdout.trimEnd().split("\n");
    assert.deepEqual(argv.slice(1, 3), ["carrier", verb]);
    const value = (flag: string) => argv[argv.indexOf(flag) + 1];
    assert.equal(value("--pile"), "SZ-0042");
    assert.equal(value("--code"), code.code);
    assert.equal(value("--verify-secret"), code.verifySecret);
    assert.equal(value("--hci-uart"), "/dev/pts/77");
    // pilectl knows the command and every flag printed.
    const help = spawnSync(process.execPath, [argv[0]!, "carrier", verb, "--help"], { encoding: "utf8" });
    const usage = `${help.stdout}${help.stderr}`;
    for (const flag of ["--pile", "--code", "--verify-secret", "--hci-uart"])
      assert.match(usage, new RegExp(flag));
  }
});
