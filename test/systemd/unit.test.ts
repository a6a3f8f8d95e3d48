/**
 * The shipped unit: `systemd-analyze verify` clean and `systemd-analyze security` exposure ≤ 2.0,
 * for the unit as shipped and with the kernel-HCI drop-in. verify runs with --root on a temp tree
 * holding the host's unit directory, the unit file unchanged, and a stub /usr/bin/piled (verify
 * insists that ExecStart exists and is executable; the stub stands for the installed daemon).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { repoRoot } from "../daemon/fake-pile-control.js";

function analyze(args: string[]): { code: number; out: string } {
  const r = spawnSync("systemd-analyze", args, { encoding: "utf8" });
  assert.equal(
    r.error,
    undefined,
    "systemd-analyze is missing: apt-get install systemd (scripts/system-deps.txt)",
  );
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

function exposure(unitPath: string): number {
  const r = analyze(["security", "--offline=yes", unitPath]);
  const m = /Overall exposure level for [^:]+: (\d+\.\d+)/.exec(r.out);
  assert.ok(m, r.out);
  return Number(m[1]);
}

const unitText = async () =>
  readFileSync(join(await repoRoot(import.meta.url), "systemd/piled.service"), "utf8");

test("systemd-analyze verify: the unit is clean", async () => {
  const root = mkdtempSync(join(tmpdir(), "piled-unit-"));
  try {
    mkdirSync(join(root, "usr/bin"), { recursive: true });
    mkdirSync(join(root, "usr/lib/systemd"), { recursive: true });
    mkdirSync(join(root, "etc/systemd/system"), { recursive: true });
    cpSync("/usr/lib/systemd/system", join(root, "usr/lib/systemd/system"), {
      recursive: true,
      verbatimSymlinks: true,
    });
    writeFileSync(join(root, "usr/bin/piled"), "#!/bin/sh\nexit 0\n", { mode: 0o755 });
    writeFileSync(join(root, "usr/bin/kill"), "#!/bin/sh\nexit 0\n", { mode: 0o755 });
    writeFileSync(join(root, "etc/systemd/system/piled.service"), await unitText());
    const r = analyze(["verify", `--root=${root}`, "piled.service"]);
    assert.equal(r.code, 0, r.out);
    assert.equal(r.out.trim(), "", `verify printed warnings:\n${r.out}`);

    // The same check catches a broken unit (the test can fail).
    writeFileSync(
      join(root, "etc/systemd/system/piled.service"),
      (await unitText()).replace("Restart=always", "Restart=sometimes"),
    );
    assert.notEqual(analyze(["verify", `--root=${root}`, "piled.service"]).out.trim(), "");
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("systemd-analyze security: exposure ≤ 2.0, shipped and with the HCI drop-in", async () => {
  const dir = mkdtempSync(join(tmpdir(), "piled-unit-"));
  try {
    const root = await repoRoot(import.meta.url);
    const shipped = exposure(join(root, "systemd/piled.service"));
    assert.ok(shipped <= 2.0, `exposure ${shipped}`);
    // The drop-in's [Service] lines merged into the unit, as systemd would.
    const dropIn = readFileSync(join(root, "systemd/ble-hci.conf"), "utf8")
      .split("\n")
      .filter((l) => /^[A-Z]/.test(l))
      .join("\n");
    const merged = (await unitText()).replace("[Install]", `${dropIn}\n\n[Install]`);
    writeFileSync(join(dir, "piled.service"), merged);
    const hci = exposure(join(dir, "piled.service"));
    assert.ok(hci <= 2.0, `exposure with ble-hci.conf ${hci}`);
    assert.ok(hci > shipped, "the drop-in does widen the sandbox (it was merged)");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the unit keeps the contract the daemon relies on", async () => {
  const u = await unitText();
  for (const line of [
    "Type=notify",
    "NotifyAccess=main",
    "WatchdogSec=10",
    "Restart=always",
    "RestartSec=2",
    "ExecStart=/usr/bin/piled --config /etc/piled/piled.json",
    "ExecStopPost=/usr/bin/piled --safe-outputs --config /etc/piled/piled.json",
    "User=piled",
    "SupplementaryGroups=gpio dialout",
    "StateDirectory=piled",
    "ConfigurationDirectory=piled",
    "RuntimeDirectory=piled",
  ])
    assert.ok(u.split("\n").includes(line), line);
});
