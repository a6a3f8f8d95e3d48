/**
 * The import graph against the layer table of README.md ("Repository layout"): every import
 * under src/ (static, dynamic, re-export, `import type`) between two of its folders must be one
 * the importer's row names. The table is read from the README itself, so the two cannot drift.
 * Also: the production daemon (`src/daemon/piled.ts`) reaches no simulator file by a static
 * import; the simulator is loaded only by a dynamic import behind the config's sim switch.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, posix, relative } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const srcDir = join(root, "src");

/** One row of the table: the modules a module may import, and those it may import only as types. */
interface Rule {
  uses: Set<string> | "everything";
  typesOnly: Set<string>;
}
type Table = Map<string, Rule>;

/** A module: the first path segment under src/ ("store", "version.ts"). */
const moduleOf = (rel: string): string => rel.split("/")[0]!;

/** Parses the layer table out of the README's "Repository layout" section. */
export function parseTable(readme: string): Table {
  const start = readme.indexOf("\n## Repository layout");
  assert.ok(start >= 0, "README.md has a Repository layout section");
  const section = readme.slice(start + 1, readme.indexOf("\n## ", start + 1));
  const rows = section.split("\n").filter((l) => l.startsWith("| `src/"));
  const table: Table = new Map();
  const cells = rows.map((r) =>
    r
      .split("|")
      .slice(1, -1)
      .map((c) => c.trim()),
  );
  const nameOf = (c: string[]): string =>
    c[0]!
      .replace(/`/g, "")
      .replace(/^src\//, "")
      .replace(/\/$/, "");
  const names = new Set(cells.map(nameOf));
  for (const c of cells) {
    const name = nameOf(c);
    const usesCell = c[c.length - 1]!;
    const rule: Rule = { uses: new Set(), typesOnly: new Set() };
    // Items are separated by commas outside parentheses; an item is a module name, then a note.
    const items = usesCell
      .replace(/\([^)]*\)/g, (m) => (m.includes("types only") ? "#typesonly" : ""))
      .split(",");
    for (const item of items) {
      const word = item.trim().split(/\s+/)[0]!.replace(/`/g, "");
      if (word === "nothing") continue;
      if (word === "everything") {
        rule.uses = "everything";
        continue;
      }
      assert.ok(names.has(word), `layer table row ${name}: '${word}' is not a module of the table`);
      if (rule.uses !== "everything") rule.uses.add(word);
      if (item.includes("#typesonly")) rule.typesOnly.add(word);
    }
    table.set(name, rule);
  }
  return table;
}

export interface Import {
  /** The importing file, relative to src/ ("store/store.ts"). */
  file: string;
  /** The imported file, relative to src/ ("protocol/bytes.ts"). */
  target: string;
  typeOnly: boolean;
  dynamic: boolean;
}

/** Files with a computed import marked as a plug-in point (see importsOf). */
export const plugins: string[] = [];

/** The relative imports of one file's text (static, dynamic, re-exports, type-only). */
export function importsOf(file: string, text: string): Import[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: Import[] = [];
  const add = (spec: string | undefined, typeOnly: boolean, dynamic: boolean): void => {
    if (spec !== undefined && !spec.startsWith(".")) return;
    // A computed dynamic import cannot be checked: it is refused as a module with no row.
    const target =
      spec === undefined
        ? "<computed>"
        : posix.normalize(posix.join(posix.dirname(file), spec)).replace(/\.js$/, ".ts");
    out.push({ file, target, typeOnly, dynamic });
  };
  const visit = (n: ts.Node): void => {
    if (ts.isImportDeclaration(n) && ts.isStringLiteral(n.moduleSpecifier)) {
      const c = n.importClause;
      const named = c?.namedBindings;
      const allTypes =
        c !== undefined &&
        (c.isTypeOnly ||
          (c.name === undefined &&
            named !== undefined &&
            ts.isNamedImports(named) &&
            named.elements.length > 0 &&
            named.elements.every((e) => e.isTypeOnly)));
      add(n.moduleSpecifier.text, allTypes, false);
    } else if (ts.isExportDeclaration(n) && n.moduleSpecifier && ts.isStringLiteral(n.moduleSpecifier)) {
      add(n.moduleSpecifier.text, n.isTypeOnly, false);
    } else if (
      ts.isCallExpression(n) &&
      n.expression.kind === ts.SyntaxKind.ImportKeyword &&
      n.arguments[0] !== undefined
    ) {
      const a = n.arguments[0];
      // A computed import marked as a plug-in point (a module the caller names at run time, e.g.
      // the write worker's session hook) is listed apart: the test below pins where they are.
      if (
        !ts.isStringLiteralLike(a) &&
        /layers: plug-in point/.test(text.slice(n.getFullStart(), n.getEnd()))
      )
        plugins.push(file);
      else add(ts.isStringLiteralLike(a) ? a.text : undefined, false, true);
    } else if (
      ts.isImportTypeNode(n) &&
      ts.isLiteralTypeNode(n.argument) &&
      ts.isStringLiteral(n.argument.literal)
    ) {
      add(n.argument.literal.text, true, false);
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

/** Every breach of the table among `imports`, as readable lines. */
export function violations(table: Table, imports: Import[]): string[] {
  const bad: string[] = [];
  for (const i of imports) {
    const from = moduleOf(i.file);
    const to = moduleOf(i.target);
    if (i.target.startsWith("..")) {
      bad.push(`${i.file}: imports ${i.target}, outside src/`);
      continue;
    }
    if (from === to) continue;
    const rule = table.get(from);
    if (rule === undefined) {
      bad.push(`${i.file}: module ${from} has no row in the layer table`);
      continue;
    }
    if (!table.has(to)) bad.push(`${i.file}: imports ${i.target}, of module ${to} that has no row`);
    else if (rule.uses === "everything") continue;
    else if (!rule.uses.has(to)) bad.push(`${i.file}: imports ${i.target}; ${from} may not use ${to}`);
    else if (rule.typesOnly.has(to) && !i.typeOnly)
      bad.push(`${i.file}: imports ${i.target} as a value; ${from} may use ${to} for types only`);
  }
  return bad;
}

/** The files reached from `entry` by static value imports (what loading it loads). */
export function staticClosure(entry: string, imports: Import[]): Set<string> {
  const seen = new Set([entry]);
  const todo = [entry];
  while (todo.length > 0) {
    const f = todo.pop()!;
    for (const i of imports)
      if (i.file === f && !i.dynamic && !i.typeOnly && !seen.has(i.target)) {
        seen.add(i.target);
        todo.push(i.target);
      }
  }
  return seen;
}

function* tsFiles(dir: string): Generator<string> {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* tsFiles(p);
    else if (name.endsWith(".ts") && !name.endsWith(".d.ts")) yield p;
  }
}

function srcImports(): Import[] {
  const all: Import[] = [];
  for (const f of tsFiles(srcDir)) all.push(...importsOf(relative(srcDir, f), readFileSync(f, "utf8")));
  return all;
}

const readme = (): string => readFileSync(join(root, "README.md"), "utf8");

test("layers: every import under src/ is one the README's layer table allows", () => {
  const table = parseTable(readme());
  const imports = srcImports();
  assert.ok(imports.length > 300, `the imports were found (${imports.length})`);
  assert.deepEqual(violations(table, imports), []);
  // Every module under src/ has a row, and every row a module (a renamed folder fails here).
  const modules = readdirSync(srcDir).filter((n) => !n.endsWith(".d.ts"));
  assert.deepEqual([...table.keys()].sort(), modules.sort());
});

test("layers: a planted bad import fails the check, whichever form it takes", () => {
  const table = parseTable(readme());
  const real = srcImports();
  const planted = [
    ["store/planted.ts", `import { loadConfig } from "../daemon/config.js";`, "store may not use daemon"],
    ["pile/planted.ts", `export { openStore } from "../store/index.js";`, "pile may not use store"],
    ["protocol/planted.ts", `const m = await import("../sdk/issuer.js");`, "protocol may not use sdk"],
    ["ocpp/planted.ts", `import { PileCore } from "../pile/index.js";`, "ocpp may use pile for types only"],
    [
      "control/planted.ts",
      `let x: import("../daemon/runtime.js").PileRuntime;`,
      "control may not use daemon",
    ],
    ["hw/planted.ts", `import { x } from "../../elsewhere/x.js";`, "outside src/"],
    ["cli/planted.ts", "const m = await import(name);", "no row"],
  ] as const;
  for (const [file, text, why] of planted) {
    const found = violations(table, [...real, ...importsOf(file, text)]);
    assert.equal(found.length, 1, `${file}: ${text} → ${found.join("; ")}`);
    assert.match(found[0]!, new RegExp(why.replace(/[()/]/g, "\\$&")));
  }
  // The type-only exception holds for `import type` and an all-type named import alike.
  for (const text of [
    `import type { PileCore } from "../pile/index.js";`,
    `import { type X } from "../pile/x.js";`,
  ])
    assert.deepEqual(violations(table, importsOf("ocpp/planted.ts", text)), [], text);
});

test("layers: a table row naming an unknown module is refused, not ignored", () => {
  const broken = readme().replace(
    /\|\s*protocol, sdk \(files\), pile \(types only\)\s*\|/,
    "| protocol, sdk, simulator |",
  );
  assert.notEqual(broken, readme(), "the ocpp row was found");
  assert.throws(() => parseTable(broken), /'simulator' is not a module of the table/);
  // A row's use removed from the table makes the real imports fail.
  const narrower = readme().replace(/\|\s*hw, sdk, protocol\s*\|/, "| hw, protocol |");
  assert.notEqual(narrower, readme(), "the sim row was found");
  assert.match(violations(parseTable(narrower), srcImports()).join("\n"), /sim may not use sdk/);
});

test("layers: the production daemon loads no simulator file statically; npm start does", () => {
  const imports = srcImports();
  const piled = [...staticClosure("daemon/piled.ts", imports)];
  assert.ok(
    piled.includes("daemon/daemon.ts") && piled.includes("daemon/assemble.ts"),
    "the walk follows imports",
  );
  assert.deepEqual(
    piled.filter((f) => f.startsWith("sim/")),
    [],
  );
  // The simulator is behind a dynamic import of assemble.ts …
  assert.ok(
    imports.some(
      (i) => i.file === "daemon/assemble.ts" && i.target === "daemon/assemble-sim.ts" && i.dynamic,
    ),
  );
  // … and the walker does see a static one: the demo composes the simulated pile.
  assert.ok([...staticClosure("daemon/demo.ts", imports)].some((f) => f.startsWith("sim/")));
});

test("layers: the only computed import is the write worker's session hook, marked as a plug-in point", () => {
  plugins.length = 0;
  for (const f of tsFiles(srcDir)) importsOf(relative(srcDir, f), readFileSync(f, "utf8"));
  assert.deepEqual([...new Set(plugins)], ["store/write-worker.ts"]);
  plugins.length = 0;
  const planted = importsOf("store/x.ts", "const m = 'a'; await import(m);");
  assert.deepEqual(
    planted.map((i) => i.target),
    ["<computed>"],
    "an unmarked computed import is still refused",
  );
});

test("layers: a pile without OCPP or a technician console loads neither statically", () => {
  const imports = srcImports();
  const piled = [...staticClosure("daemon/piled.ts", imports)];
  // the station and its link (ocpp-rpc, its WebSocket, the schemas) load only with OCPP on; the
  // outbox, the OCMF sealing and the config schema are the store's and the config's
  const station = ["daemon/ocpp-glue.ts", "ocpp/link.ts", "ocpp/station.ts", "ocpp/handlers.ts"];
  assert.deepEqual(
    piled.filter((f) => station.includes(f)),
    [],
    "OCPP station modules in piled's static closure",
  );
  assert.deepEqual(
    // the console secret's hash is checked at start whether the console runs or not
    piled.filter((f) => f.startsWith("daemon/console/") && f !== "daemon/console/secret.ts"),
    [],
    "console modules in piled's static closure",
  );
  for (const target of ["daemon/ocpp-glue.ts", "daemon/console/service.ts"])
    assert.ok(
      imports.some((i) => i.file === "daemon/daemon.ts" && i.target === target && i.dynamic),
      `daemon.ts imports ${target} when its config asks for it`,
    );
  // and the walk does reach the station from the glue
  assert.ok(staticClosure("daemon/ocpp-glue.ts", imports).has("ocpp/link.ts"));
});
