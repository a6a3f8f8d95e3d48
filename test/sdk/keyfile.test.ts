import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { toHex } from "../../src/protocol/bytes.js";
import { readKeyFile, writeKeyFile } from "../../src/sdk/keyfile.js";

const dir = mkdtempSync(join(tmpdir(), "piled-keyfile-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const KEY = Uint8Array.from({ length: 32 }, (_, i) => (i * 7 + 3) & 0xff);
const HEX = toHex(KEY);

function raw(name: string, text: string, mode = 0o600): string {
  const p = join(dir, name);
  writeFileSync(p, text, { mode });
  chmodSync(p, mode);
  return p;
}

test("write then read: same key, mode 0600, the documented JSON", () => {
  const p = join(dir, "k1.json");
  const w = writeKeyFile(p, 4_294_967_295, KEY);
  assert.ok(w.ok);
  assert.equal(statSync(p).mode & 0o777, 0o600);
  assert.deepEqual(JSON.parse(readFileSync(p, "utf8")), { keyId: 4_294_967_295, key: HEX });
  const r = readKeyFile(p);
  assert.ok(r.ok);
  assert.equal(r.value.keyId, 4_294_967_295);
  assert.deepEqual(r.value.key, KEY);
});

test("write refuses to overwrite unless asked; overwrite replaces and keeps 0600", () => {
  const p = join(dir, "k2.json");
  assert.ok(writeKeyFile(p, 1, KEY).ok);
  const again = writeKeyFile(p, 2, KEY);
  assert.ok(!again.ok);
  assert.equal(again.error.code, "EXISTS");
  assert.equal(readKeyFile(p).ok && (readKeyFile(p) as { value: { keyId: number } }).value.keyId, 1);
  assert.ok(writeKeyFile(p, 2, KEY, { overwrite: true }).ok);
  const r = readKeyFile(p);
  assert.ok(r.ok);
  assert.equal(r.value.keyId, 2);
  assert.equal(statSync(p).mode & 0o777, 0o600);
});

test("write refuses bad arguments and a missing directory", () => {
  for (const [id, key] of [
    [-1, KEY],
    [2 ** 32, KEY],
    [1.5, KEY],
    [1, new Uint8Array(31)],
  ] as [number, Uint8Array][]) {
    const r = writeKeyFile(join(dir, "never.json"), id, key);
    assert.ok(!r.ok);
    assert.equal(r.error.code, "MALFORMED");
  }
  const r = writeKeyFile(join(dir, "no", "such", "dir.json"), 1, KEY);
  assert.ok(!r.ok);
  assert.equal(r.error.code, "NOT_FOUND");
});

test("read refuses a file group or others may access, naming the file and never the key", () => {
  for (const mode of [0o644, 0o640, 0o604, 0o620, 0o602, 0o610]) {
    const p = raw(`loose-${mode.toString(8)}.json`, JSON.stringify({ keyId: 1, key: HEX }), mode);
    const r = readKeyFile(p);
    assert.ok(!r.ok, `mode ${mode.toString(8)}`);
    assert.equal(r.error.code, "PERMISSIONS");
    assert.ok(r.error.message.includes(p));
    assert.ok(!r.error.message.includes(HEX));
  }
  const ok = raw("tight-0400.json", JSON.stringify({ keyId: 1, key: HEX }), 0o400);
  assert.ok(readKeyFile(ok).ok, "0400 is fine");
});

test("read refuses a symbolic link and reports a missing file", () => {
  const target = raw("target.json", JSON.stringify({ keyId: 1, key: HEX }));
  const link = join(dir, "link.json");
  symlinkSync(target, link);
  const r = readKeyFile(link);
  assert.ok(!r.ok);
  assert.equal(r.error.code, "PERMISSIONS");
  const m = readKeyFile(join(dir, "missing.json"));
  assert.ok(!m.ok);
  assert.equal(m.error.code, "NOT_FOUND");
  assert.ok(m.error.message.includes("missing.json"));
});

test("read refuses malformed files with MALFORMED and never quotes the key", () => {
  const cases = [
    "not json",
    "",
    "[]",
    "null",
    JSON.stringify({ keyId: -1, key: HEX }),
    JSON.stringify({ keyId: 4_294_967_296, key: HEX }),
    JSON.stringify({ keyId: 1.5, key: HEX }),
    JSON.stringify({ keyId: "1", key: HEX }),
    JSON.stringify({ key: HEX }),
    JSON.stringify({ keyId: 1 }),
    JSON.stringify({ keyId: 1, key: HEX.slice(2) }),
    JSON.stringify({ keyId: 1, key: `${HEX}00` }),
    JSON.stringify({ keyId: 1, key: `${HEX.slice(1)}g` }),
    JSON.stringify({ keyId: 1, key: HEX, comment: "x" }),
  ];
  cases.forEach((text, i) => {
    const r = readKeyFile(raw(`bad-${i}.json`, text));
    assert.ok(!r.ok, text);
    assert.equal(r.error.code, "MALFORMED", text);
    assert.ok(r.error.message.includes(`bad-${i}.json`));
    assert.ok(!r.error.message.includes(HEX.slice(2, 40)), "the key never appears in a message");
  });
});

test("read refuses a directory", () => {
  const r = readKeyFile(dir);
  assert.ok(!r.ok);
  assert.ok(["MALFORMED", "PERMISSIONS", "IO"].includes(r.error.code));
});
