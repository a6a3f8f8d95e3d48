#!/usr/bin/env node
// Scans a tree (the artifacts of a test run, see scripts/run-tests.mjs) for the keys, V values
// and secrets the test suite uses:  node scripts/secrets-scan.mjs DIR
// Exit 0: none found; 1: found (each hit printed as `file:offset kind secret`); 2: bad usage.
//
// Where the list comes from (each entry says which):
//   1. The protocol vectors: test/fixtures/v1.json and the shared spec's test-vectors/v1.json
//      (found upward from the repository: ../shared/test-vectors): every key, derived Kc and V.
//   2. The fixed secrets of the test files, listed below in CONSTANTS with their file.
//   3. Every key file found in DIR itself ({"keyId": N, "key": "<64 hex>"}): the random keys
//      the tests made (tests write their keys through the SDK's writeKeyFile).
//      A file that is wholly one key file is allowed wherever it is (tests keep key files under
//      many names), besides the path patterns of ALLOW.
// A key (or half) with fewer than MIN_DISTINCT byte values (all zeros, 0x06 × 32) is searched as
// hex only: as raw bytes or base64 ("AAAA…") such runs are in every database page and hash.
// A half of a text secret is searched only when it holds a non-letter ("technici" is not).
// Each secret is looked for whole and by halves (halves of at least 8 bytes/characters) as
//   hex (any case), base64 and base64url at each of the three byte alignments (so also inside a
//   longer encoding), raw bytes (in binary files: SQLite databases, -wal, -journal), and text
//   secrets as text in any case; inside other words too (substring match).
// Files over 256 MB are read in their first 256 MB (said so).
import { closeSync, existsSync, lstatSync, openSync, readdirSync, readFileSync, readSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const top = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const MAX_BYTES = 256 * 1024 * 1024;

/** Fixed secrets of the test files (text or hex bytes). */
const CONSTANTS = [
  { src: "test/daemon/control-api.test.ts KEY", hex: "0f".repeat(32) },
  { src: "test/daemon/control-socket.test.ts KEY", hex: "5a".repeat(32) },
  { src: "test/daemon/keydir.test.ts KEY", hex: "06".repeat(32) },
  { src: "test/pile/rig.ts KEY", bytes: Array.from({ length: 32 }, (_, i) => (i * 7 + 1) & 0xff) },
  { src: "test/sdk/keyfile.test.ts KEY", bytes: Array.from({ length: 32 }, (_, i) => (i * 7 + 3) & 0xff) },
  { src: "test/daemon/log.test.ts SECRET", text: "5ec2e75ec2e75ec2e7" },
  { src: "test/daemon/console/interpreter.test.ts SECRET", text: "correct horse" },
  { src: "test/daemon/console/pty.test.ts secret", text: "pile-tech-2024" },
  { src: "test/daemon/console/service.test.ts", text: "s3cret-pile" },
  { src: "test/daemon/console/service.test.ts", text: "tech-secret" },
  { src: "test/cli/doctor.test.ts", text: "technician-secret" },
  { src: "test/ocpp/interop.test.ts PASSWORD", text: "s3cret-station-password" },
  { src: "src/daemon/demo.ts TECH_SECRET", text: "desk-technician" },
];

/**
 * Where a secret lives by design (path relative to DIR). Each pattern says why.
 */
const ALLOW = [
  // Key files in key directories: the key itself is their content.
  { re: /(^|\/)keys(-[^/]*)?(\/retired)?\/[^/]+$/, why: "a key directory's file (keys/, a test's keys-N/)" },
  { re: /(^|\/)[^/]*\.key(\.json)?$/, why: "a key file" },
  // test/sdk/keyfile.test.ts writes malformed key files (a bad keyId, a key one nibble short…)
  // to see each refused: each holds (most of) its KEY by design.
  {
    re: /(^|\/)([0-9]+-[0-9]+-)?piled-keyfile-[^/]*\/bad-[0-9]+\.json$/,
    why: "a deliberately malformed key file",
  },
  // The OCPP station's basic-auth password file (config `passwordFile`) holds the password.
  { re: /(^|\/)([0-9]+-[0-9]+-)?piled-ocpp-[^/]*\/password$/, why: "the OCPP password file" },
  // The scanner's own self-test plants every encoding on purpose.
  { re: /(^|\/)([0-9]+-[0-9]+-)?piled-secrets-scan-[^/]*\//, why: "the scanner's self-test tree" },
];

function findUp(rel) {
  for (let d = top; ; d = dirname(d)) {
    const p = join(d, rel);
    if (existsSync(p)) return p;
    if (dirname(d) === d) return undefined;
  }
}

function vectorSecrets() {
  const out = [];
  const files = [join(top, "test/fixtures/v1.json"), findUp("shared/test-vectors/v1.json")].filter(
    (f) => f && existsSync(f),
  );
  for (const f of files) {
    const v = JSON.parse(readFileSync(f, "utf8"));
    const src = relative(top, f);
    for (const [id, k] of Object.entries(v.keys ?? {})) out.push({ src: `${src} keys.${id}`, hex: k });
    for (const [id, d] of Object.entries(v.derived ?? {}))
      out.push({ src: `${src} derived.${id}.Kc`, hex: d.Kc });
    for (const c of [...(v.codes ?? []), ...(v.handshakes ?? [])])
      if (typeof c.V === "string") out.push({ src: `${src} V of ${c.name ?? c.codeId}`, hex: c.V });
  }
  return { out, files };
}

function* walk(dir) {
  let names;
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names.sort()) {
    const p = join(dir, n);
    let st;
    try {
      st = lstatSync(p);
    } catch {
      continue;
    }
    if (st.isDirectory()) yield* walk(p);
    else if (st.isFile()) yield { path: p, size: st.size };
  }
}

function read(path, size) {
  const n = Math.min(size, MAX_BYTES);
  const buf = Buffer.alloc(n);
  const fd = openSync(path, "r");
  try {
    let off = 0;
    while (off < n) {
      const r = readSync(fd, buf, off, n - off, off);
      if (r === 0) break;
      off += r;
    }
    return buf.subarray(0, off);
  } finally {
    closeSync(fd);
  }
}

/** A whole file in the SDK's key-file form (src/sdk/keyfile.ts), wherever a test wrote it. */
const KEY_FILE = /^\s*\{\s*"keyId"\s*:\s*-?\d+\s*,\s*"key"\s*:\s*"([0-9a-fA-F]{64})"\s*\}\s*$/;

/** Keys of key files in the tree, and the files (allowed: a key file holds its key by design). */
function harvestKeys(root) {
  const out = [];
  const files = new Set();
  for (const f of walk(root)) {
    if (f.size > 4096) continue;
    const text = read(f.path, f.size).toString("latin1");
    const whole = KEY_FILE.exec(text);
    if (whole) files.add(f.path);
    const m = whole ?? (/\.json$/.test(f.path) ? /"key"\s*:\s*"([0-9a-fA-F]{64})"/.exec(text) : null);
    if (m) out.push({ src: `key file ${relative(root, f.path)}`, hex: m[1] });
  }
  return { out, files };
}

/** Fewer distinct byte values than this: found in any padding or filler, not searched as raw bytes. */
const MIN_DISTINCT = 4;

/** base64 characters fully determined by `b` when it sits at byte offset `shift` (mod 3). */
function b64Aligned(b, shift) {
  const s = Buffer.concat([Buffer.alloc(shift), b]).toString("base64");
  const first = Math.ceil((8 * shift) / 6);
  const last = Math.floor((8 * (shift + b.length)) / 6); // exclusive
  return s.slice(first, last);
}

const B64_MIN = 12;

/** The needles of one secret: {kind, s} with s in the form it is searched. */
function needles(secret) {
  const isText = secret.text !== undefined;
  const bytes = isText
    ? Buffer.from(secret.text, "utf8")
    : secret.hex !== undefined
      ? Buffer.from(secret.hex, "hex")
      : Buffer.from(secret.bytes);
  const parts = [{ part: "whole", b: bytes }];
  const half = Math.floor(bytes.length / 2);
  // A text half of letters only ("technici" of technician-secret) is a fragment of ordinary words.
  const halfOk = (b) => !isText || /[^A-Za-z]/.test(b.toString("latin1"));
  if (half >= 8)
    for (const [part, b] of [
      ["first half", bytes.subarray(0, half)],
      ["second half", bytes.subarray(half)],
    ])
      if (halfOk(b)) parts.push({ part, b });
  const out = [];
  for (const { part, b } of parts) {
    if (isText) out.push({ kind: `text (${part})`, s: b.toString("latin1").toLowerCase(), ci: true });
    out.push({ kind: `hex (${part})`, s: b.toString("hex"), hex: true });
    // A run of (nearly) one byte value is in every page, hash and padding: only its hex is searched.
    if (!isText && new Set(b).size < MIN_DISTINCT) continue;
    if (!isText) out.push({ kind: `raw bytes (${part})`, s: b.toString("latin1"), raw: true });
    for (let shift = 0; shift < 3; shift++) {
      const s = b64Aligned(b, shift);
      if (s.length < B64_MIN) continue;
      out.push({ kind: `base64 (${part}, offset ${shift})`, s, b64: true });
      const url = s.replace(/\+/g, "-").replace(/\//g, "_");
      if (url !== s) out.push({ kind: `base64url (${part}, offset ${shift})`, s: url, b64: true });
    }
  }
  return out;
}

function isBinary(buf) {
  if (buf.includes(0)) return true;
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(buf);
    return false;
  } catch {
    return true;
  }
}

const HEX_PREFIX = 16;

/** Needles by their first `len` characters. */
function byPrefix(list, len) {
  const m = new Map();
  for (const n of list) {
    const k = n.s.slice(0, len);
    if (!m.has(k)) m.set(k, []);
    m.get(k).push(n);
  }
  return m;
}

/** Hits of prefix-indexed needles inside every run of `re` in `text` (hex, base64 words). */
function runHits(text, re, index, len, hit) {
  for (const m of text.matchAll(re)) {
    const run = m[0];
    for (let i = 0; i + len <= run.length; i++) {
      const cands = index.get(run.slice(i, i + len));
      if (cands) for (const n of cands) if (run.startsWith(n.s, i)) hit(n, m.index + i);
    }
  }
}

export function scan(root) {
  const { out: vec, files: vectorFiles } = vectorSecrets();
  // One entry per value (the two vector files hold the same vectors): the sources joined.
  const byValue = new Map();
  const harvested = harvestKeys(root);
  for (const s of [...vec, ...CONSTANTS, ...harvested.out]) {
    const v =
      s.text !== undefined
        ? `t:${s.text}`
        : s.hex !== undefined
          ? `h:${s.hex.toLowerCase()}`
          : `h:${Buffer.from(s.bytes).toString("hex")}`;
    const had = byValue.get(v);
    if (had) had.src += `, ${s.src}`;
    else byValue.set(v, { ...s });
  }
  const secrets = [...byValue.values()];
  const all = [];
  for (const s of secrets) for (const n of needles(s)) all.push({ ...n, src: s.src });
  const hexIndex = byPrefix(
    all.filter((n) => n.hex),
    HEX_PREFIX,
  );
  const b64Index = byPrefix(
    all.filter((n) => n.b64),
    B64_MIN,
  );
  const plain = all.filter((n) => !n.hex && !n.b64);
  const hits = [];
  let scanned = 0;
  let bytes = 0;
  for (const f of walk(root)) {
    const rel = relative(root, f.path);
    if (harvested.files.has(f.path) || ALLOW.some((a) => a.re.test(rel))) continue;
    const buf = read(f.path, f.size);
    scanned++;
    bytes += buf.length;
    if (f.size > MAX_BYTES) console.error(`secrets-scan: ${rel}: only the first ${MAX_BYTES} bytes read`);
    const text = buf.toString("latin1");
    const lower = text.toLowerCase();
    const binary = isBinary(buf);
    const hit = (n, at) => hits.push({ file: rel, offset: at, kind: n.kind, src: n.src });
    runHits(lower, /[0-9a-f]{16,}/g, hexIndex, HEX_PREFIX, hit);
    runHits(text, /[A-Za-z0-9+/_-]{12,}/g, b64Index, B64_MIN, hit);
    for (const n of plain) {
      if (n.raw && !binary) continue;
      const at = (n.ci ? lower : text).indexOf(n.s);
      if (at >= 0) hit(n, at);
    }
  }
  return { hits, scanned, bytes, secrets: secrets.length, needles: all.length, vectorFiles };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dir = process.argv[2];
  if (!dir || !existsSync(dir) || !lstatSync(dir).isDirectory()) {
    console.error("usage: node scripts/secrets-scan.mjs DIR");
    process.exit(2);
  }
  const r = scan(resolve(dir));
  for (const h of r.hits) console.log(`${h.file}:${h.offset} ${h.kind} of ${h.src}`);
  console.log(
    `secrets-scan: ${r.scanned} files, ${r.bytes} bytes, ${r.secrets} secrets (${r.needles} forms; vectors from ${r.vectorFiles.map((f) => relative(top, f)).join(", ")}): ${r.hits.length === 0 ? "clean" : `${r.hits.length} hits`}`,
  );
  process.exit(r.hits.length === 0 ? 0 : 1);
}
