import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { main } from "../../src/cli/main.js";

const PKG = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as {
  version: string;
};
const PILED = fileURLToPath(new URL("../../src/daemon/piled.js", import.meta.url));

test("field report: pilectl --version prints the package version", async () => {
  let out = "";
  let err = "";
  const code = await main(["--version"], { out: (t) => (out += t), err: (t) => (err += t) });
  assert.equal(code, 0, err);
  assert.equal(out, `pilectl ${PKG.version}\n`);
});

test("field report: piled --help describes every mode and the signals; --version the package version", () => {
  const help = spawnSync(process.execPath, [PILED, "--help"], { encoding: "utf8" });
  assert.equal(help.status, 0, help.stderr);
  for (const w of ["--config", "--check-config", "--safe-outputs", "--version", "SIGHUP", "exit codes"])
    assert.ok(help.stdout.includes(w), `help mentions ${w}:\n${help.stdout}`);
  assert.ok(help.stdout.includes(PKG.version));
  const ver = spawnSync(process.execPath, [PILED, "--version"], { encoding: "utf8" });
  assert.equal(ver.stdout, `piled ${PKG.version}\n`);
});

test("pilectl hands every command of the control table to the daemon", async () => {
  const { CONTROL } = await import("../../src/cli/main.js");
  const { COMMAND_NAMES } = await import("../../src/control/index.js");
  // `meter` is `pilectl meter-now` (pilectl meter is the field tool that reads a meter itself).
  const hidden = new Set(["help", "meter"]);
  for (const name of COMMAND_NAMES) if (!hidden.has(name)) assert.ok(CONTROL.includes(name), name);
});
