/** Message lengths, types and the INFO layout of PROTOCOL.md §3. */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  decodeClientMessage,
  decodeInfo,
  decodePileMessage,
  encodeMessage,
  type Message,
  MsgType,
  Reason,
  u32,
  utf8,
} from "../../src/protocol/index.js";

const z = (n: number) => new Uint8Array(n);
const CODE = z(72);
CODE[0] = 1;

const samples: [Message, number][] = [
  [{ type: "HELLO", version: 1, keyId: 7, codeId: z(16), clientNonce: z(16) }, 38],
  [{ type: "PRESENT", deviceProof: z(32), code: CODE }, 105],
  [{ type: "STOP", stopProof: z(32) }, 33],
  [{ type: "CHALLENGE", pileNonce: z(16), pileProof: z(32) }, 49],
  [{ type: "RESULT", reason: Reason.ACCEPTED, sessionId: z(16) }, 18],
  [{ type: "RESULT", reason: Reason.WRONG_PILE }, 2],
  [{ type: "STATUS", state: 3, energyWh: 1, powerW: 2, elapsedS: 3 }, 14],
  [{ type: "ERROR", reason: Reason.BAD_MESSAGE }, 2],
  [{ type: "INFO", version: 1, state: 0, pileId: "P", keyIds: [] }, 5 + 1],
  [{ type: "INFO", version: 1, state: 0, pileId: "PILE-SZ-0042", keyIds: [7, 9] }, 5 + 12 + 8],
];

const decode = (b: Uint8Array) =>
  b[0] === MsgType.INFO ? decodeInfo(b) : b[0]! < 0x80 ? decodeClientMessage(b) : decodePileMessage(b);

test("every message has its exact length and decodes back to itself", () => {
  for (const [m, len] of samples) {
    const b = encodeMessage(m);
    assert.equal(b.length, len, m.type);
    assert.equal(b[0], MsgType[m.type]);
    const d = decode(b);
    assert.ok(d.ok, m.type);
    assert.deepEqual(d.value, m);
  }
});

test("one byte more or less is BAD_MESSAGE for every fixed-length message", () => {
  for (const [m] of samples) {
    const b = encodeMessage(m);
    const longer = Uint8Array.of(...b, 0);
    const shorter = b.subarray(0, b.length - 1);
    if (m.type !== "PRESENT")
      assert.deepEqual(decode(longer), { ok: false, error: "BAD_MESSAGE" }, `${m.type} +1`);
    assert.deepEqual(decode(shorter), { ok: false, error: "BAD_MESSAGE" }, `${m.type} −1`);
  }
  // a RESULT ACCEPTED must carry its sessionId; any other RESULT must not
  assert.equal(decodePileMessage(Uint8Array.of(MsgType.RESULT, Reason.ACCEPTED)).ok, false);
  assert.equal(decodePileMessage(Uint8Array.of(MsgType.RESULT, Reason.BUSY, ...z(16))).ok, false);
  assert.equal(decodePileMessage(Uint8Array.of(MsgType.RESULT)).ok, false);
  assert.equal(decodePileMessage(Uint8Array.of(MsgType.ERROR)).ok, false);
});

test("PRESENT carries 33 bytes plus a code of at least 72 bytes, up to the 512-byte message limit", () => {
  assert.equal(decodeClientMessage(Uint8Array.of(MsgType.PRESENT, ...z(32), ...z(71))).ok, false);
  const min = decodeClientMessage(Uint8Array.of(MsgType.PRESENT, ...z(32), ...z(72)));
  assert.ok(min.ok && min.value.type === "PRESENT" && min.value.code.length === 72);
  assert.ok(decodeClientMessage(Uint8Array.of(MsgType.PRESENT, ...z(511))).ok);
  assert.equal(decodeClientMessage(Uint8Array.of(MsgType.PRESENT, ...z(512))).ok, false);
});

test("unknown types, and types of the other direction, are BAD_MESSAGE", () => {
  const client = new Set<number>([MsgType.HELLO, MsgType.PRESENT, MsgType.STOP]);
  const pile = new Set<number>([MsgType.CHALLENGE, MsgType.RESULT, MsgType.STATUS, MsgType.ERROR]);
  for (let t = 0; t < 256; t++) {
    for (const len of [1, 2, 14, 18, 33, 38, 49, 120]) {
      const b = z(len);
      b[0] = t;
      if (!client.has(t)) assert.deepEqual(decodeClientMessage(b), { ok: false, error: "BAD_MESSAGE" });
      if (!pile.has(t)) assert.deepEqual(decodePileMessage(b), { ok: false, error: "BAD_MESSAGE" });
      if (t !== MsgType.INFO) assert.equal(decodeInfo(b).ok, false);
    }
  }
  assert.deepEqual(decodeClientMessage(new Uint8Array()), { ok: false, error: "BAD_MESSAGE" });
  assert.deepEqual(decodePileMessage(new Uint8Array()), { ok: false, error: "BAD_MESSAGE" });
  assert.deepEqual(decodeInfo(new Uint8Array()), { ok: false, error: "BAD_MESSAGE" });
});

test("reason codes and states outside the table are BAD_MESSAGE", () => {
  for (let r = 0; r < 256; r++) {
    const known = r <= 0x11;
    assert.equal(decodePileMessage(Uint8Array.of(MsgType.ERROR, r)).ok, known, `ERROR 0x${r.toString(16)}`);
    if (r !== Reason.ACCEPTED)
      assert.equal(
        decodePileMessage(Uint8Array.of(MsgType.RESULT, r)).ok,
        known,
        `RESULT 0x${r.toString(16)}`,
      );
  }
  for (let s = 0; s < 256; s++) {
    assert.equal(decodePileMessage(Uint8Array.of(MsgType.STATUS, s, ...z(12))).ok, s <= 6, `STATE ${s}`);
  }
});

test("HELLO decodes any version byte (the pile answers UNSUPPORTED_VERSION, not BAD_MESSAGE)", () => {
  const b = encodeMessage({
    type: "HELLO",
    version: 2,
    keyId: 0xffffffff,
    codeId: z(16).fill(3),
    clientNonce: z(16).fill(4),
  });
  const d = decodeClientMessage(b);
  assert.ok(d.ok && d.value.type === "HELLO");
  assert.equal(d.value.version, 2);
  assert.equal(d.value.keyId, 0xffffffff);
});

test("INFO: round trip with 0..16 keys and 1..64-byte UTF-8 ids; anything else is BAD_MESSAGE", () => {
  for (const pileId of ["P", "😀".repeat(16), "é".repeat(32), "PILE-SZ-0042"]) {
    for (const n of [0, 1, 16]) {
      const m: Message = {
        type: "INFO",
        version: 1,
        state: 3,
        pileId,
        keyIds: Array.from({ length: n }, (_, i) => i * 0x01010101),
      };
      const d = decodeInfo(encodeMessage(m));
      assert.ok(d.ok);
      assert.deepEqual(d.value, m);
    }
  }
  const info = (idLen: number, id: Uint8Array, keys: number[], count = keys.length) =>
    Uint8Array.of(MsgType.INFO, 1, 0, idLen, ...id, count, ...keys.flatMap((k) => [...u32(k)]));
  assert.equal(decodeInfo(info(1, utf8("P"), Array(17).fill(1))).ok, false, "17 keys");
  assert.equal(decodeInfo(info(0, new Uint8Array(), [])).ok, false, "empty id");
  assert.equal(decodeInfo(info(65, z(65).fill(65), [])).ok, false, "65-byte id");
  assert.equal(decodeInfo(info(2, Uint8Array.of(0xc3, 0x28), [])).ok, false, "invalid UTF-8");
  assert.equal(decodeInfo(info(1, utf8("P"), [1, 2], 3)).ok, false, "count says 3, carries 2");
  assert.equal(decodeInfo(info(1, utf8("P"), [1, 2], 1)).ok, false, "count says 1, carries 2");
  assert.equal(decodeInfo(info(5, utf8("P"), [])).ok, false, "idLen past the end");
  assert.throws(
    () => encodeMessage({ type: "INFO", version: 1, state: 0, pileId: "x".repeat(65), keyIds: [] }),
    RangeError,
  );
  assert.throws(
    () => encodeMessage({ type: "INFO", version: 1, state: 0, pileId: "P", keyIds: Array(17).fill(0) }),
    RangeError,
  );
});
