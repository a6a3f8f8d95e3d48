import assert from "node:assert/strict";
import { test } from "node:test";
import { defaultPileCoreConfig, infoBytes, infoMessage, parsePileCoreConfig } from "../../src/pile/index.js";
import { decodeInfo, PileState } from "../../src/protocol/index.js";
import { Rig, T0 } from "./rig.js";

test("INFO from a snapshot: state, pileId and at most 16 key ids, lowest first, decodable", () => {
  const rig = new Rig();
  rig.boot();
  const keys = Array.from({ length: 20 }, (_, i) => 100 - i);
  const info = infoMessage(rig.core.snapshot(), [...keys, 81, -1, 2 ** 32]);
  assert.equal(info.state, PileState.AVAILABLE);
  assert.deepEqual(
    info.keyIds,
    keys
      .slice()
      .sort((a, b) => a - b)
      .slice(0, 16),
  );
  const decoded = decodeInfo(infoBytes(rig.core.snapshot(), [7, 3, 7]));
  assert.ok(decoded.ok);
  assert.deepEqual(decoded.value, { type: "INFO", version: 1, state: 0, pileId: "PILE-7", keyIds: [3, 7] });
  rig.feed({ type: "emergencyStop", active: true });
  assert.equal(infoMessage(rig.core.snapshot(), []).state, PileState.FAULTED);
});

test("config: defaults match the protocol; every problem is reported at once", () => {
  assert.equal(defaultPileCoreConfig.skewMs, 120_000);
  assert.equal(defaultPileCoreConfig.exchangeTimeoutMs, 10_000);
  assert.equal(defaultPileCoreConfig.lockSafeState, "released");
  const ok = parsePileCoreConfig({ pileId: "桩-01", meterStaleMs: 3000 });
  assert.ok(ok.ok && ok.value.meterStaleMs === 3000 && ok.value.lockConfirmMs === 2000);
  const bad = parsePileCoreConfig({
    pileId: "x".repeat(65),
    skewMs: -1,
    lockSafeState: "open",
    contactorOpenMs: 1.5,
  });
  assert.ok(!bad.ok);
  assert.equal(bad.errors.length, 4);
  assert.ok(bad.errors.some((e) => e.startsWith("pileId:")));
});

test("the snapshot is JSON-safe", () => {
  const rig = new Rig();
  rig.boot({}, 123n);
  rig.startCharging();
  const round = JSON.parse(JSON.stringify(rig.core.snapshot()));
  assert.equal(round.state, "CHARGING");
  assert.equal(round.session.sessionId.length, 32);
  assert.equal(round.timeFloorMs, String(T0), "raised to the accepted code's issuedAt");
});

test("a meter reading exactly meterStaleMs old makes an idle pile UNAVAILABLE (meter stale)", () => {
  const rig = new Rig();
  rig.boot();
  rig.mono += rig.cfg.meterStaleMs - 1;
  rig.feed({ type: "tick" });
  assert.equal(rig.state(), "AVAILABLE");
  rig.mono += 1;
  rig.feed({ type: "tick" });
  assert.equal(rig.state(), "UNAVAILABLE");
  assert.deepEqual(rig.core.snapshot().unavailableBecause, ["meter stale"]);
});
