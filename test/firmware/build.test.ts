/**
 * firmware-bridge builds (firmware, host unit tests, harness) with the Debian toolchain, prints
 * the firmware's size, and the host unit tests of the pure firmware logic pass.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { BUILD, buildFirmware } from "../helpers/pilot-harness.js";

test("make -C firmware-bridge builds the firmware, the host tests and the harness", () => {
  const r = buildFirmware();
  assert.equal(r.status, 0, r.output);
  const size = spawnSync("make", ["-s", "-C", `${BUILD}../firmware`, `OUT=${BUILD}`, "size"], {
    encoding: "utf8",
  });
  assert.equal(size.status, 0, size.stderr);
  process.stdout.write(size.stdout);
  const m = /flash (\d+) bytes .*RAM (\d+) bytes/.exec(size.stdout);
  assert.ok(m, size.stdout);
  const [flash, ram] = [Number(m[1]), Number(m[2])];
  assert.ok(flash > 1000 && flash <= 8 * 1024, `flash ${flash} bytes (goal 8 KB)`);
  assert.ok(ram > 100 && ram <= 1024, `RAM ${ram} bytes (goal 1 KB)`);
});

test("host unit tests of the pure firmware logic pass", () => {
  const r = buildFirmware();
  assert.equal(r.status, 0, r.output);
  const t = spawnSync(`${BUILD}test_host`, { encoding: "utf8" });
  assert.equal(t.status, 0, `${t.stdout}${t.stderr}`);
  const m = /host tests: (\d+) passed, 0 failed/.exec(t.stdout);
  assert.ok(m && Number(m[1]) > 100, t.stdout);
});
