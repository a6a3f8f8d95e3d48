/**
 * One schema per setting: the daemon's config carries the pile core's fields with the core's own
 * ranges and defaults, so the two cannot disagree again.
 */
import assert from "node:assert/strict";
import test from "node:test";
import { DEFAULT_SKEW_MS as CLI_SKEW } from "../../src/cli/code.js";
import { configSchema, deadlinesSchema } from "../../src/daemon/config.js";
import { defaultPileCoreConfig, meterFresh, parsePileCoreConfig } from "../../src/pile/index.js";
import { DEFAULT_SKEW_MS } from "../../src/protocol/index.js";

const minimal = {
  pileId: "P-1",
  gpio: {
    contactor: { chip: "c", line: 1 },
    lock: { chip: "c", line: 2 },
    contactorFeedback: { chip: "c", line: 3 },
    lockFeedback: { chip: "c", line: 4 },
  },
  meter: { model: "sdm630" },
};

test("the daemon's defaults are the core's defaults", () => {
  const c = configSchema.parse(minimal);
  const d = defaultPileCoreConfig;
  assert.deepEqual(c.deadlines, {
    lockConfirmMs: d.lockConfirmMs,
    contactorCloseMs: d.contactorCloseMs,
    contactorOpenMs: d.contactorOpenMs,
    lockReleaseMs: d.lockReleaseMs,
    meterStaleMs: d.meterStaleMs,
    exchangeTimeoutMs: d.exchangeTimeoutMs,
  });
  assert.equal(c.deadlines.contactorCloseMs, 500, "README: contactorCloseMs defaults to 500");
  assert.equal(c.deadlines.contactorOpenMs, 500, "README: contactorOpenMs defaults to 500");
  assert.equal(c.clockSkewMs, d.skewMs);
  assert.equal(c.statusIntervalMs, d.statusIntervalMs);
  assert.equal(c.lockSafeState, d.lockSafeState);
  assert.equal(d.skewMs, DEFAULT_SKEW_MS);
  assert.equal(CLI_SKEW, DEFAULT_SKEW_MS);
});

test("the daemon's ranges are the core's ranges, at both ends", () => {
  const cases: [keyof typeof deadlinesSchema.shape, number, number][] = [
    ["lockConfirmMs", 50, 30_000],
    ["contactorCloseMs", 20, 10_000],
    ["contactorOpenMs", 20, 10_000],
    ["lockReleaseMs", 50, 30_000],
    ["meterStaleMs", 500, 300_000],
    ["exchangeTimeoutMs", 1000, 60_000],
  ];
  for (const [field, min, max] of cases) {
    for (const [v, ok] of [
      [min - 1, false],
      [min, true],
      [max, true],
      [max + 1, false],
    ] as const) {
      assert.equal(deadlinesSchema.safeParse({ [field]: v }).success, ok, `daemon ${field}=${v}`);
      assert.equal(parsePileCoreConfig({ [field]: v }).ok, ok, `core ${field}=${v}`);
    }
  }
  for (const [v, ok] of [
    [-1, false],
    [0, true],
    [3_600_000, true],
    [3_600_001, false],
  ] as const) {
    assert.equal(configSchema.safeParse({ ...minimal, clockSkewMs: v }).success, ok, `daemon skew ${v}`);
    assert.equal(parsePileCoreConfig({ skewMs: v }).ok, ok, `core skew ${v}`);
  }
});

test("the pileId rule is the same in both: 1..64 UTF-8 bytes", () => {
  for (const [id, ok] of [
    ["", false],
    ["x", true],
    ["x".repeat(64), true],
    ["x".repeat(65), false],
    ["桩".repeat(21), true],
    ["桩".repeat(22), false],
  ] as const) {
    assert.equal(configSchema.safeParse({ ...minimal, pileId: id }).success, ok, `daemon ${id.length}`);
    assert.equal(parsePileCoreConfig({ pileId: id }).ok, ok, `core ${id.length}`);
  }
});

test("meter freshness: a reading exactly meterStaleMs old is stale", () => {
  const cfg = { meterStaleMs: 5000 };
  assert.equal(meterFresh(4999, cfg), true);
  assert.equal(meterFresh(5000, cfg), false);
});
