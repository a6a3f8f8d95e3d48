/**
 * Hardware in the loop with the whole pile: the BUILT daemon (its own process, on the simulated
 * plant and meter, BLE on the emulated radio) and the real pilot firmware in the libsimavr harness,
 * joined by the harness's pty as the pilot UART. The harness belongs to the test, so it keeps
 * playing the vehicle while the daemon is stopped or killed. The permit is wired in series with
 * the daemon's contactor line: the contactor is energised only while both are on (`energised`).
 * Deadlines are measured in simulated time (the harness stamps every event in µs).
 *
 * Needs the firmware-bridge toolchain and the radio tools of the e2e tier; fails naming them.
 */
import assert from "node:assert/strict";
import { closeSync, openSync, writeSync } from "node:fs";
import { before, type TestContext, test } from "node:test";
import type { StatusView } from "../../src/control/index.js";
import { encodeFrame } from "../../src/hw/pilot/frame.js";
import { assertOutcome, central, counter, sleep, unlockOver } from "../e2e/air.js";
import { type PileProc, startPile } from "../helpers/pile-proc.js";
import { buildFirmware, Harness, type HarnessLine } from "../helpers/pilot-harness.js";

before(() => {
  const r = buildFirmware();
  assert.equal(r.status, 0, r.output);
});

const AMPS = 16;
const HB_LIMIT_MS = 300;

interface Hil {
  h: Harness;
  pile: PileProc;
  /** Every permit grant with the vehicle the harness was playing then (and whether a relay test ran). */
  grants: { t: number; vehicle: string; test: boolean }[];
  relayTest: { running: boolean };
  vehicle(v: string): Promise<HarnessLine>;
  playing: () => string;
}

async function hil(t: TestContext, o: { release?: boolean } = {}): Promise<Hil> {
  const h = await Harness.start();
  // Released at once: what the MCU says before the daemon opens the pty is flushed, and the
  // daemon asks HELLO itself. Held (release false): an MCU that does not answer yet.
  if (o.release !== false) await h.cmd("go");
  const line = (n: number) => ({ chip: "sim", line: n });
  let pile: PileProc;
  try {
    pile = await startPile({
      pileId: `HIL-${process.pid}`,
      config: {
        gpio: {
          driver: "sim",
          contactor: line(0),
          lock: line(1),
          contactorFeedback: line(2),
          lockFeedback: line(3),
          emergencyStop: line(5),
        },
        vehicle: { kind: "pilot-mcu", port: h.pty, maxCurrentA: AMPS, heartbeatLimitMs: HB_LIMIT_MS },
      },
      ...(o.release === false ? { upState: "FAULTED" as const } : {}),
    });
  } catch (e) {
    await h.stop();
    throw e;
  }
  let playing = "A";
  const grants: Hil["grants"] = [];
  const relayTest = { running: false };
  h.onLine((l) => {
    if (l.kind === "permit" && l.fields.v === "1")
      grants.push({ t: l.t, vehicle: playing, test: relayTest.running });
  });
  t.after(async () => {
    if (process.env.HIL_DEBUG)
      process.stderr.write(
        `${pile
          .output()
          .split("\n")
          .filter((l) => /pilot|fault|refused/i.test(l))
          .join("\n")}\n${h.lines
          .filter((l) => !l.kind.startsWith("ok"))
          .map((l) => l.text)
          .join("\n")}\n`,
      );
    await pile.stop();
    await h.stop();
    for (const g of grants)
      assert.ok(
        g.vehicle === "C" || g.vehicle === "D" || (g.test && g.vehicle === "A"),
        `permit granted in ${g.vehicle}${g.test ? " (relay test)" : ""}`,
      );
  });
  return {
    h,
    pile,
    grants,
    relayTest,
    playing: () => playing,
    vehicle: async (v) => {
      const l = await h.cmd(`vehicle ${v}`);
      playing = v;
      return l;
    },
  };
}

const pilotOf = (s: StatusView) => {
  assert.ok(s.pilot, "status shows the pilot");
  return s.pilot;
};

/** The contactor in the plant: the daemon's line and the MCU's permit, in series. */
async function energised(r: Hil): Promise<boolean> {
  const plant = (await r.pile.control("sim", ["state"])) as { plant: { outputs: { contactor: boolean } } };
  const permit = (await r.h.cmd("permit")).fields.v === "1";
  return plant.plant.outputs.contactor && permit;
}

/** Plug in, a code over BLE, the PWM measured on the pin, vehicle to C: charging. */
async function charge(t: TestContext, r: Hil): Promise<void> {
  await r.vehicle("B");
  await r.pile.waitStatus((s) => s.pilot?.state === "B" && s.vehiclePresent === true);
  const c = await central(r.pile);
  t.after(c.close);
  const code = r.pile.issuer.issue({ deviceId: "HIL-CAR", pileId: r.pile.pileId, validForS: 600 });
  assert.ok(code.ok);
  const one = await unlockOver(c.central, code.value);
  assertOutcome(one.outcome, "accepted");
  one.stopStatus();
  await one.link.close();
  // Code accepted and lock confirmed: the daemon asks PWM at 16 A, the vehicle still at B.
  const s = await r.pile.waitStatus((x) => x.pilot?.pwm === true);
  assert.equal(s.state, "PREPARING");
  assert.equal(s.contactor, "open");
  const pwm = await r.h.cmd("pwm");
  assert.equal(pwm.fields.on, "1");
  const want = (AMPS / 0.6) as number;
  const duty = Number(pwm.fields.duty);
  assert.ok(Math.abs(duty - want) <= 0.5, `duty ${duty} % on the pin, want ${want.toFixed(2)} % ± 0.5`);
  assert.ok(Math.abs(Number(pwm.fields.freq) - 1000) <= 5, `PWM ${pwm.fields.freq} Hz`);
  assert.equal(await energised(r), false);
  const granted = r.h.next((l) => l.kind === "permit" && l.fields.v === "1");
  await r.vehicle("C");
  await granted;
  const on = await r.pile.waitStatus((x) => x.state === "CHARGING" && x.contactor === "closed");
  assert.equal(pilotOf(on).permit, "charge");
  assert.equal(await energised(r), true);
}

test("a whole session: plug, code over BLE, PWM at the duty of 16 A, C closes, B opens, unplug", async (t) => {
  const r = await hil(t);
  const idle = await r.pile.status();
  assert.equal(pilotOf(idle).state, "A");
  assert.equal(idle.vehiclePresent, false);
  await charge(t, r);
  // The vehicle is full: back to B. The daemon opens, the PWM goes back to +12 V.
  const off = r.h.next((l) => l.kind === "permit" && l.fields.v === "0");
  const b = await r.vehicle("B");
  const dropped = await off;
  assert.ok(dropped.t - b.t <= 100_000, `permit off ${(dropped.t - b.t) / 1000} ms after B`);
  const done = await r.pile.waitStatus((s) => s.session === null && s.contactor === "open");
  assert.equal(pilotOf(done).pwm, false);
  assert.equal((await r.h.cmd("pwm")).fields.on, "0", "PWM off on the pin: steady +12 V");
  const [rec] = await r.pile.sessions(1);
  assert.equal(rec?.reason, "VEHICLE_DONE");
  await r.vehicle("A");
  const a = await r.pile.waitStatus((s) => s.pilot?.state === "A" && s.state === "AVAILABLE");
  assert.equal(a.vehiclePresent, false);
  assert.equal(await energised(r), false);
});

test("unplugged while charging with the daemon stopped (SIGSTOP): the MCU alone drops the permit", async (t) => {
  const r = await hil(t);
  await charge(t, r);
  process.kill(r.pile.pid, "SIGSTOP");
  let resumed = false;
  t.after(() => {
    if (!resumed) process.kill(r.pile.pid, "SIGCONT");
  });
  const off = r.h.next((l) => l.kind === "permit" && l.fields.v === "0");
  const a = await r.vehicle("A");
  const dropped = await off;
  const ms = (dropped.t - a.t) / 1000;
  assert.ok(ms <= 20, `permit off ${ms} ms (simulated) after the unplug; IEC 61851-1 allows 100`);
  // The daemon's line is still on (it is stopped): the series contactor opened on the permit.
  assert.equal(await r.h.cmd("permit").then((l) => l.fields.v), "0");
  process.kill(r.pile.pid, "SIGCONT");
  resumed = true;
  const s = await r.pile.waitStatus((x) => x.session === null && x.contactor === "open", 20_000);
  assert.equal(pilotOf(s).state, "A");
  const [rec] = await r.pile.sessions(1);
  assert.equal(rec?.reason, "PLUG_REMOVED");
});

test("daemon killed (SIGKILL) while charging: the heartbeat deadline drops the permit", async (t) => {
  const r = await hil(t);
  await charge(t, r);
  const off = r.h.next((l) => l.kind === "permit" && l.fields.v === "0", 10_000);
  const killedAt = (await r.h.cmd("time")).t;
  await r.pile.kill("SIGKILL");
  const dropped = await off;
  const ms = (dropped.t - killedAt) / 1000;
  assert.ok(
    ms <= HB_LIMIT_MS + 50,
    `permit off ${ms} ms (simulated) after the kill, limit ${HB_LIMIT_MS} ms`,
  );
  assert.equal(r.playing(), "C", "the vehicle still asks: only the heartbeat took the permit");
});

test("MCU frozen while charging: watchdog reset, permit off through it, the daemon faults the session and recovers", async (t) => {
  const r = await hil(t);
  await charge(t, r);
  const reset = r.h.next((l) => l.kind === "reset");
  const off = r.h.next((l) => l.kind === "permit" && l.fields.v === "0");
  const frozen = await r.h.cmd("freeze");
  const dropped = await off;
  const rs = await reset;
  assert.ok(
    (dropped.t - frozen.t) / 1000 <= 100,
    `permit off ${(dropped.t - frozen.t) / 1000} ms after the freeze`,
  );
  assert.ok(Math.abs(dropped.t - rs.t) <= 1000, `permit off at the reset (${dropped.t} vs ${rs.t} µs)`);
  const f = await r.pile.waitStatus((s) => s.faults.includes("PILOT_MCU") && s.contactor === "open");
  assert.equal(f.state, "FAULTED");
  const p = await r.pile.waitStatus((s) => s.pilot?.lastReset === "WDT");
  assert.ok(pilotOf(p).resets >= 1);
  const [rec] = await r.pile.sessions(1);
  assert.equal(rec?.reason, "FAULT");
  assert.ok(rec?.faults.includes("PILOT_MCU"));
  // Back from its reset the MCU is heard again; unplugged, the pile is available again.
  await r.vehicle("A");
  await r.pile.waitStatus((s) => s.state === "AVAILABLE" && s.faults.length === 0, 20_000);
});

test("diode missing, state E, state F: no contactor, a clear fault, recovered at A", async (t) => {
  const r = await hil(t);
  await r.h.cmd("diode 0");
  await r.vehicle("B");
  await r.pile.waitStatus((s) => s.pilot?.state === "B");
  const c = await central(r.pile);
  t.after(c.close);
  const code = r.pile.issuer.issue({ deviceId: "HIL-CAR", pileId: r.pile.pileId, validForS: 600 });
  assert.ok(code.ok);
  const one = await unlockOver(c.central, code.value);
  assertOutcome(one.outcome, "accepted");
  one.stopStatus();
  await one.link.close();
  await r.vehicle("C");
  const f = await r.pile.waitStatus((s) => s.faults.includes("PILOT_FAULT") && s.session === null);
  assert.equal(f.contactor, "open");
  assert.equal(r.grants.length, 0, "no permit without the diode");
  await r.h.cmd("diode 1");
  await r.vehicle("A");
  await r.pile.waitStatus((s) => s.state === "AVAILABLE");
  for (const v of ["E", "F"]) {
    await r.vehicle(v);
    const e = await r.pile.waitStatus((s) => s.faults.includes("PILOT_FAULT"));
    assert.equal(e.state, "FAULTED");
    assert.equal(pilotOf(e).state, v);
    await r.vehicle("A");
    await r.pile.waitStatus((s) => s.state === "AVAILABLE" && s.faults.length === 0);
  }
  assert.equal(r.grants.length, 0);
});

test("garbage, split lines and bad CRCs both ways: dropped, counted, nothing moves", async (t) => {
  const r = await hil(t);
  await r.vehicle("B");
  const before = await r.pile.waitStatus(
    (s) => s.pilot?.state === "B" && "mcu.rxBad" in (s.pilot?.counters ?? {}),
  );
  // MCU → board: noise between the MCU's lines, a STATE with a wrong CRC, half a frame.
  const forged = encodeFrame(0x40, "STATE st=C permit=1 diode=ok pwm=1 duty=267 cur=160 why=-").trim();
  const badCrc = `${forged.slice(0, -4)}${forged.slice(-4) === "0000" ? "FFFF" : "0000"}`;
  for (const n of ["garbage ~~~", badCrc, forged.slice(0, 12)]) await r.h.cmd(`noise ${n}`);
  // board → MCU: the same, written to the pty beside the daemon.
  const fd = openSync(r.h.pty, "w");
  try {
    for (const n of ["\x00\xffgarbage\n", `${encodeFrame(0x41, "TEST 1").trim().slice(0, -4)}0000\n`, "$4"])
      writeSync(fd, n);
  } finally {
    closeSync(fd);
  }
  await sleep(1500);
  const after = await r.pile.status();
  const p = pilotOf(after);
  const b = pilotOf(before);
  assert.ok(
    counter(p, "board.rxBad") >= counter(b, "board.rxBad") + 2,
    `board counted: ${JSON.stringify(p.counters)}`,
  );
  assert.ok(
    counter(p, "mcu.rxBad") >= counter(b, "mcu.rxBad") + 1,
    `MCU counted: ${JSON.stringify(p.counters)}`,
  );
  assert.equal(p.state, "B", "the forged C was not acted on");
  assert.equal(p.permit, "off");
  assert.equal(after.state, "AVAILABLE");
  assert.deepEqual(after.faults, []);
  assert.equal((await r.h.cmd("permit")).fields.v, "0");
  assert.equal((await r.h.cmd("pwm")).fields.on, "0");
});

test("relay test through the MCU: a test permit in A with the PWM off, none with a vehicle at B", async (t) => {
  const r = await hil(t);
  r.relayTest.running = true;
  const granted = r.h.next((l) => l.kind === "permit" && l.fields.v === "1");
  const done = (await r.pile.control("relay-test")) as { detail?: string };
  const g = await granted;
  const back = await r.h.cmd("permit");
  r.relayTest.running = false;
  assert.ok(g.t > 0, "the MCU granted its test permit");
  assert.equal(back.fields.v, "0", "and took it back after the test");
  assert.match(String(done.detail ?? done), /closed and reopened/);
  await r.vehicle("B");
  await r.pile.waitStatus((s) => s.pilot?.state === "B");
  const before = r.grants.length;
  await assert.rejects(r.pile.control("relay-test"), /UNSAFE|VEHICLE/);
  assert.equal(r.grants.length, before, "no permit with a vehicle connected");
});

test("field report: the MCU silent when the daemon starts: the pile comes up faulted, not down, and recovers once the MCU answers", async (t) => {
  const r = await hil(t, { release: false });
  const f = await r.pile.waitStatus((s) => s.faults.includes("PILOT_MCU"));
  assert.equal(f.state, "FAULTED");
  assert.equal(f.contactor, "open");
  assert.equal(pilotOf(f).state, "lost");
  assert.equal(pilotOf(f).firmware, null);
  await r.h.cmd("go");
  const a = await r.pile.waitStatus(
    (s) => s.state === "AVAILABLE" && s.faults.length === 0 && s.pilot?.state === "A",
    20_000,
  );
  const p = pilotOf(a);
  assert.equal(p.firmware, "1.0.0");
  assert.equal(p.lastReset, "POR");
  assert.equal(p.resets, 0, "the MCU's first HELLO is no reset");
  const live = await r.pile.waitStatus((s) => s.pilot?.why.includes("heartbeat") === false);
  assert.deepEqual(pilotOf(live).why, ["state", "pwm", "diode"], "the daemon's heartbeats reach it");
  assert.equal(r.grants.length, 0);
});
