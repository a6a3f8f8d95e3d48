/**
 * The meter poller (src/daemon/runtime/meter-poller.ts) on a manual clock: a quiet pile (idle,
 * contactor open and reading open) is polled at the idle interval, which never lets its reading
 * go stale through one failed poll; a pile that stops being quiet is polled at pollIntervalMs
 * again at once; an outage is polled at pollIntervalMs so the pile is back as soon as the meter
 * answers.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { type Config, validateConfig } from "../../../src/daemon/config.js";
import { createLogger } from "../../../src/daemon/log.js";
import type { LoopContext } from "../../../src/daemon/runtime/context.js";
import { idlePollMs, MeterPoller } from "../../../src/daemon/runtime/meter-poller.js";
import { simPileConfig } from "../../../src/daemon/sim-config.js";
import { meterFresh } from "../../../src/pile/config.js";
import { ManualClock } from "../../../src/sim/plant.js";
import { FakeMeter } from "../../helpers/fake-meter.js";

function config(over: (c: Config) => void = () => {}): Config {
  const parsed = validateConfig(simPileConfig({ pileId: "MP-1", dir: "/tmp/piled-meter-poller" }));
  assert.ok(parsed.ok);
  over(parsed.value);
  return parsed.value;
}

/** A poller on a manual clock; `quiet` is what the core would say; reads land in `at`. */
function rig(cfg: Config) {
  const clock = new ManualClock();
  const meter = new FakeMeter(clock);
  const at: number[] = [];
  const read = meter.read.bind(meter);
  meter.read = () => {
    at.push(clock.monotonic());
    return read();
  };
  const fed: string[] = [];
  const state = { quiet: true, stopped: false };
  const ctx = {
    parts: { config: cfg, clock, meter },
    log: createLogger({ level: "silent" }),
    count: () => {},
    feed: async (i: { type: string }) => {
      fed.push(i.type);
      return [];
    },
    stopped: () => state.stopped,
  } as unknown as LoopContext;
  const poller = new MeterPoller(ctx, () => state.quiet);
  /** Moves the clock in small steps, letting the reads' promises settle between them. */
  const run = async (ms: number) => {
    for (let t = 0; t < ms; t += 10) {
      clock.advance(10);
      for (let i = 0; i < 5; i++) await Promise.resolve();
    }
  };
  return { clock, meter, at, fed, state, poller, run };
}

const gaps = (at: number[]) => at.slice(1).map((t, i) => t - at[i]!);

test("the idle interval: idlePollIntervalMs, at least pollIntervalMs, at most a third of meterStaleMs", () => {
  assert.equal(idlePollMs(config()), 1500, "the default, under 5000 / 3");
  const c = config((c) => {
    c.deadlines.meterStaleMs = 3000;
  });
  assert.equal(idlePollMs(c), 1000, "capped by the stale limit");
  const d = config((c) => {
    c.meter.pollIntervalMs = 2000;
    c.meter.idlePollIntervalMs = 1000;
  });
  assert.equal(idlePollMs(d), 2000, "never faster than pollIntervalMs");
});

test("a quiet pile is polled at the idle interval, a busy one at pollIntervalMs", async () => {
  const r = rig(config()); // sim config: pollIntervalMs 500, idle 1500
  r.poller.poll();
  await r.run(6000);
  assert.deepEqual(gaps(r.at), [1500, 1500, 1500, 1500]);
  r.state.quiet = false;
  r.at.length = 0;
  await r.run(3000); // the poll already armed (without a hurry) comes first, then the fast interval
  assert.deepEqual(r.at, [7500, 8000, 8500, 9000]);
  r.poller.stop();
});

test("field report: a code accepted on an idle pile gets a reading at pollIntervalMs, not after the idle wait", async () => {
  const r = rig(config());
  r.poller.poll();
  await r.run(200);
  assert.deepEqual(r.at, [0]);
  r.state.quiet = false; // the core left idle (a code accepted)
  r.poller.hurry();
  await r.run(400);
  assert.deepEqual(r.at, [0, 500], "500 ms after the last poll's start, not 1500");
  // Leaving idle later than pollIntervalMs after the last poll: a poll at once.
  const s = rig(config());
  s.poller.poll();
  await s.run(800);
  s.state.quiet = false;
  s.poller.hurry();
  await s.run(10);
  assert.deepEqual(s.at, [0, 800]);
  r.poller.stop();
  s.poller.stop();
});

test("an outage is polled at pollIntervalMs even when quiet; a quiet pile's reading stays fresh through one failed poll", async () => {
  const cfg = config();
  const r = rig(cfg);
  r.poller.poll();
  await r.run(1400);
  r.meter.silent = true; // the poll at 1500 fails: an outage
  await r.run(1500);
  assert.deepEqual(r.at, [0, 1500, 2000, 2500], "failed polls come at pollIntervalMs");
  r.meter.silent = false;
  r.at.length = 0;
  await r.run(3200);
  assert.deepEqual(r.at, [3000, 4500, 6000], "the outage over: the idle interval again");
  // One failed poll at the idle interval: the reading is at most two intervals old.
  const worst = 2 * idlePollMs(cfg);
  assert.ok(meterFresh(worst, cfg.deadlines), `${worst} ms is fresh under ${cfg.deadlines.meterStaleMs}`);
  r.poller.stop();
});
