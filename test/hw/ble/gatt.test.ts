import assert from "node:assert/strict";
import { test } from "node:test";
import { buildAdvertisingData, cutUtf8, matchName, SERVICE_UUID } from "../../../src/hw/ble/gatt.js";

const utf8 = (b: Uint8Array) => new TextDecoder().decode(b);

test("advertisement: flags then the 128-bit service UUID, little-endian", () => {
  const { advertisement } = buildAdvertisingData("A1");
  assert.deepEqual([...advertisement.subarray(0, 5)], [0x02, 0x01, 0x06, 0x11, 0x07]);
  const uuid = Buffer.from(advertisement.subarray(5)).reverse().toString("hex");
  assert.equal(uuid, SERVICE_UUID.replace(/-/g, ""));
  assert.equal(advertisement.length, 21);
});

test("an ASCII name that fits is a Complete Local Name", () => {
  const { scanResponse, nameComplete } = buildAdvertisingData("CP-0042");
  assert.equal(nameComplete, true);
  assert.equal(scanResponse[1], 0x09);
  assert.equal(scanResponse[0], scanResponse.length - 1);
  assert.equal(utf8(scanResponse.subarray(2)), "PILE-CP-0042");
});

test("a name of exactly 29 bytes stays complete and fills the scan response", () => {
  const id = "x".repeat(24); // "PILE-" + 24 = 29 bytes
  const { scanResponse, nameComplete } = buildAdvertisingData(id);
  assert.equal(nameComplete, true);
  assert.equal(scanResponse.length, 31);
  assert.equal(scanResponse[0], 30);
  assert.equal(scanResponse[1], 0x09);
  assert.equal(utf8(scanResponse.subarray(2)), `PILE-${id}`);
});

test("a name of 30 bytes is shortened to 29 bytes (0x08)", () => {
  const id = "y".repeat(25);
  const { scanResponse, nameComplete } = buildAdvertisingData(id);
  assert.equal(nameComplete, false);
  assert.equal(scanResponse[1], 0x08);
  assert.equal(scanResponse.length, 31);
  assert.equal(utf8(scanResponse.subarray(2)), `PILE-${"y".repeat(24)}`);
});

test("multi-byte UTF-8 is cut at a character boundary, never inside one", () => {
  // "PILE-" (5) + 11 × "é" (22) = 27 bytes; the next "€" (3 bytes) would make 30.
  const id = `${"é".repeat(11)}€€`;
  const { scanResponse, nameComplete } = buildAdvertisingData(id);
  assert.equal(nameComplete, false);
  const name = scanResponse.subarray(2);
  assert.equal(name.length, 27);
  assert.equal(scanResponse[0], 28);
  assert.equal(utf8(name), `PILE-${"é".repeat(11)}`);
  // 4-byte characters too
  const cut = cutUtf8("PILE-🔌🔌🔌🔌🔌🔌🔌", 29);
  assert.equal(cut.bytes.length, 29);
  assert.equal(utf8(cut.bytes), "PILE-🔌🔌🔌🔌🔌🔌");
  const cut2 = cutUtf8("PILE-a🔌🔌🔌🔌🔌🔌", 29);
  assert.equal(cut2.bytes.length, 26);
  assert.equal(cut2.complete, false);
});

test("a non-ASCII name that fits is complete, sized in bytes not characters", () => {
  const id = "充电桩-7"; // 3 CJK characters = 9 bytes
  const { scanResponse, nameComplete } = buildAdvertisingData(id);
  assert.equal(nameComplete, true);
  assert.equal(scanResponse[0], 1 + 5 + 9 + 2);
  assert.equal(utf8(scanResponse.subarray(2)), `PILE-${id}`);
});

test("matchName: exact, cut prefixes to confirm by Info, others", () => {
  assert.equal(matchName("PILE-A1", "A1"), "exact");
  assert.equal(matchName("PILE-A12", "A1"), "other");
  assert.equal(matchName("PILE-A", "A1"), "other"); // too short to be a cut name
  assert.equal(matchName(undefined, "A1"), "prefix");
  const long = "z".repeat(40);
  const shortName = utf8(cutUtf8(`PILE-${long}`, 29).bytes);
  assert.equal(matchName(shortName, long), "prefix");
  assert.equal(matchName(shortName, `q${long}`), "other");
  const multi = `${"é".repeat(11)}€€`;
  assert.equal(matchName(utf8(buildAdvertisingData(multi).scanResponse.subarray(2)), multi), "prefix");
});
