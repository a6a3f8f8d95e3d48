/**
 * Hardware in the loop: the real firmware in the libsimavr harness, the TypeScript adapter over
 * the pty. Deadlines are measured in simulated time (the harness stamps every event).
 */
import assert from "node:assert/strict";
import { before, type TestContext, test } from "node:test";
import { encodeFrame } from "../../src/hw/pilot/frame.js";
import { openPilotSerial } from "../../src/hw/pilot/link.js";
import type { McuHello } from "../../src/hw/pilot/messages.js";
import { PilotMcu, PilotMcuError } from "../../src/hw/pilot/pilot-mcu.js";
import { buildFirmware, Harness, type HarnessLine } from "../helpers/pilot-harness.js";

before(() => {
  const r = buildFirmware();
  assert.equal(r.status, 0, r.output);
});

interface Rig {
  h: Harness;
  mcu: PilotMcu;
  boot: McuHello;
  /** Every permit grant with the vehicle state the harness was playing at that instant. */
  grants: { t: number; vehicle: string; diode: boolean; left: number | undefined }[];
  vehicle: (v: string) => Promise<HarnessLine>;
}

/** A harness and an adapter for one test, ended with it. */
async function rig(t: TestContext): Promise<Rig> {
  const h = await Harness.start();
  const link = await openPilotSerial({ path: h.pty });
  const mcu = new PilotMcu({ link, heartbeatMs: 50, silenceMs: 400 });
  const boot = new Promise<McuHello>((resolve) => mcu.once("reset", resolve));
  await h.cmd("go");
  const r: Rig = {
    h,
    mcu,
    boot: await boot,
    grants: [],
    vehicle: (v: string) => h.cmd(`vehicle ${v}`),
  };
  // The plant as the harness played it, line by line in simulated-time order (not as the
  // commands' replies resolve: a grant in the same read as a change would be put before it).
  let vehicle = "A";
  let diode = true;
  let leftAt: number | undefined = 0;
  h.onLine((l) => {
    if (l.kind === "ok vehicle") vehicle = l.fields.v as string;
    if (l.kind === "ok diode") diode = l.fields.v === "1";
    const ok = (vehicle === "C" || vehicle === "D") && diode;
    if (!ok) leftAt ??= l.t;
    else leftAt = undefined;
    if (l.kind === "permit" && l.fields.v === "1")
      r.grants.push({ t: l.t, vehicle, diode, left: leftAt === undefined ? undefined : l.t - leftAt });
  });
  t.after(async () => {
    await mcu.close().catch(() => {});
    await h.stop();
  });
  await mcu.start();
  await mcu.heartbeat();
  return r;
}

/** How old the pilot sample behind a permit decision can be: one PWM period (1 ms: the high-half
 * sample is taken up at the next period's start), a main-loop pass, and the harness's 100 us step. */
const SAMPLE_AGE_US = 1500;

const permitEvent = (h: Harness, v: 0 | 1, timeoutMs = 5000) =>
  h.next((l) => l.kind === "permit" && l.fields.v === String(v), timeoutMs);

/** Plug in, PWM at `amps`, vehicle to C: resolves once the permit is granted. */
async function charging(r: Rig, amps = 16): Promise<void> {
  await r.vehicle("B");
  await r.mcu.setCurrent(amps);
  const granted = permitEvent(r.h, 1);
  await r.vehicle("C");
  await granted;
}

/**
 * Every grant in C/D with the diode, or within a sample's age of the plant leaving that: the MCU
 * decides on the pilot sampled in the PWM period before, and drops such a grant 2 samples later.
 */
function onlyInCD(r: Rig): void {
  for (const g of r.grants)
    assert.ok(
      g.left === undefined || g.left <= SAMPLE_AGE_US,
      `permit granted in ${g.vehicle}, diode ${g.diode}, ${g.left} us after it left C/D`,
    );
}

test("boot: HELLO with the power-on cause and the permit off; an external reset says EXT", async (t) => {
  const r = await rig(t);
  assert.deepEqual(r.boot, { fw: "1.0.0", cause: "POR", permit: false, heartbeatLimitMs: 500 });
  const again = new Promise<McuHello>((resolve) => r.mcu.once("reset", resolve));
  await r.h.cmd("reset");
  const hello = await again;
  assert.equal(hello.cause, "EXT");
  assert.equal(hello.permit, false);
});

test("PWM off at any point of the period: the pin is back at steady +12 V and B stays B", async (t) => {
  const r = await rig(t);
  await r.vehicle("B");
  for (let i = 0; i < 8; i++) {
    await r.mcu.setCurrent(16);
    // A different instant of the 1 ms period each round (most fall in the 73 % low half).
    await r.h.wait(20 + i * 0.37);
    await r.mcu.setCurrent(null);
    await r.h.wait(300);
    const p = await r.h.cmd("pwm");
    assert.equal(p.text.includes("on=0 level=1"), true, `round ${i}: ${p.text}`);
    assert.equal((await r.mcu.readStatus()).state, "B", `round ${i}`);
  }
});

test("SET: PWM measured on the pin at 1 kHz and the IEC 61851 duty within 0.5 %", async (t) => {
  const r = await rig(t);
  for (const [amps, duty] of [
    [6, 10],
    [16, 16 / 0.6],
    [32, 32 / 0.6],
    [51, 85],
    [63, 63 / 2.5 + 64],
    [80, 96],
  ] as const) {
    await r.mcu.setCurrent(amps);
    await r.h.wait(5);
    const p = await r.h.cmd("pwm");
    assert.equal(p.fields.on, "1", p.text);
    assert.ok(Math.abs(Number(p.fields.freq) - 1000) < 1, p.text);
    assert.ok(Math.abs(Number(p.fields.duty) - duty) <= 0.5, `${amps} A: ${p.text}`);
  }
  await assert.rejects(
    r.mcu.setCurrent(5.9),
    (e: unknown) => e instanceof PilotMcuError && e.code === "RANGE",
  );
  await assert.rejects(
    r.mcu.setCurrent(80.1),
    (e: unknown) => e instanceof PilotMcuError && e.code === "RANGE",
  );
  const before = await r.h.cmd("pwm");
  r.mcu.sendRaw(encodeFrame(0xf0, "SET 1 900")); /* the MCU refuses it too, and changes nothing */
  await r.h.wait(5);
  const still = await r.h.cmd("pwm");
  assert.ok(Math.abs(Number(still.fields.duty) - Number(before.fields.duty)) < 0.05, still.text);
  await r.mcu.setCurrent(null);
  await r.h.wait(5);
  assert.equal((await r.h.cmd("pwm")).fields.on, "0");
});

test("a session: B -> C grants the permit; leaving C removes it within 20 simulated ms", async (t) => {
  const r = await rig(t);
  const states: string[] = [];
  r.mcu.on("pilot", (s) => states.push(s));
  await charging(r);
  assert.equal((await r.mcu.readStatus()).permit, "charge");
  const off = permitEvent(r.h, 0);
  const left = await r.vehicle("B");
  const latencyMs = ((await off).t - left.t) / 1000;
  assert.ok(latencyMs <= 20, `permit off ${latencyMs} ms after the pilot left C`);
  await r.h.wait(30);
  const st = await r.mcu.readStatus();
  assert.equal(st.permit, "off");
  assert.ok(st.why.includes("state"));
  assert.deepEqual(states.slice(-2), ["C", "B"]);
  onlyInCD(r);
});

test("heartbeat stops: the MCU drops the permit on its own at the configured limit", async (t) => {
  const r = await rig(t);
  await r.mcu.setHeartbeatLimit(200);
  await charging(r);
  const off = permitEvent(r.h, 0);
  await r.mcu.close(); /* no more heartbeats */
  const stopped = await r.h.cmd("time");
  const ms = ((await off).t - stopped.t) / 1000;
  assert.ok(ms <= 260, `permit off ${ms} ms after the last heartbeat could arrive`);
  onlyInCD(r);
});

test("MCU frozen: the watchdog resets it, the permit is off through the reset, HELLO says WDT", async (t) => {
  const r = await rig(t);
  await charging(r);
  const reset = new Promise<McuHello>((resolve) => r.mcu.once("reset", resolve));
  const off = permitEvent(r.h, 0);
  const frozen = await r.h.cmd("freeze");
  const hello = await reset;
  const offMs = ((await off).t - frozen.t) / 1000;
  assert.ok(offMs <= 100, `permit off ${offMs} ms after the freeze`);
  assert.equal(hello.cause, "WDT");
  assert.equal(hello.permit, false);
  await r.h.wait(300); /* vehicle still in C, heartbeats live, but the PWM is off after a reset */
  assert.equal((await r.h.cmd("permit")).fields.v, "0");
  const st = await r.mcu.readStatus();
  assert.equal(st.pwm, false);
  assert.equal(st.permit, "off");
  onlyInCD(r);
});

test("diode missing, state E, state F: no permit, and the reason says why", async (t) => {
  const r = await rig(t);
  await r.vehicle("B");
  await r.h.cmd("diode 0");
  await r.mcu.setCurrent(16);
  await r.vehicle("C");
  await r.h.wait(400);
  let st = await r.mcu.readStatus();
  assert.equal(st.state, "C");
  assert.equal(st.diode, "fail");
  assert.ok(st.why.includes("diode"));
  for (const v of ["E", "F"]) {
    await r.vehicle(v);
    await r.h.cmd("diode 1");
    await r.h.wait(300);
    st = await r.mcu.readStatus();
    assert.equal(st.state, v);
    assert.equal(st.permit, "off");
  }
  assert.equal(r.grants.length, 0);
});

test("relay test: a test permit only in A with the PWM off", async (t) => {
  const r = await rig(t);
  const on = permitEvent(r.h, 1);
  await r.mcu.relayTest(true);
  await on;
  assert.equal((await r.mcu.readStatus()).permit, "test");
  const off = permitEvent(r.h, 0);
  await r.vehicle("B");
  await off;
  await assert.rejects(
    r.mcu.relayTest(true),
    (e: unknown) => e instanceof PilotMcuError && e.mcuError === "STATE",
  );
  await r.vehicle("A");
  await r.h.wait(50);
  await r.mcu.setCurrent(16);
  await assert.rejects(
    r.mcu.relayTest(true),
    (e: unknown) => e instanceof PilotMcuError && e.mcuError === "STATE",
  );
});

test("garbage, split lines and bad CRCs in both directions: dropped, counted, nothing moves", async (t) => {
  const r = await rig(t);
  await r.mcu.setCurrent(16);
  const before = await r.mcu.counters();
  r.mcu.sendRaw("garbage on the line\n");
  r.mcu.sendRaw("$05 SET 1 320*0000\n"); /* bad CRC */
  r.mcu.sendRaw(encodeFrame(6, "SET 1 320").slice(0, 8)); /* split: the rest never comes */
  r.mcu.sendRaw(encodeFrame(7, "SET 1 320").replace("320", "321")); /* corrupted in flight */
  await r.h.wait(20);
  const after1 = await r.mcu.counters();
  assert.equal(after1.bad - before.bad, 4, JSON.stringify(after1));
  const p = await r.h.cmd("pwm");
  assert.ok(Math.abs(Number(p.fields.duty) - 16 / 0.6) <= 0.5, p.text);
  const statusBefore = await r.mcu.readStatus();
  let events = 0;
  r.mcu.on("status", () => events++);
  const bad0 = r.mcu.stats.rxBad;
  await r.h.cmd("noise $05 STATE st=C permit=1 diode=ok pwm=1 duty=267 cur=160 why=-*0000");
  await r.h.cmd("noise line noise");
  await r.h.cmd("noise $06 STATE st=C permit=1$07 STATE st=D");
  await r.h.wait(20);
  await r.mcu.heartbeat();
  assert.equal(r.mcu.stats.rxBad - bad0, 4, JSON.stringify(r.mcu.stats));
  assert.equal(events, 0);
  assert.deepEqual(r.mcu.status, statusBefore);
  assert.equal((await r.h.cmd("permit")).fields.v, "0");
});

test("a STATE that finds the TX ring full waits and goes out once there is room: the board is never left stale", async (t) => {
  const r = await rig(t);
  await r.vehicle("A");
  await r.h.wait(30);
  assert.equal(r.mcu.status?.state, "A");
  const before = await r.mcu.counters();
  // CNT frames back to back: each answer (ACK and CNT, about 60 bytes) is longer than the
  // command (13), so the MCU's 256-byte TX ring fills and stays full while they come. The
  // vehicle goes to B meanwhile: its STATE (20 ms of debounce later) finds no room, and waits.
  let flood = "";
  for (let i = 0; i < 120; i++) flood += encodeFrame((0x80 + i) & 0xff, "CNT");
  r.mcu.sendRaw(flood);
  await r.vehicle("B");
  await r.h.wait(1000); /* the flood takes about 400 ms to go in */
  const after = await r.mcu.counters();
  assert.ok(after.txDrop > before.txDrop, `the ring overflowed: ${JSON.stringify(after)}`);
  assert.equal(r.mcu.status?.state, "B", "the STATE after the overflow reached the board");
  assert.deepEqual(r.mcu.status, await r.mcu.readStatus());
});

test("randomised plant, 1000 steps: no permit outside C/D with the diode, none kept 20 ms past", async (t) => {
  const r = await rig(t);
  await r.mcu.setHeartbeatLimit(5000); /* unthrottled below: real-time heartbeats are sparse */
  await r.h.cmd("speed 0");
  let seed = 0x2545f491;
  const rand = (n: number) => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const from = r.h.lines.length;
  for (let i = 0; i < 1000; i++) {
    const k = rand(20);
    if (k < 12) await r.vehicle("ABCCCDEFBC"[rand(10)] as string);
    else if (k < 14) await r.h.cmd(`diode ${rand(3) === 0 ? 0 : 1}`);
    else if (k < 16) await r.mcu.setCurrent(rand(4) === 0 ? null : 6 + rand(75));
    else await r.h.wait(rand(4) === 0 ? 120 : rand(8));
  }
  await r.h.wait(30);
  // The simulation runs on while the lines are read: the permit as the harness reports it now,
  // and every line up to that reply, so the two describe the same instant.
  const end = await r.h.cmd("permit");
  let vehicle = "A";
  let diode = true;
  let permit = false;
  let badSince: number | undefined;
  for (const l of r.h.lines.slice(from, r.h.lines.indexOf(end))) {
    if (badSince !== undefined && permit) {
      assert.ok(l.t - badSince <= 20_000, `permit still on ${(l.t - badSince) / 1000} ms into ${vehicle}`);
    }
    if (l.kind === "ok vehicle") vehicle = l.fields.v as string;
    if (l.kind === "ok diode") diode = l.fields.v === "1";
    const bad = !((vehicle === "C" || vehicle === "D") && diode);
    if (bad && badSince === undefined) badSince = l.t;
    if (!bad) badSince = undefined;
    if (l.kind === "permit") permit = l.fields.v === "1";
  }
  const grants = r.grants.length; /* none before the run: the plant starts in A */
  assert.ok(grants > 5, `only ${grants} grants: the run did not exercise the permit`);
  onlyInCD(r);
  assert.equal(end.fields.v === "1", permit);
  // A plant changing every millisecond makes a STATE each time, faster than the wire: they wait
  // for room, the ACKs are never crowded out, and the harness lost none of the MCU's bytes.
  assert.equal((await r.mcu.counters()).txDrop, 0, "no line dropped by the MCU");
  assert.equal((await r.h.cmd("time")).fields.lost, "0", "no byte lost on the pty");
  assert.deepEqual(r.mcu.status, await r.mcu.readStatus(), "the last STATE told the state");
});
