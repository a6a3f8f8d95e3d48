/**
 * scripts/secrets-scan.mjs, the scan run after the whole suite (scripts/run-tests.mjs): a key
 * planted in each encoding it claims to catch is caught, each named by file and offset; a tree
 * holding keys only where they belong (a key directory) passes.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { type TestContext, test } from "node:test";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const SCANNER = join(root, "scripts/secrets-scan.mjs");
const vectors = JSON.parse(readFileSync(join(root, "test/fixtures/v1.json"), "utf8")) as {
  keys: Record<string, string>;
  codes: { V: string }[];
};
const KEY = Buffer.from(vectors.keys["7"]!, "hex");
const V = Buffer.from(vectors.codes[0]!.V, "hex");

function tree(t: TestContext): string {
  // The name keeps the planted tree out of the suite's own scan (allow-listed there).
  const dir = mkdtempSync(join(tmpdir(), "piled-secrets-scan-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function scan(dir: string): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [SCANNER, dir], { encoding: "utf8" });
  return { code: r.status, out: r.stdout + r.stderr };
}

const filler = (n: number): string => "lorem ipsum ".repeat(n);

test("a key, V and secret planted in each encoding are each caught, by file and offset", (t) => {
  const dir = tree(t);
  const b64 = (b: Buffer) => b.toString("base64");
  const b64url = (b: Buffer) => b.toString("base64url");
  const random = randomBytes(32);
  mkdirSync(join(dir, "state", "keys"), { recursive: true });
  // A random key, known to the scan only through its key file (allowed where it is).
  writeFileSync(
    join(dir, "state", "keys", "key-9.json"),
    `${JSON.stringify({ keyId: 9, key: random.toString("hex") })}\n`,
  );
  const planted: Record<string, string | Buffer> = {
    "hex-lower.log": `${filler(3)}${KEY.toString("hex")}\n`,
    "hex-upper.log": `key=${KEY.toString("hex").toUpperCase()}`,
    "hex-mixed.txt": KEY.toString("hex").replace(/[a-f]/g, (c, i: number) => (i % 2 ? c.toUpperCase() : c)),
    "embedded-word.txt": `prefix${V.toString("hex")}suffix`,
    "first-half.log": `half ${KEY.subarray(0, 16).toString("hex")} only`,
    "second-half-upper.log": `x${KEY.subarray(16).toString("hex").toUpperCase()}x`,
    "base64.json": JSON.stringify({ v: b64(V) }),
    "base64url.json": JSON.stringify({ v: b64url(KEY) }),
    "base64-shift1.txt": b64(Buffer.concat([Buffer.from([1]), KEY, Buffer.from([2, 3])])),
    "base64-shift2.txt": b64(Buffer.concat([Buffer.from([1, 9]), V])),
    "base64url-half.txt": `tok_${b64url(KEY.subarray(16))}_end`,
    "piled.db-wal": Buffer.concat([Buffer.alloc(100), KEY, Buffer.alloc(50)]),
    "piled.db": Buffer.concat([Buffer.from("SQLite format 3\0"), Buffer.alloc(40, 1), V.subarray(0, 16)]),
    "console.history": "login\nCORRECT HORSE\n",
    "secret-in-word.log": "xxcorrect horseyy",
    "harvested.log": `leaked ${random.toString("hex")}`,
    // A key of one repeated byte (test/daemon/keydir.test.ts) is still caught as hex.
    "repeated-byte.log": `key ${"06".repeat(32)}`,
  };
  for (const [name, body] of Object.entries(planted)) writeFileSync(join(dir, name), body);
  const r = scan(dir);
  assert.equal(r.code, 1, r.out);
  for (const name of Object.keys(planted))
    assert.match(
      r.out,
      new RegExp(`^${name.replace(/\./g, "\\.")}:\\d+ `, "m"),
      `${name} not caught:\n${r.out}`,
    );
  // Offsets are where the secret starts.
  assert.match(r.out, new RegExp(`^hex-lower\\.log:${filler(3).length} hex \\(whole\\)`, "m"));
  assert.match(r.out, /^piled\.db-wal:100 raw bytes \(whole\)/m);
  assert.match(r.out, /^embedded-word\.txt:6 hex \(whole\)/m);
  assert.doesNotMatch(r.out, /^state\/keys\/key-9\.json:/m, "the key file itself is allowed");
});

test("a tree with keys only in its key directory, and random data elsewhere, passes", (t) => {
  const dir = tree(t);
  mkdirSync(join(dir, "keys", "retired"), { recursive: true });
  writeFileSync(join(dir, "keys", "key-7.json"), JSON.stringify({ keyId: 7, key: KEY.toString("hex") }));
  writeFileSync(
    join(dir, "keys", "retired", "1-key-7.json"),
    JSON.stringify({ keyId: 7, key: KEY.toString("hex") }),
  );
  writeFileSync(join(dir, "piled.log"), `${filler(50)}\n${randomBytes(64).toString("hex")}\n`);
  writeFileSync(join(dir, "piled.db"), Buffer.concat([randomBytes(4096), Buffer.alloc(4096)]));
  // A key file is allowed wherever a test keeps it; its all-zero key is in every page as bytes.
  writeFileSync(join(dir, "k1.json"), JSON.stringify({ keyId: 1, key: "00".repeat(32) }));
  // "technici", the first half of a test's "technician-secret", is a fragment of ordinary words.
  writeFileSync(join(dir, "journal.log"), "session ended TECHNICIAN by the technician\n");
  const r = scan(dir);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /: 3 files/);
  assert.match(r.out, /clean/);
});

test("no directory given: usage, exit 2", () => {
  const r = spawnSync(process.execPath, [SCANNER], { encoding: "utf8" });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /usage/);
});

test("what a test deletes under the run's TMPDIR is kept for the scan, and is gone from its place", (t) => {
  const art = tree(t);
  mkdirSync(join(art, "tmp"));
  const script = `
    import { mkdtempSync, rmSync, writeFileSync, existsSync } from "node:fs";
    import { rm } from "node:fs/promises";
    import { tmpdir } from "node:os";
    import { join } from "node:path";
    const a = mkdtempSync(join(tmpdir(), "piled-a-"));
    writeFileSync(join(a, "piled.db"), "A");
    rmSync(a, { recursive: true, force: true });
    const b = mkdtempSync(join(tmpdir(), "piled-b-"));
    writeFileSync(join(b, "console.history"), "B");
    await rm(b, { recursive: true });
    rmSync(join(tmpdir(), "never-there"), { force: true });
    console.log(JSON.stringify({ gone: !existsSync(a) && !existsSync(b) }));`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
    encoding: "utf8",
    env: {
      ...process.env,
      PILED_TEST_ARTIFACTS: art,
      TMPDIR: join(art, "tmp"),
      NODE_OPTIONS: `--import=${join(root, "scripts/keep-test-files.mjs")}`,
    },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { gone: true });
  const kept = readdirSync(join(art, "kept")).sort();
  assert.equal(kept.length, 2, kept.join(" "));
  assert.equal(
    readFileSync(join(art, "kept", kept.find((k) => k.includes("piled-a-"))!, "piled.db"), "utf8"),
    "A",
  );
  assert.equal(
    readFileSync(join(art, "kept", kept.find((k) => k.includes("piled-b-"))!, "console.history"), "utf8"),
    "B",
  );
});
