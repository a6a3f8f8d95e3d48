/**
 * udev/99-piled.rules: syntax and coverage. `udevadm verify` does it where the installed udev
 * has it (systemd ≥ 254); Debian 12's udev 252 has not, so a strict parser of the rule grammar
 * (udev(7): comma-separated KEY[{attr}] OP "value" pairs; match keys take == and !=, assignment
 * keys =, +=, -=, :=) always runs too, and every /dev/piled-* name the shipped configs use must
 * be made by a SYMLINK or NAME assignment.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { repoRoot } from "../daemon/fake-pile-control.js";

type Op = "==" | "!=" | "=" | "+=" | "-=" | ":=";
interface Pair {
  key: string;
  attr?: string;
  op: Op;
  value: string;
}
type Parsed = { ok: true; rules: Array<{ line: number; pairs: Pair[] }> } | { ok: false; errors: string[] };

const MATCH_OPS: Op[] = ["==", "!="];
const ASSIGN_OPS: Op[] = ["=", "+=", "-=", ":="];
/** Keys that only match; keys that only assign; keys that do both. `{}` = takes an attribute. */
const MATCH_ONLY = new Set([
  "ACTION",
  "DEVPATH",
  "KERNEL",
  "KERNELS",
  "SUBSYSTEM",
  "SUBSYSTEMS",
  "DRIVER",
  "DRIVERS",
  "ATTRS{}",
  "TAGS",
  "TEST",
  "TEST{}",
  "PROGRAM",
  "RESULT",
  "CONST{}",
]);
const ASSIGN_ONLY = new Set([
  "OWNER",
  "GROUP",
  "MODE",
  "SECLABEL{}",
  "RUN",
  "RUN{}",
  "LABEL",
  "GOTO",
  "IMPORT{}",
  "OPTIONS",
]);
const BOTH = new Set(["NAME", "SYMLINK", "ATTR{}", "SYSCTL{}", "ENV{}", "TAG"]);

function parseRules(text: string): Parsed {
  const errors: string[] = [];
  const rules: Array<{ line: number; pairs: Pair[] }> = [];
  const labels = new Set<string>();
  const gotos: Array<[number, string]> = [];
  const lines = text.split("\n");
  for (let n = 0; n < lines.length; n++) {
    let l = lines[n]!;
    const lineNo = n + 1;
    while (l.endsWith("\\") && n + 1 < lines.length) l = l.slice(0, -1) + lines[++n]!;
    if (/^\s*(#.*)?$/.test(l)) continue;
    const pairs: Pair[] = [];
    let rest = l.trim();
    while (rest.length > 0) {
      const m = /^([A-Z_]+)(?:\{([^}]+)\})?\s*(==|!=|\+=|-=|:=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,\s*|$)/.exec(
        rest,
      );
      if (!m) {
        errors.push(`line ${lineNo}: cannot parse at: ${rest.slice(0, 40)}`);
        break;
      }
      const [whole, key, attr, op, value, sep] = m;
      const spec = `${key}${attr !== undefined ? "{}" : ""}`;
      const o = op as Op;
      if (MATCH_ONLY.has(spec)) {
        if (!MATCH_OPS.includes(o))
          errors.push(`line ${lineNo}: ${key} is a match key, ${op} is an assignment`);
      } else if (ASSIGN_ONLY.has(spec)) {
        if (!ASSIGN_OPS.includes(o))
          errors.push(`line ${lineNo}: ${key} is an assignment key, ${op} is a match`);
        if ((key === "LABEL" || key === "GOTO") && o !== "=") errors.push(`line ${lineNo}: ${key} takes =`);
        if (key === "MODE" && !/^0?[0-7]{3}$/.test(value!))
          errors.push(`line ${lineNo}: MODE "${value}" is not octal`);
      } else if (!BOTH.has(spec)) {
        errors.push(`line ${lineNo}: unknown key ${spec}`);
      }
      if (key === "LABEL") labels.add(value!);
      if (key === "GOTO") gotos.push([lineNo, value!]);
      pairs.push({ key: key!, ...(attr !== undefined ? { attr } : {}), op: o, value: value! });
      rest = rest.slice(whole!.length);
      if (sep === "" && rest.length > 0) errors.push(`line ${lineNo}: missing comma`);
      if (sep !== "" && rest.length === 0) errors.push(`line ${lineNo}: trailing comma`);
    }
    rules.push({ line: lineNo, pairs });
  }
  for (const [line, target] of gotos)
    if (!labels.has(target)) errors.push(`line ${line}: GOTO "${target}" has no LABEL`);
  return errors.length ? { ok: false, errors } : { ok: true, rules };
}

const rulesText = async () =>
  readFileSync(join(await repoRoot(import.meta.url), "udev/99-piled.rules"), "utf8");

test("udevadm verify, where the installed udev has it", async (t) => {
  const help = spawnSync("udevadm", ["--help"], { encoding: "utf8" });
  assert.equal(help.error, undefined, "udevadm is missing: apt-get install udev (scripts/system-deps.txt)");
  if (!/^\s+verify\s/m.test(help.stdout)) {
    t.diagnostic("this udev has no `udevadm verify`: the grammar test below is the syntax check");
    return;
  }
  const root = await repoRoot(import.meta.url);
  // Group names are not resolved here: this machine need not have the gpio group that
  // systemd/piled.sysusers makes on the pile (checked by the next test, with systemd-sysusers).
  const r = spawnSync("udevadm", ["verify", "--resolve-names=never", join(root, "udev/99-piled.rules")], {
    encoding: "utf8",
  });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
});

test("field report: udevadm verify on Debian 13 finds no gpio group: every group the rules and the unit name is made by systemd/piled.sysusers", async () => {
  const root = await repoRoot(import.meta.url);
  const rules = [...(await rulesText()).matchAll(/GROUP="([^"]+)"/g)].map((m) => m[1]!);
  const unit = readFileSync(join(root, "systemd/piled.service"), "utf8");
  const supplementary = (/^SupplementaryGroups=(.*)$/m.exec(unit)?.[1] ?? "").split(/\s+/).filter(Boolean);
  const named = new Set([...rules, ...supplementary]);
  assert.ok(named.has("gpio"), "the rules give the GPIO files to group gpio");
  const made = mkdtempSync(join(tmpdir(), "piled-sysusers-"));
  try {
    mkdirSync(join(made, "etc"));
    const r = spawnSync("systemd-sysusers", [`--root=${made}`, join(root, "systemd/piled.sysusers")], {
      encoding: "utf8",
    });
    assert.equal(
      r.error,
      undefined,
      "systemd-sysusers is missing: apt-get install systemd (scripts/system-deps.txt)",
    );
    assert.equal(r.status, 0, `systemd-sysusers refused systemd/piled.sysusers: ${r.stderr}`);
    const groups = new Map(
      readFileSync(join(made, "etc/group"), "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => l.split(":"))
        .map((f) => [f[0]!, (f[3] ?? "").split(",").filter(Boolean)] as const),
    );
    for (const g of named) {
      assert.ok(
        groups.has(g),
        `group ${g} (named by the rules or the unit) is not made by systemd/piled.sysusers`,
      );
      if (supplementary.includes(g))
        assert.ok(groups.get(g)!.includes("piled"), `piled is not a member of ${g}`);
    }
    assert.match(
      readFileSync(join(made, "etc/passwd"), "utf8"),
      /^piled:x:\d+:\d+:[^:]*:\/nonexistent:\/usr\/sbin\/nologin$/m,
    );
  } finally {
    rmSync(made, { recursive: true, force: true });
  }
});

test("the rules parse under the strict grammar", async () => {
  const r = parseRules(await rulesText());
  assert.ok(r.ok, r.ok ? "" : r.errors.join("\n"));
  assert.ok(r.rules.length >= 10);
});

test("the grammar check does fail on broken rules", () => {
  const bad = [
    'SUBSYSTEM="tty", SYMLINK+="x"', // assignment operator on a match-only key
    'SUBSYSTEM=="tty", GROUP=="dialout"', // match operator on an assignment key
    'SUBSYSTEM=="tty" SYMLINK+="x"', // missing comma
    'SUBSYSTEM=="tty", SYMLINK+="x",', // trailing comma
    'SUBSYSTEM=="tty", SYMLNK+="x"', // unknown key
    "SUBSYSTEM==tty", // unquoted value
    'SUBSYSTEM=="tty", MODE="rw"', // not an octal mode
    'GOTO="nowhere"', // GOTO without LABEL
    'ATTRS{idVendor}=="0403", SYMLINK+="x', // unterminated string
  ];
  for (const b of bad) assert.equal(parseRules(b).ok, false, b);
});

test("every /dev/piled-* name in the shipped configs is made by a rule, with group and mode", async () => {
  const root = await repoRoot(import.meta.url);
  const r = parseRules(await rulesText());
  assert.ok(r.ok);
  const made = new Map<string, Pair[]>();
  for (const rule of r.rules)
    for (const p of rule.pairs)
      if ((p.key === "SYMLINK" || p.key === "NAME") && p.op !== "-=")
        for (const name of p.value.split(/\s+/)) made.set(`/dev/${name}`, rule.pairs);
  const used = new Set<string>();
  for (const f of ["config/piled.example.json", "config/sim.json"]) {
    for (const m of readFileSync(join(root, f), "utf8").matchAll(/"(\/dev\/piled-[^"]+)"/g)) used.add(m[1]!);
  }
  assert.ok(used.size >= 3, `configs use ${[...used].join(", ")}`);
  for (const dev of used) {
    const pairs = made.get(dev);
    assert.ok(pairs, `${dev} is made by no rule`);
    assert.ok(pairs.some((p) => p.key === "GROUP" && p.value === "dialout"));
    assert.ok(pairs.some((p) => p.key === "MODE" && p.value === "0660"));
  }
});

test("the documented adapters are all there, and GPIO is given to group gpio", async () => {
  const text = await rulesText();
  for (const [v, p] of [
    ["0403", "6001"],
    ["0403", "6015"],
    ["1a86", "7523"],
    ["10c4", "ea60"],
    ["1915", "521f"],
    ["2fe3", "0100"],
  ])
    assert.match(text, new RegExp(`ATTRS\\{idVendor\\}=="${v}", ATTRS\\{idProduct\\}=="${p}"`), `${v}:${p}`);
  assert.match(text, /SUBSYSTEM=="gpio", KERNEL=="gpiochip\*", GROUP="gpio", MODE="0660"/);
  assert.match(text, /chgrp gpio \/sys\/class\/gpio\/export \/sys\/class\/gpio\/unexport/);
});
