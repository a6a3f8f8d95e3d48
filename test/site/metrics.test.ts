/**
 * Metrics scraped over HTTP and parsed by a real, independent client: Python's
 * prometheus_client.parser (Debian python3-prometheus-client). Sessions, energy, unlock outcomes
 * by reason, bad input by surface, link counters and the event-loop lag are all there with the
 * values the pile's events and the refusals made.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { post, startRig } from "./rig.js";

interface Family {
  type: string;
  /** NaN and infinities come as strings. */
  samples: { name: string; labels: Record<string, string>; value: number | string }[];
}

/** Debian's interpreter: the one python3-prometheus-client installs into (PATH may hold another). */
const PYTHON = "/usr/bin/python3";
const SCRIPT = join(process.cwd(), "test", "site", "py", "parse_metrics.py");

function parse(text: string): Record<string, Family> {
  const r = spawnSync(PYTHON, [SCRIPT], { input: text, encoding: "utf8" });
  assert.equal(
    r.status,
    0,
    `prometheus_client could not parse the exposition (python3-prometheus-client installed?): ${r.stderr}`,
  );
  return JSON.parse(r.stdout) as Record<string, Family>;
}

const value = (f: Record<string, Family>, fam: string, sample: string, labels: Record<string, string> = {}) =>
  f[fam]?.samples.find(
    (s) => s.name === sample && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  )?.value;

test("the parser refuses a broken exposition (the check can fail)", () => {
  const r = spawnSync(PYTHON, [SCRIPT], { input: 'piled_x{a="1" 3\n', encoding: "utf8" });
  assert.equal(r.status, 3, r.stderr);
});

test("metrics endpoint: sessions, energy, unlock reasons, bad input by surface, links, loop lag", async () => {
  const rig = await startRig();
  try {
    rig.port.refuseUnlock("BAD_PROOF");
    rig.port.refuseUnlock("BAD_PROOF");
    rig.port.refuseUnlock("EXPIRED");
    rig.port.startSession();
    rig.port.progress(1500);
    await rig.port.stop("test");
    rig.port.startSession("5e55100000000000000000000000000b");
    rig.port.progress(250);
    rig.port.counters["ble.badFragment"] = 4;
    await post(`${rig.url}/api/login`, { secret: "wrong" });
    await post(`${rig.url}/api/command`, { command: "stop" });
    const r = await fetch(`${rig.url}/metrics`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const f = parse(await r.text());
    assert.equal(f.piled_sessions?.type, "counter");
    assert.equal(value(f, "piled_sessions", "piled_sessions_total", { phase: "started" }), 2);
    assert.equal(value(f, "piled_sessions", "piled_sessions_total", { phase: "ended" }), 1);
    assert.equal(value(f, "piled_session_energy_wh", "piled_session_energy_wh_total"), 1500);
    assert.equal(value(f, "piled_unlock_outcomes", "piled_unlock_outcomes_total", { reason: "ok" }), 2);
    assert.equal(
      value(f, "piled_unlock_outcomes", "piled_unlock_outcomes_total", { reason: "BAD_PROOF" }),
      2,
    );
    assert.equal(value(f, "piled_unlock_outcomes", "piled_unlock_outcomes_total", { reason: "EXPIRED" }), 1);
    const bad = (surface: string, kind: string) =>
      value(f, "piled_bad_input", "piled_bad_input_total", { surface, kind });
    assert.equal(bad("ble", "badFragment"), 4);
    assert.equal(bad("http", "badLogin"), 1);
    assert.equal(bad("http", "noLogin"), 1);
    assert.equal(value(f, "piled_link_counter", "piled_link_counter", { name: "ble.connections" }), 2);
    assert.equal(value(f, "piled_link_counter", "piled_link_counter", { name: "meter.reads" }), 42);
    assert.equal(value(f, "piled_state", "piled_state", { state: "CHARGING" }), 1);
    assert.equal(value(f, "piled_state", "piled_state", { state: "AVAILABLE" }), 0);
    assert.equal(value(f, "piled_meter_energy_import_wh", "piled_meter_energy_import_wh"), 11_750);
    const lag = value(f, "nodejs_eventloop_lag_seconds", "nodejs_eventloop_lag_seconds");
    assert.ok(typeof lag === "number" && lag >= 0, "event-loop lag exported");
    assert.ok(Number(value(f, "process_resident_memory_bytes", "process_resident_memory_bytes") ?? 0) > 0);
    assert.equal(value(f, "piled_store_health", "piled_store_health"), 1);
    assert.equal(value(f, "piled_store_free_bytes", "piled_store_free_bytes"), 52_428_800);
    assert.equal(value(f, "piled_store_pending_records", "piled_store_pending_records"), 0);
  } finally {
    await rig.close();
  }
});

test("store health follows the store's own fault report, not only its error count", async () => {
  const rig = await startRig();
  try {
    rig.port.store = { freeBytes: 900_000, fault: "DISK_FULL", pending: 3 };
    const f = parse(await (await fetch(`${rig.url}/metrics`)).text());
    assert.equal(value(f, "piled_store_health", "piled_store_health"), 0, "a store fault is ill health");
    assert.equal(value(f, "piled_store_free_bytes", "piled_store_free_bytes"), 900_000);
    assert.equal(value(f, "piled_store_pending_records", "piled_store_pending_records"), 3);
    rig.port.store = { freeBytes: null, fault: null, pending: 0 };
    const g = parse(await (await fetch(`${rig.url}/metrics`)).text());
    assert.equal(value(g, "piled_store_health", "piled_store_health"), 1);
    assert.equal(value(g, "piled_store_free_bytes", "piled_store_free_bytes"), "nan", "not measured");
  } finally {
    await rig.close();
  }
});
