/**
 * OCMF records checked by independent verifiers: pyocmf (PyPI, in .venv-peers) and
 * `openssl dgst -sha256 -verify`; a tampered record must fail both. The station key: created
 * 0600 on first start, the same key on the next, a loose one refused.
 */
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import {
  loadOrCreateStationKey,
  OCMF_KEY_FILE,
  type OcmfSession,
  type StationKey,
  sealSession,
} from "../../src/ocpp/ocmf.js";
import { requireVenv } from "../peers/ocpp/csms-proc.js";
import { pyocmf, opensslVerify as verifyIn } from "./ocmf-check.js";

let dir: string;
let key: StationKey;

const opensslVerify = (record: string, publicKeyHex: string) => verifyIn(dir, record, publicKeyHex);

const session = (n: number): OcmfSession => ({
  pagination: n,
  gateway: { id: "piled", serial: "PILE-0001", version: "0.1.0" },
  meter: { vendor: "Eastron", model: "SDM72D-M", serial: "M12345", firmware: "1.0" },
  tokenId: "c0de1d5a",
  chargePointId: "DE*PIL*E0001",
  start: { at: new Date("2026-12-01T10:00:00.123Z"), wh: 12_345 },
  stop: { at: new Date("2026-12-01T11:02:03.456Z"), wh: 19_876 },
});

before(() => {
  requireVenv();
  dir = mkdtempSync(join(tmpdir(), "piled-ocmf-"));
  chmodSync(dir, 0o700);
  const k = loadOrCreateStationKey(dir);
  assert.ok(k.ok, k.ok ? "" : k.error.message);
  key = k.value;
});

after(() => rmSync(dir, { recursive: true, force: true }));

test("the station key is created 0600 on first start and the same key is loaded after", () => {
  assert.equal(statSync(join(dir, OCMF_KEY_FILE)).mode & 0o777, 0o600);
  const again = loadOrCreateStationKey(dir);
  assert.ok(again.ok);
  assert.equal(again.value.publicKeyHex, key.publicKeyHex);
  assert.match(key.publicKeyHex, /^3059301306072A8648CE3D020106082A8648CE3D030107034200/);
});

test("a loose key file or a group-writable state directory is refused", () => {
  const d = join(dir, "loose");
  mkdirSync(d, { mode: 0o700 });
  assert.ok(loadOrCreateStationKey(d).ok);
  chmodSync(join(d, OCMF_KEY_FILE), 0o644);
  const r = loadOrCreateStationKey(d);
  assert.ok(!r.ok && r.error.code === "MODE", "mode 0644 refused");
  assert.ok(!r.ok && !r.error.message.includes("PRIVATE KEY"), "the message names the file, not its content");
  const g = join(dir, "groupw");
  mkdirSync(g);
  chmodSync(g, 0o770);
  const r2 = loadOrCreateStationKey(g);
  assert.ok(!r2.ok && r2.error.code === "MODE");
});

test("sealed sessions verify with pyocmf and openssl; tampered ones fail both", () => {
  const a = sealSession(key, session(1));
  const b = sealSession(key, session(2));
  assert.ok(a.ok && b.ok);
  const good = [a.value, b.value];
  // Tampered: one more kWh at the end; and a signature from another key.
  const moreEnergy = a.value.replace('"RV":19.876', '"RV":20.876');
  assert.notEqual(moreEnergy, a.value);
  const other = loadOrCreateStationKey(mkdtempSync(join(dir, "other-")));
  assert.ok(other.ok);
  const res = pyocmf([...good, moreEnergy], key.publicKeyHex);
  assert.deepEqual(res[0], { valid: true, pagination: "T1" });
  assert.deepEqual(res[1], { valid: true, pagination: "T2" });
  assert.ok(res[2]?.valid !== true, `tampered record accepted: ${JSON.stringify(res[2])}`);
  const wrongKey = pyocmf([a.value], other.value.publicKeyHex);
  assert.ok(wrongKey[0]?.valid !== true);
  assert.equal(opensslVerify(a.value, key.publicKeyHex), true);
  assert.equal(opensslVerify(b.value, key.publicKeyHex), true);
  assert.equal(opensslVerify(moreEnergy, key.publicKeyHex), false);
  assert.equal(opensslVerify(a.value, other.value.publicKeyHex), false);
});

test("a field holding '|' is refused, not sealed into a record that cannot be split", () => {
  const r = sealSession(key, { ...session(3), tokenId: "a|b" });
  assert.ok(!r.ok);
});
