import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  componentLogger,
  createLogger,
  hex,
  REDACTED,
  SECRET_FIELDS,
  traceFrame,
} from "../../src/daemon/log.js";

function collect(level: "info" | "trace" = "trace") {
  const lines: string[] = [];
  const log = createLogger({ level, destination: { write: (s: string) => void lines.push(s) } });
  return { log, lines, parsed: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

const SECRET = "5ec2e75ec2e75ec2e7";

test("secret fields never reach a log line, at any depth, in any component", () => {
  const { log, lines } = collect();
  const ble = componentLogger(log, "ble");
  const obj: Record<string, unknown> = {};
  for (const f of SECRET_FIELDS) obj[f] = `${SECRET}-${f}`;
  ble.info(obj, "top level");
  ble.info({ a: obj }, "one down");
  ble.info({ a: { b: { c: { d: obj } } } }, "four down");
  ble.info({ list: [obj, obj] }, "in an array");
  ble.warn({ session: { keys: [{ keyId: 1, key: SECRET }] } }, "nested keys");
  assert.equal(lines.length, 5);
  for (const l of lines) assert.ok(!l.includes(SECRET), `secret leaked: ${l}`);
  const first = JSON.parse(lines[0]!) as Record<string, unknown>;
  for (const f of SECRET_FIELDS) assert.equal(first[f], REDACTED);
  assert.equal(first["component"], "ble");
});

test("a secret deeper than five levels, inside an error or a child's bindings is redacted too", () => {
  const { log, lines } = collect();
  // pino's redaction paths stopped at five levels: the sixth leaked
  log.info({ a: { b: { c: { d: { e: { f: { key: SECRET } } } } } } }, "six down");
  log.error({ err: Object.assign(new Error("refused"), { secret: SECRET }) }, "an error with a field");
  log.child({ component: "ble", verifySecret: SECRET }).info("child bindings");
  log.info({ deep: JSON.parse(`${"[".repeat(40)}"${SECRET}"${"]".repeat(40)}`) }, "past the walk");
  assert.equal(lines.length, 4);
  for (const l of lines) assert.ok(!l.includes(SECRET), `secret leaked: ${l}`);
  const err = JSON.parse(lines[1]!) as { err: Record<string, unknown> };
  assert.equal(err.err["message"], "refused");
  assert.equal(err.err["secret"], REDACTED);
});

test("other fields stay, and the logged object itself is not changed", () => {
  const { log, parsed } = collect("info");
  const obj = { keyId: 7, codeId: "abcd", key: SECRET };
  componentLogger(log, "store").info(obj, "x");
  const [l] = parsed();
  assert.equal(l!["keyId"], 7);
  assert.equal(l!["codeId"], "abcd");
  assert.equal(l!["component"], "store");
  assert.equal(obj.key, SECRET);
  const deep = { a: [{ b: { proof: SECRET, n: 1 } }], when: new Date(0), bytes: Buffer.from([1, 2]) };
  componentLogger(log, "store").info(deep, "y");
  const [, m] = parsed();
  assert.deepEqual(m!["a"], [{ b: { proof: REDACTED, n: 1 } }]);
  assert.equal(m!["when"], "1970-01-01T00:00:00.000Z");
  assert.deepEqual(m!["bytes"], { type: "Buffer", data: [1, 2] });
  assert.equal(deep.a[0]!.b.proof, SECRET);
});

test("frame traces carry direction and hex at trace level, and nothing below it", () => {
  const t = collect("trace");
  traceFrame(componentLogger(t.log, "ble"), "rx", new Uint8Array([0x01, 0xab, 0xff]), { conn: "c1" });
  const [line] = t.parsed();
  assert.equal(line!["level"], 10);
  assert.equal(line!["dir"], "rx");
  assert.equal(line!["hex"], "01abff");
  assert.equal(line!["len"], 3);
  assert.equal(line!["conn"], "c1");
  const i = collect("info");
  traceFrame(i.log, "tx", new Uint8Array([1]));
  assert.equal(i.lines.length, 0);
  assert.equal(hex(new Uint8Array([0, 16, 255])), "0010ff");
});

test("frame traces never show a proof: PRESENT, STOP and CHALLENGE have theirs starred out", () => {
  const proof = new Uint8Array(32).fill(0xee);
  const code = new Uint8Array(80).fill(0x11);
  const t = collect("trace");
  const present = new Uint8Array([0x02, ...proof, ...code]);
  const stopMsg = new Uint8Array([0x03, ...proof]);
  const challenge = new Uint8Array([0x81, ...new Uint8Array(16).fill(0x22), ...proof]);
  for (const m of [present, stopMsg, challenge]) traceFrame(t.log, "rx", m);
  const lines = t.parsed();
  assert.equal(lines.length, 3);
  for (const l of lines) assert.ok(!String(l["hex"]).includes("eeee"), `proof bytes in ${l["hex"]}`);
  assert.equal(lines[0]!["hex"], `02${"*".repeat(64)}${"11".repeat(80)}`);
  assert.equal(lines[1]!["hex"], `03${"*".repeat(64)}`);
  assert.equal(lines[2]!["hex"], `81${"22".repeat(16)}${"*".repeat(64)}`);
  assert.equal(lines[0]!["len"], present.length);
});

test("field report: the fatal line before a crash exit is written out, however much the log still buffers", async () => {
  const fixture = fileURLToPath(new URL("./fixtures/log-exit.js", import.meta.url));
  // Through a pipe that is read slowly, so the asynchronous stdout really has a backlog.
  const child = spawn(process.execPath, [fixture, "10000"], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout!.setEncoding("utf8");
  child.stdout!.on("data", (d: string) => {
    out += d;
  });
  const code = await new Promise<number | null>((r) => child.once("close", (c) => r(c)));
  assert.equal(code, 70);
  const lines = out.split("\n").filter((l) => l.length > 0);
  process.stdout.write(`# ${lines.length} lines reached stdout before the exit\n`);
  const last = JSON.parse(lines.at(-1) ?? "{}") as Record<string, unknown>;
  assert.equal(last["level"], 60, "the last line is the fatal one");
  assert.equal(last["msg"], "internal error: outputs to safe, exiting");
  assert.equal(lines.length, 10001, "no line before it was lost either");
});
