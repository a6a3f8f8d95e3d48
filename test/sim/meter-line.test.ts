/**
 * The paced RS-485 line of the meter bench (src/sim/meter/line.ts) between two socat pty pairs:
 * bytes arrive whole and in order, each frame takes its characters' time on the line's own
 * schedule, frames never overlap and keep the inter-frame silence. Every assertion is on the
 * schedule the line computed or on an order of events, never on how fast the machine is; the
 * one measured span (first byte written → last byte received) is a lower bound the line
 * guarantees however slow the machine runs.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { SerialPort } from "serialport";
import { charTimeMs, lineSilenceMs, SerialLine } from "../../src/sim/meter/line.js";
import { openPtyPair, type PtyPair } from "../helpers/pty.js";

const BAUD = 9600;

let master: PtyPair;
let slave: PtyPair;
let line: SerialLine;
let m: SerialPort;
let s: SerialPort;

function open(path: string): Promise<SerialPort> {
  const p = new SerialPort({ path, baudRate: BAUD, autoOpen: false });
  return new Promise((resolve, reject) => p.open((e) => (e ? reject(e) : resolve(p))));
}

/** Collects `n` bytes from a port; resolves with them and the time the last one came in. */
function receive(p: SerialPort, n: number): Promise<{ data: Buffer; at: number }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const onData = (c: Buffer) => {
      chunks.push(c);
      got += c.length;
      if (got >= n) {
        const at = performance.now();
        p.off("data", onData);
        resolve({ data: Buffer.concat(chunks), at });
      }
    };
    p.on("data", onData);
  });
}

before(async () => {
  master = await openPtyPair();
  slave = await openPtyPair();
  line = await SerialLine.open({ master: master.b, slave: slave.a, baudRate: BAUD, bitsPerChar: 10 });
  m = await open(master.a);
  s = await open(slave.b);
});

after(async () => {
  for (const p of [m, s]) if (p?.isOpen) await new Promise<void>((r) => p.close(() => r()));
  await line?.close();
  await master?.close();
  await slave?.close();
});

test("the pacing figures of 9600 baud 8N1: 1.0417 ms a character, 3.5 characters of silence", () => {
  assert.ok(Math.abs(charTimeMs(9600, 10) - 1.0417) < 1e-4);
  assert.ok(Math.abs(lineSilenceMs(9600, 10) - 3.6458) < 1e-4);
  assert.equal(lineSilenceMs(38_400, 10), 1.75);
  assert.equal(line.charMs, charTimeMs(9600, 10));
  assert.equal(line.silenceMs, lineSilenceMs(9600, 10));
});

test("a frame of N bytes takes N character times from its first byte written to its last delivered", async () => {
  line.clearFrames();
  const frame = Buffer.from(Array.from({ length: 24 }, (_, i) => (i * 37) & 0xff));
  const got = receive(s, frame.length);
  const writtenAt = performance.now();
  m.write(frame);
  const { data, at } = await got;
  assert.deepEqual(data, frame);
  const [f, ...more] = line.frames();
  assert.equal(more.length, 0);
  assert.ok(f);
  assert.equal(f.dir, "toSlave");
  assert.equal(f.bytes, 24);
  // The line's schedule: back to back characters, the last handed over no earlier than its end.
  assert.ok(Math.abs(f.endAt - f.startAt - 24 * line.charMs) < 1e-9);
  assert.ok(f.inAt >= writtenAt && f.startAt >= f.inAt);
  assert.ok(f.deliveredAt >= f.endAt);
  // What the receiver saw: never sooner than the frame's wire time after the write.
  assert.ok(at - writtenAt >= 24 * line.charMs, `${at - writtenAt} ms`);
  assert.ok(at >= f.deliveredAt);
});

test("a reply written at once waits for the silence after the request; frames never overlap", async () => {
  line.clearFrames();
  const request = Buffer.from([1, 4, 0, 0, 0, 2, 0x71, 0xcb]);
  const reply = Buffer.from([1, 4, 4, 0x43, 0x66, 0, 0, 0x8f, 0x5e]);
  // The slave answers the moment the request is in, as the simulated meter does.
  const answered = receive(s, request.length).then(() => s.write(reply));
  const got = receive(m, reply.length);
  m.write(request);
  await answered;
  const { data } = await got;
  assert.deepEqual(data, reply);
  const [q, r] = line.frames();
  assert.ok(q && r);
  assert.deepEqual([q.dir, r.dir], ["toSlave", "toMaster"]);
  assert.ok(r.startAt - q.endAt >= line.silenceMs - 1e-9, `silence ${r.startAt - q.endAt} ms`);
  // It starts the moment both the reply is in and the silence is over, not later.
  assert.ok(Math.abs(r.startAt - Math.max(r.inAt, q.endAt + line.silenceMs)) < 1e-9);
  assert.ok(Math.abs(r.heldMs - (r.startAt - r.inAt)) < 1e-9);
  assert.ok(Math.abs(r.endAt - r.startAt - reply.length * line.charMs) < 1e-9);
  assert.ok(r.deliveredAt >= r.endAt);
});

test("two writes while the first is still on the wire make one frame; a write after it, a new one", async () => {
  line.clearFrames();
  const a = Buffer.alloc(48, 0x55);
  const b = Buffer.alloc(6, 0xaa);
  const got = receive(s, a.length + b.length);
  m.write(a);
  m.write(b);
  const { data } = await got;
  assert.deepEqual(data, Buffer.concat([a, b]));
  const frames = line.frames();
  assert.equal(frames.length, 1);
  assert.equal(frames[0]!.bytes, 54);
  assert.ok(Math.abs(frames[0]!.endAt - frames[0]!.startAt - 54 * line.charMs) < 1e-9);
  // The wire is idle now: the next write is a frame of its own, after the silence.
  const next = receive(s, 4);
  m.write(Buffer.alloc(4, 0x0f));
  await next;
  const [first, second] = line.frames();
  assert.ok(first && second);
  assert.ok(second.startAt >= first.endAt + line.silenceMs - 1e-9);
  assert.ok(second.startAt >= second.inAt);
});

test("frames from both sides at once are put one after the other, each after the silence", async () => {
  line.clearFrames();
  const toSlave = receive(s, 10);
  const toMaster = receive(m, 10);
  m.write(Buffer.alloc(10, 1));
  s.write(Buffer.alloc(10, 2));
  await Promise.all([toSlave, toMaster]);
  const frames = line.frames();
  assert.equal(frames.length, 2);
  const [x, y] = frames as [(typeof frames)[0], (typeof frames)[0]];
  assert.notEqual(x.dir, y.dir);
  assert.ok(y.startAt >= x.endAt + line.silenceMs - 1e-9);
  for (const f of frames) assert.ok(f.deliveredAt >= f.endAt);
});
