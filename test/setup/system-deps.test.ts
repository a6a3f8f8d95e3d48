/**
 * Set-up tier: every Debian package a test tier loads is named in scripts/system-deps.txt, or is
 * pulled in by a Depends of one that is. A fresh machine installs that list with
 * `--no-install-recommends`, so a module that only a Recommends brings (python3-pymodbus'
 * serial server needs python3-serial-asyncio) is missing there while a developer's machine,
 * which got it some other way, passes.
 *
 * The Python peers are run as the tiers run them (the Modbus slave on a real pty, the code peer
 * imported whole), each writes the files of every module it loaded, and dpkg names their owners.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { openPtyPair } from "../helpers/pty.js";
import { startSlave, stopSlave } from "../peers/modbus/slave-proc.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const PYTHON = "/usr/bin/python3";

function listed(): string[] {
  return readFileSync(join(root, "scripts", "system-deps.txt"), "utf8")
    .split("\n")
    .map((l) => l.replace(/#.*/, "").trim())
    .filter((l) => l !== "");
}

interface Installed {
  depends: Map<string, string[][]>;
  providers: Map<string, string[]>;
  essential: Set<string>;
}

/** Installed packages, their Depends/Pre-Depends (alternatives kept) and who provides what. */
function installed(): Installed {
  // dpkg-query's own ${Field} format, with real tabs and a newline between the fields.
  const format = `\${Package}\t\${db:Status-Abbrev}\t\${Essential}\t\${Pre-Depends}, \${Depends}\t\${Provides}\n`;
  const r = spawnSync("dpkg-query", ["-W", "-f", format], { encoding: "utf8", maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, `dpkg-query failed: ${r.stderr}`);
  const depends = new Map<string, string[][]>();
  const providers = new Map<string, string[]>();
  const essential = new Set<string>();
  const name = (s: string) => s.trim().split(/[\s(]/)[0]!.replace(/:.*$/, "");
  for (const line of r.stdout.split("\n")) {
    const [pkg, status, ess, deps, provides] = line.split("\t");
    if (pkg === undefined || !status?.startsWith("ii")) continue;
    if (ess === "yes") essential.add(pkg);
    depends.set(
      pkg,
      (deps ?? "")
        .split(",")
        .map((d) => d.split("|").map(name))
        .filter((alts) => alts.some((a) => a !== "")),
    );
    for (const p of (provides ?? "").split(",").map(name)) {
      if (p !== "") providers.set(p, [...(providers.get(p) ?? []), pkg]);
    }
  }
  return { depends, providers, essential };
}

/** What a `--no-install-recommends` install of `roots` brings: the Depends closure, plus Essential. */
function closure(roots: string[], db: Installed): Set<string> {
  const seen = new Set<string>(db.essential);
  const stack = [...roots];
  while (stack.length > 0) {
    const p = stack.pop()!;
    if (seen.has(p)) continue;
    seen.add(p);
    for (const alts of db.depends.get(p) ?? []) {
      for (const a of alts) {
        const real = db.depends.has(a) ? [a] : (db.providers.get(a) ?? []);
        for (const r of real) stack.push(r);
      }
    }
  }
  return seen;
}

/** Debian packages owning these files (one dpkg call; files it does not know are left out). */
function owners(files: string[]): Map<string, string> {
  const pkgs = new Map<string, string>();
  if (files.length === 0) return pkgs;
  const r = spawnSync("dpkg", ["-S", ...files], { encoding: "utf8", maxBuffer: 64 << 20 });
  const wanted = new Set(files);
  for (const line of r.stdout.split("\n")) {
    const at = line.lastIndexOf(": ");
    if (at < 0 || !wanted.has(line.slice(at + 2))) continue;
    for (const p of line.slice(0, at).split(", ")) pkgs.set(p.replace(/:.*$/, ""), line.slice(at + 2));
  }
  return pkgs;
}

const DUMP =
  "import json, sys; print(json.dumps(sorted({getattr(m, '__file__', None) or '' for m in list(sys.modules.values())} - {''})))";

/** Modules a bare interpreter loads on its own (site hooks of whatever the image has). */
function baseline(): Set<string> {
  const r = spawnSync(PYTHON, ["-c", DUMP], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return new Set(JSON.parse(r.stdout) as string[]);
}

function loadedBySystem(list: string[]): string[] {
  const bare = baseline();
  return list.filter((f) => f.startsWith("/usr/") && !bare.has(f) && existsSync(f));
}

function assertCovered(tier: string, files: string[]): void {
  const db = installed();
  const have = closure(listed(), db);
  const pkgs = owners(loadedBySystem(files));
  assert.ok(pkgs.size > 0, `${tier}: no module file was owned by a Debian package`);
  const missing = [...pkgs].filter(([p]) => !have.has(p)).map(([p, f]) => `${p} (${f})`);
  assert.deepEqual(
    missing,
    [],
    `${tier} loads modules of Debian packages that neither scripts/system-deps.txt nor a Depends ` +
      `of it brings on a --no-install-recommends install: ${missing.join(", ")}`,
  );
}

function requireTools(): void {
  for (const [tool, pkg] of [
    ["dpkg-query", "dpkg"],
    [PYTHON, "python3"],
  ] as const) {
    const r = spawnSync(tool, ["--version"], { encoding: "utf8" });
    if (r.error) throw new Error(`the set-up tier needs ${tool} (Debian package ${pkg})`);
  }
}

test("field report: the README's test command fails on a fresh machine (the pymodbus peer's serial server)", async () => {
  requireTools();
  const dir = mkdtempSync(join(tmpdir(), "piled-deps-"));
  const pty = await openPtyPair({ dir });
  const out = join(dir, "modules.json");
  const fault = join(dir, "fault");
  const child = await startSlave({
    port: pty.a,
    model: "sdm630",
    values: { voltageV: 230, currentA: 1, powerW: 230, energyImportWh: 1000 },
    faultFile: fault,
    modulesOut: out,
  }).catch(async (e: unknown) => {
    await pty.close();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  });
  try {
    const files = JSON.parse(readFileSync(out, "utf8")) as string[];
    assert.ok(
      files.some((f) => f.includes("/pymodbus/")),
      "the slave ran without pymodbus loaded",
    );
    assertCovered("the pymodbus peer tier", files);
  } finally {
    await stopSlave(child);
    await pty.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the cross-implementation peer's modules come from listed packages", () => {
  requireTools();
  const peer = join(root, "test", "peers", "python", "codes.py");
  const r = spawnSync(
    PYTHON,
    ["-c", `import runpy, sys; runpy.run_path(sys.argv[1], run_name='peer'); ${DUMP}`, peer],
    { encoding: "utf8" },
  );
  assert.equal(r.status, 0, `the code peer does not import: ${r.stderr}`);
  const files = JSON.parse(r.stdout) as string[];
  assert.ok(
    files.some((f) => f.includes("/cryptography/")),
    "the code peer ran without cryptography loaded",
  );
  assertCovered("the cross-implementation tier", files);
});
