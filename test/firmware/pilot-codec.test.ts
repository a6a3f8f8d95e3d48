/** The TypeScript side of the bridge: frame codec, message parsing, and the adapter on a fake link. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { checkFrame, crc16, encodeFrame, FrameError, LineDecoder } from "../../src/hw/pilot/frame.js";
import type { PilotLink } from "../../src/hw/pilot/link.js";
import { parseMessage } from "../../src/hw/pilot/messages.js";
import { PilotMcu, PilotMcuError } from "../../src/hw/pilot/pilot-mcu.js";

test("CRC-16/CCITT-FALSE check value and the frame layout the firmware uses", () => {
  assert.equal(crc16("123456789"), 0x29b1);
  /* The firmware's own HELLO, as read off the simulated UART. */
  assert.equal(
    encodeFrame(0, "HELLO fw=1.0.0 cause=POR permit=0 hb=500"),
    "$00 HELLO fw=1.0.0 cause=POR permit=0 hb=500*FC37\n",
  );
  assert.deepEqual(checkFrame("07 SET 1 160*".concat(encodeFrame(7, "SET 1 160").slice(-5, -1))), {
    ok: true,
    seq: 7,
    body: "SET 1 160",
  });
  for (const bad of ["", "x".repeat(73), "a*b", "a$b", "tab\there"])
    assert.throws(() => encodeFrame(1, bad), FrameError);
  assert.throws(() => encodeFrame(256, "HB"), FrameError);
});

test("decoder: split, corrupted and stray input dropped and counted; gaps counted", () => {
  const d = new LineDecoder();
  const f = encodeFrame(1, "HB").slice(0, -1);
  assert.deepEqual(d.decode(f), [{ ok: true, seq: 1, body: "HB" }]);
  for (let i = 1; i < f.length; i++) {
    const c = f[i] === "A" ? "B" : String.fromCharCode(f.charCodeAt(i) ^ 1);
    const r = d.decode(f.slice(0, i) + c + f.slice(i + 1));
    assert.equal(r.length, 1);
    assert.equal(r[0]?.ok, false, `corruption at ${i} accepted`);
  }
  const bad0 = d.counters.bad;
  const next = encodeFrame(2, "HB").slice(0, -1);
  const out = d.decode(`noise$01 SET 1${next}`); /* stray bytes, a split frame, then a good one */
  assert.deepEqual(
    out.map((x) => x.ok),
    [false, false, true],
  );
  assert.equal(d.counters.bad - bad0, 2);
  d.decode(encodeFrame(5, "HB").slice(0, -1));
  assert.equal(d.counters.gap, 2);
  d.decode(encodeFrame(0, "HELLO fw=1 cause=WDT permit=0 hb=500").slice(0, -1));
  assert.equal(d.counters.gap, 2, "a reset HELLO restarts the sequence");
  assert.deepEqual(d.decode(Buffer.from(`${encodeFrame(1, "HB").slice(0, -1)}\r`)), [
    { ok: true, seq: 1, body: "HB" },
  ]);
});

test("messages: typed, and anything malformed is null", () => {
  assert.deepEqual(parseMessage("STATE st=C permit=1 diode=ok pwm=1 duty=267 cur=160 why=-"), {
    kind: "state",
    status: {
      state: "C",
      permit: "charge",
      diode: "ok",
      pwm: true,
      dutyPermille: 267,
      currentDeciA: 160,
      why: [],
    },
  });
  const s = parseMessage("STATE st=B permit=0 diode=bad pwm=1 duty=267 cur=160 why=st,dio,hb");
  assert.deepEqual(s?.kind === "state" && s.status.why, ["state", "diode", "heartbeat"]);
  assert.deepEqual(parseMessage("ACK 0A ERR RANGE"), { kind: "ack", seq: 10, error: "RANGE" });
  assert.deepEqual(parseMessage("CNT ok=1 bad=2 gap=3 txdrop=0 up=99"), {
    kind: "counters",
    counters: { ok: 1, bad: 2, gap: 3, txDrop: 0, uptimeMs: 99 },
  });
  for (const b of [
    "STATE st=Q permit=1 diode=ok pwm=1 duty=267 cur=160 why=-",
    "STATE st=C permit=3 diode=ok pwm=1 duty=267 cur=160 why=-",
    "STATE st=C permit=1 diode=ok pwm=1 duty=x cur=160 why=-",
    "STATE st=C permit=1 diode=ok pwm=1 duty=267 cur=160 why=zz",
    "HELLO fw=1 cause=NOPE permit=0 hb=500",
    "ACK 0A",
    "ACK zz OK",
    "WHAT",
  ])
    assert.equal(parseMessage(b), null, b);
});

/** A link whose other end is the test: it sees what the adapter writes and plays the MCU. */
class FakeLink implements PilotLink {
  written: string[] = [];
  open = true;
  private listener: ((l: Uint8Array) => void) | undefined;
  private seq = 0;
  onLine(l: (line: Uint8Array) => void) {
    this.listener = l;
    return () => {
      this.listener = undefined;
    };
  }
  write(t: string) {
    if (!this.open) return false;
    this.written.push(t);
    return true;
  }
  async close() {
    this.open = false;
  }
  line(text: string) {
    this.listener?.(Buffer.from(text));
  }
  send(body: string) {
    this.line(encodeFrame(this.seq, body).slice(0, -1));
    this.seq = (this.seq + 1) & 0xff;
  }
  lastSeq(): string {
    return (this.written.at(-1) as string).slice(1, 3);
  }
}

const tick = () => new Promise((r) => setImmediate(r));

test("adapter: replies matched by sequence, refusals and bad input typed, nothing sent for them", async () => {
  const link = new FakeLink();
  const mcu = new PilotMcu({ link, heartbeatMs: 0, replyTimeoutMs: 50 });
  const p = mcu.setCurrent(16);
  assert.match(link.written.at(-1) as string, /^\$00 SET 1 160\*/);
  link.send(`ACK ${link.lastSeq()} OK`);
  await p;
  const n = link.written.length;
  await assert.rejects(mcu.setCurrent(81), (e: unknown) => e instanceof PilotMcuError && e.code === "RANGE");
  await assert.rejects(
    mcu.setCurrent(Number.NaN),
    (e: unknown) => e instanceof PilotMcuError && e.code === "RANGE",
  );
  await assert.rejects(
    mcu.setHeartbeatLimit(5),
    (e: unknown) => e instanceof PilotMcuError && e.code === "RANGE",
  );
  assert.equal(link.written.length, n, "refused input never reaches the wire");
  const t = mcu.relayTest(true);
  link.send(`ACK ${link.lastSeq()} ERR STATE`);
  await assert.rejects(
    t,
    (e: unknown) => e instanceof PilotMcuError && e.code === "REFUSED" && e.mcuError === "STATE",
  );
  await assert.rejects(mcu.heartbeat(), (e: unknown) => e instanceof PilotMcuError && e.code === "TIMEOUT");
  const st = mcu.readStatus();
  link.send("STATE st=B permit=0 diode=ok pwm=1 duty=267 cur=160 why=st");
  link.send(`ACK ${link.lastSeq()} OK`);
  assert.equal((await st).state, "B");
  await mcu.close();
  await assert.rejects(mcu.heartbeat(), (e: unknown) => e instanceof PilotMcuError && e.code === "CLOSED");
});

test("adapter: pilot changes, an unasked HELLO is a reset, silence is lost, bad lines counted", async () => {
  let now = 0;
  const link = new FakeLink();
  const mcu = new PilotMcu({ link, heartbeatMs: 0, silenceMs: 100, replyTimeoutMs: 1000, now: () => now });
  const seen: string[] = [];
  mcu.on("pilot", (s, prev) => seen.push(`${prev ?? "-"}>${s}`));
  mcu.on("reset", (h) => seen.push(`reset ${h.cause}`));
  mcu.on("lost", () => seen.push("lost"));
  mcu.on("back", () => seen.push("back"));
  const h = mcu.start();
  link.send("HELLO fw=1.0.0 cause=POR permit=0 hb=500");
  link.send(`ACK ${link.lastSeq()} OK`);
  assert.equal((await h).cause, "POR");
  link.send("STATE st=B permit=0 diode=unk pwm=0 duty=1000 cur=0 why=st,pwm,dio");
  link.send("STATE st=B permit=0 diode=unk pwm=0 duty=1000 cur=0 why=st,pwm,dio,hb");
  link.send("STATE st=C permit=1 diode=ok pwm=1 duty=267 cur=160 why=-");
  link.line("$05 STATE st=A permit=0 diode=unk pwm=0 duty=1000 cur=0 why=-*0000");
  link.line("line noise");
  link.send("MYSTERY 1");
  assert.equal(mcu.status?.state, "C");
  assert.equal(mcu.stats.rxBad, 2);
  assert.equal(mcu.stats.rxUnknown, 1);
  now = 150;
  await new Promise((r) => setTimeout(r, 40)); /* the watch runs every silenceMs / 4 */
  link.send("HELLO fw=1.0.0 cause=WDT permit=0 hb=500");
  await tick();
  assert.deepEqual(seen, ["->B", "B>C", "lost", "back", "reset WDT"]);
  assert.equal(mcu.lost, false);
  await mcu.close();
});

test("field report: an MCU that does not answer at start is lost at once, and back on its first line", async () => {
  const link = new FakeLink();
  const mcu = new PilotMcu({ link, heartbeatMs: 0, silenceMs: 60_000, replyTimeoutMs: 20 });
  const seen: string[] = [];
  mcu.on("lost", () => seen.push("lost"));
  mcu.on("back", () => seen.push("back"));
  mcu.on("reset", (h) => seen.push(`reset ${h.cause}`));
  await assert.rejects(mcu.start(), (e: unknown) => e instanceof PilotMcuError && e.code === "TIMEOUT");
  assert.equal(mcu.lost, true, "no HELLO: lost without waiting for the silence limit");
  assert.deepEqual(seen, ["lost"]);
  link.send("HELLO fw=1.0.0 cause=POR permit=0 hb=500");
  await tick();
  assert.equal(mcu.lost, false);
  assert.deepEqual(seen, ["lost", "back", "reset POR"]);
  await mcu.close();
});
