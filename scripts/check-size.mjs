#!/usr/bin/env node
/**
 * Size rule of the project brief: every file under src/ at most 400 lines, no function over 80
 * lines. Parses each .ts file with the TypeScript compiler (a function's span runs from its first
 * to its last line, nested functions included) and lists every breach.
 *
 *   node scripts/check-size.mjs [--max-file N] [--max-fn N] [dir…]   (default: src)
 *
 * Exits 1 when something exceeds, 0 otherwise; `--json` prints the findings as JSON.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { parseArgs } from "node:util";
import ts from "typescript";

const { values, positionals } = parseArgs({
  options: {
    "max-file": { type: "string", default: "400" },
    "max-fn": { type: "string", default: "80" },
    json: { type: "boolean", default: false },
  },
  allowPositionals: true,
});
const maxFile = Number(values["max-file"]);
const maxFn = Number(values["max-fn"]);
const roots = positionals.length > 0 ? positionals : ["src"];

function* files(dir) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* files(p);
    else if (/\.(ts|mts|cts)$/.test(name) && !name.endsWith(".d.ts")) yield p;
  }
}

function fnName(node, sf) {
  if (node.name) return node.name.getText(sf);
  if (ts.isConstructorDeclaration(node)) return "constructor";
  const p = node.parent;
  if (p && (ts.isVariableDeclaration(p) || ts.isPropertyAssignment(p) || ts.isPropertyDeclaration(p)))
    return p.name.getText(sf);
  return "(anonymous)";
}

const findings = [];
for (const root of roots) {
  for (const file of files(root)) {
    const text = readFileSync(file, "utf8");
    const lines = text.split("\n").length - (text.endsWith("\n") ? 1 : 0);
    const rel = relative(process.cwd(), file);
    if (lines > maxFile) findings.push({ file: rel, kind: "file", lines, limit: maxFile });
    const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
    const visit = (node) => {
      if (ts.isFunctionLike(node) && "body" in node && node.body) {
        const start = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
        const end = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
        const n = end - start + 1;
        if (n > maxFn)
          findings.push({
            file: rel,
            kind: "function",
            name: fnName(node, sf),
            line: start + 1,
            lines: n,
            limit: maxFn,
          });
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
}

if (values.json) process.stdout.write(`${JSON.stringify(findings, null, 2)}\n`);
else if (findings.length === 0)
  process.stdout.write(`size: every file ≤ ${maxFile} lines, every function ≤ ${maxFn}\n`);
else
  for (const f of findings)
    process.stdout.write(
      f.kind === "file"
        ? `${f.file}: ${f.lines} lines (limit ${f.limit})\n`
        : `${f.file}:${f.line}: function ${f.name} is ${f.lines} lines (limit ${f.limit})\n`,
    );
process.exitCode = findings.length > 0 ? 1 : 0;
