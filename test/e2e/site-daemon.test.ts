/**
 * The site front ends in the BUILT daemon: piled on the simulated plant with the dashboard, its
 * metrics and the MQTT bridge on (Debian's mosquitto on loopback, user/password), a carrier on
 * the emulated radio. A session unlocked over BLE shows live in headless chromium and on the
 * broker in order; a technician logs in on the page, stops it and takes the pile out of service
 * and back; a weld latches, shows with what to do, and is cleared from the page; the metrics scrape (parsed by Python's prometheus_client) counts the session, its
 * energy and the unlock outcomes (one accepted, one replayed); the audit trail holds the
 * dashboard's commands; SIGKILL of the daemon leaves the broker's last will "offline".
 * Screenshots go to test-artifacts/site-daemon/.
 *
 * Needs what the e2e tier needs (bluez-test-tools, socat, gcc, unshare) plus chromium, mosquitto
 * and python3-prometheus-client; fails naming what is missing.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import mqtt from "mqtt";
import { chromium } from "playwright-core";
import type { AuditView } from "../../src/control/index.js";
import { hashSecret } from "../../src/daemon/console/secret.js";
import { startPile } from "../helpers/pile-proc.js";
import { BROKER_PASSWORD, BROKER_USER, Broker, freePort, MOSQUITTO } from "../site/broker.js";
import { assertOutcome, central, sleep, unlockOver } from "./air.js";

const CHROMIUM = "/usr/bin/chromium";
const PYTHON = "/usr/bin/python3";
const ARTIFACTS = join(process.cwd(), "test-artifacts", "site-daemon");
const SECRET = "site tech secret 7";

interface Msg {
  topic: string;
  json: Record<string, unknown> | string;
  retain: boolean;
}

type Families = Record<
  string,
  { samples: { name: string; labels: Record<string, string>; value: number }[] }
>;

function parseMetrics(text: string): Families {
  const script = join(process.cwd(), "test", "site", "py", "parse_metrics.py");
  const r = spawnSync(PYTHON, [script], { input: text, encoding: "utf8" });
  assert.equal(r.status, 0, `prometheus_client could not parse the exposition: ${r.stderr}`);
  return JSON.parse(r.stdout) as Families;
}

const sample = (f: Families, fam: string, name: string, labels: Record<string, string> = {}) =>
  f[fam]?.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    ?.value;

test("built daemon: BLE session live in the browser and on the broker, technician stop, metrics, last will", async (t) => {
  for (const [path, pkg] of [
    [CHROMIUM, "chromium"],
    [MOSQUITTO, "mosquitto"],
    [PYTHON, "python3-prometheus-client"],
  ])
    assert.ok(existsSync(path!), `${path} is missing: install Debian's ${pkg} (scripts/system-deps.txt)`);
  mkdirSync(ARTIFACTS, { recursive: true });
  const cleanups: Array<() => Promise<unknown>> = [];
  t.after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  const broker = new Broker();
  await broker.start();
  cleanups.push(() => broker.close());
  const passwordFile = join(broker.dir, "pile-pass");
  writeFileSync(passwordFile, `${BROKER_PASSWORD}\n`, { mode: 0o600 });
  const httpPort = await freePort();
  const pileId = "SITE-E2E-1";
  const base = `piled/${pileId}`;

  // The broker's view from before the daemon starts: every message, in order.
  const sub = await mqtt.connectAsync(broker.url, { username: BROKER_USER, password: BROKER_PASSWORD });
  cleanups.push(() => sub.endAsync());
  const msgs: Msg[] = [];
  sub.on("message", (topic, payload, packet) => {
    const text = payload.toString();
    let json: Msg["json"] = text;
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // availability is plain text
    }
    msgs.push({ topic, json, retain: packet.retain });
  });
  await sub.subscribeAsync([`${base}/#`, `homeassistant/+/piled_${pileId}/+/config`], { qos: 1 });

  const pile = await startPile({
    pileId,
    config: {
      console: { enabled: false, secretHash: await hashSecret(SECRET) },
      site: {
        http: { enabled: true, host: "127.0.0.1", port: httpPort },
        mqtt: {
          enabled: true,
          url: broker.url,
          username: BROKER_USER,
          passwordFile,
          commands: { enabled: true },
        },
      },
    },
  });
  cleanups.push(() => pile.stop());
  const url = `http://127.0.0.1:${httpPort}`;
  const waitMsg = async (pred: (m: Msg) => boolean, what: string, ms = 15_000) => {
    const end = Date.now() + ms;
    while (!msgs.some(pred)) {
      if (Date.now() > end) throw new Error(`no MQTT ${what}; got ${JSON.stringify(msgs.slice(-10))}`);
      await sleep(50);
    }
    return msgs.find(pred)!;
  };
  await waitMsg((m) => m.topic === `${base}/availability` && m.json === "online", "online");
  // Live deliveries carry no retain flag (MQTT 3.1.1); the retained copies are checked at the end.
  await waitMsg((m) => m.topic === `homeassistant/switch/piled_${pileId}/available/config`, "discovery");

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: process.getuid?.() === 0 ? ["--no-sandbox"] : [],
  });
  cleanups.push(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1000, height: 800 } });
  const shot = async (name: string) => {
    const path = join(ARTIFACTS, `${name}.png`);
    await page.screenshot({ path, fullPage: true });
    assert.ok(statSync(path).size > 1000, `screenshot ${name} written`);
  };
  const textIs = (sel: string, text: string) =>
    page.locator(sel, { hasText: new RegExp(`^${text}$`) }).waitFor({ timeout: 20_000 });
  await page.goto(url);
  await page.waitForSelector("#live.on");
  await textIs("#state", "AVAILABLE");
  assert.equal(await page.textContent("#pile"), pileId);
  await shot("1-available");

  // A carrier unlocks over BLE: the page follows live, without a reload.
  const c = await central(pile);
  cleanups.push(c.close);
  const code = pile.issuer.issue({ deviceId: "VIN-SITE-1", pileId, validForS: 600 });
  assert.ok(code.ok);
  const one = await unlockOver(c.central, code.value);
  assertOutcome(one.outcome, "accepted");
  await textIs("#state", "CHARGING");
  await page
    .locator("#session", { hasText: /energy[1-9][\d.]* Wh/ })
    .waitFor({ timeout: 20_000 })
    .catch(async (e) => {
      await shot("failed-no-energy");
      console.log(
        JSON.stringify(await pile.status()),
        JSON.stringify(msgs.filter((m) => m.topic.endsWith("session"))),
      );
      throw e;
    });
  assert.match((await page.textContent("#session")) ?? "", /VIN-SITE-1/);
  await shot("2-charging");
  one.stopStatus();
  await one.link.close();

  // The technician logs in on the page and stops the session.
  assert.equal(await page.isVisible("#actions"), false);
  await page.fill("#secret", "not the secret");
  await page.click("#login button");
  await textIs("#msg", "login incorrect");
  await page.fill("#secret", SECRET);
  await page.click("#login button");
  await page.waitForSelector("#actions", { state: "visible" });
  await page.click('#actions [data-c="stop"]');
  await textIs("#state", "AVAILABLE");
  await page.locator("#sessions", { hasText: "TECHNICIAN" }).waitFor();
  await shot("3-stopped");

  // Availability from the page, through the command table: out of service and back.
  await page.click('#actions [data-c="unavailable"]');
  await textIs("#state", "UNAVAILABLE");
  assert.deepEqual((await pile.status()).unavailableBecause, ["technician"]);
  await shot("4-unavailable");
  await page.click('#actions [data-c="available"]');
  await textIs("#state", "AVAILABLE");

  // And over MQTT, on the command topic only: garbage refused and nothing moves, then off and on.
  const result = async (n: number) => {
    await waitMsg(() => msgs.filter((m) => m.topic === `${base}/command_result`).length >= n, `result ${n}`);
    return msgs.filter((m) => m.topic === `${base}/command_result`)[n - 1]!.json as Record<string, unknown>;
  };
  await sub.publishAsync(`${base}/command`, "{not json", { qos: 1 });
  assert.equal((await result(1))["code"], "USAGE");
  assert.equal((await pile.status()).state, "AVAILABLE");
  await sub.publishAsync(`${base}/command`, JSON.stringify({ command: "availability", available: false }), {
    qos: 1,
  });
  assert.equal((await result(2))["ok"], true);
  await textIs("#state", "UNAVAILABLE");
  await sub.publishAsync(`${base}/command`, JSON.stringify({ command: "availability", available: true }), {
    qos: 1,
  });
  assert.equal((await result(3))["ok"], true);
  await textIs("#state", "AVAILABLE");

  // The same code again: refused as replayed, an unlock outcome of its own.
  const again = await unlockOver(c.central, code.value);
  assertOutcome(again.outcome, "rejected", "REPLAYED");
  await again.link.close();

  // The broker saw the session in order: started, progress with energy, ended by the technician.
  const [rec] = await pile.sessions(1);
  assert.ok(rec && rec.reason === "TECHNICIAN" && rec.energyWh > 0, JSON.stringify(rec));
  await waitMsg(
    (m) => m.topic === `${base}/session` && (m.json as { phase?: string }).phase === "ended",
    "end",
  );
  const session = msgs
    .filter((m) => m.topic === `${base}/session`)
    .map((m) => m.json as Record<string, unknown>);
  assert.ok(
    session.every((s) => s["id"] === rec.id),
    "every session message is this session's",
  );
  const phases = session.map((s) => s["phase"]);
  assert.equal(phases[0], "started");
  assert.equal(phases.at(-1), "ended");
  assert.ok(phases.slice(1, -1).every((p) => p === "progress") && phases.length >= 3, phases.join());
  const energies = session.map((s) => Number(s["energyWh"]));
  for (let i = 1; i < energies.length; i++) assert.ok(energies[i]! >= energies[i - 1]!, energies.join());
  assert.equal(session.at(-1)!["reason"], "TECHNICIAN");
  assert.equal(session.at(-1)!["energyWh"], rec.energyWh);
  const states = msgs
    .filter((m) => m.topic === `${base}/state`)
    .map((m) => (m.json as { state: string }).state);
  const charging = states.indexOf("CHARGING");
  assert.ok(charging >= 0 && states.indexOf("UNAVAILABLE", charging) > charging, states.join());
  assert.equal(states.at(-1), "AVAILABLE");

  // Metrics: the session, its energy, the two unlock outcomes, the refused login.
  const res = await fetch(`${url}/metrics`);
  assert.equal(res.status, 200);
  const m = parseMetrics(await res.text());
  assert.equal(sample(m, "piled_sessions", "piled_sessions_total", { phase: "started" }), 1);
  assert.equal(sample(m, "piled_sessions", "piled_sessions_total", { phase: "ended" }), 1);
  assert.equal(sample(m, "piled_session_energy_wh", "piled_session_energy_wh_total"), rec.energyWh);
  assert.equal(sample(m, "piled_unlock_outcomes", "piled_unlock_outcomes_total", { reason: "ok" }), 1);
  assert.equal(sample(m, "piled_unlock_outcomes", "piled_unlock_outcomes_total", { reason: "REPLAYED" }), 1);
  assert.equal(sample(m, "piled_state", "piled_state", { state: "AVAILABLE" }), 1);
  assert.ok(
    (sample(m, "piled_bad_input", "piled_bad_input_total", { surface: "http", kind: "badLogin" }) ?? 0) >= 1,
  );
  assert.ok(m["nodejs_eventloop_lag_seconds"], "event-loop lag exported");

  // The audit trail holds the dashboard's commands as it holds the console's.
  const log = (await pile.control("log", ["50"])) as AuditView[];
  const fromDashboard = log.filter((e) => (e.detail ?? "").startsWith("dashboard"));
  for (const action of ["stop", "available"])
    assert.ok(
      fromDashboard.some((e) => e.action === action && e.outcome === "ok"),
      `${action} audited: ${JSON.stringify(log)}`,
    );
  const fromMqtt = log.filter((e) => (e.detail ?? "").startsWith("mqtt"));
  assert.deepEqual(fromMqtt.map((e) => `${e.action} ${e.outcome}`).sort(), [
    "available ok",
    "available ok",
    "command USAGE",
  ]);

  // A second session, and the contactor's contacts weld under it: the technician's stop from the
  // page finds them closed, WELD latches and shows with what to do, the broker has it; the
  // technician frees the contacts, then clears the fault from the page.
  const code2 = pile.issuer.issue({ deviceId: "VIN-SITE-2", pileId, validForS: 600 });
  assert.ok(code2.ok);
  const two = await unlockOver(c.central, code2.value);
  assertOutcome(two.outcome, "accepted");
  await textIs("#state", "CHARGING");
  two.stopStatus();
  await two.link.close();
  await pile.control("sim", ["weld"]);
  await page.click('#actions [data-c="stop"]');
  await textIs("#state", "FAULTED");
  await page.locator("#faults", { hasText: /WELD \(latched\).*replace the contactor/ }).waitFor();
  await waitMsg(
    (m) => m.topic === `${base}/faults` && JSON.stringify(m.json).includes('"code":"WELD"'),
    "WELD on the broker",
  );
  await shot("5-weld");
  await pile.control("sim", ["clear"]);
  await pile.waitStatus((x) => x.contactor === "open");
  await page.click('#actions [data-c="clear-fault"]');
  await textIs("#state", "AVAILABLE");
  assert.equal((await page.textContent("#faults"))?.trim(), "none");
  assert.deepEqual((await pile.status()).faults, []);
  await shot("6-cleared");
  const cleared = ((await pile.control("log", ["10"])) as AuditView[]).filter(
    (e) => e.action === "clear-fault" && (e.detail ?? "").startsWith("dashboard"),
  );
  assert.deepEqual(
    cleared.map((e) => e.outcome),
    ["ok"],
    "the clear from the page is audited",
  );

  // SIGKILL: the daemon says nothing more; the broker publishes its last will.
  const exit = await pile.kill("SIGKILL");
  assert.equal(exit.signal, "SIGKILL");
  await waitMsg(
    (m) => m.topic === `${base}/availability` && m.json === "offline" && !m.retain,
    "last will",
    30_000,
  );
  const late = await mqtt.connectAsync(broker.url, { username: BROKER_USER, password: BROKER_PASSWORD });
  cleanups.push(() => late.endAsync());
  const retained = new Promise<string>((r) => late.on("message", (_t, p) => r(p.toString())));
  await late.subscribeAsync(`${base}/availability`, { qos: 1 });
  assert.equal(await retained, "offline", "the last will is retained");
});

test("built daemon: site front ends that cannot start are logged and left off; the pile serves, `available` works", async (t) => {
  const busy = createServer();
  await new Promise<void>((r) => busy.listen(0, "127.0.0.1", () => r()));
  const busyPort = (busy.address() as { port: number }).port;
  const dir = mkdtempSync(join(tmpdir(), "piled-site-bad-"));
  const passwordFile = join(dir, "pass");
  writeFileSync(passwordFile, "secret\n", { mode: 0o644 }); // others may read it: refused
  chmodSync(passwordFile, 0o644);
  t.after(async () => {
    await new Promise((r) => busy.close(r));
    rmSync(dir, { recursive: true, force: true });
  });
  const pile = await startPile({
    config: {
      site: {
        http: { enabled: true, host: "127.0.0.1", port: busyPort },
        mqtt: { enabled: true, url: "mqtt://127.0.0.1:1", username: "pile", passwordFile },
      },
    },
  });
  t.after(() => pile.stop());
  const s = await pile.status();
  assert.equal(s.state, "AVAILABLE");
  assert.equal(s.contactor, "open");
  // The control socket answers before the site front ends have tried: wait for their lines.
  const end = Date.now() + 15_000;
  while (!/MQTT bridge not started/.test(pile.output()) && Date.now() < end) await sleep(100);
  const out = pile.output();
  assert.match(
    out,
    /"err":"listen EADDRINUSE[^"]*","host":"127.0.0.1","port":\d+,"msg":"dashboard not available"/,
  );
  assert.match(out, /"code":"PASSWORD_FILE".*"msg":"MQTT bridge not started"/);
  assert.ok(!out.includes("secret\n"), "the password goes nowhere");

  // The availability command over the control socket (pilectl's path), audited.
  assert.deepEqual(await pile.control("available", ["off"]), { detail: "pile out of service" });
  const off = await pile.waitStatus((x) => x.state === "UNAVAILABLE");
  assert.deepEqual(off.unavailableBecause, ["technician"]);
  await assert.rejects(pile.control("available", ["maybe"]), /USAGE/);
  assert.deepEqual(await pile.control("available", ["on"]), { detail: "pile in service" });
  await pile.waitStatus((x) => x.state === "AVAILABLE");
  const log = (await pile.control("log", ["10"])) as AuditView[];
  assert.deepEqual(
    log.filter((e) => e.action === "available").map((e) => e.outcome),
    ["ok", "USAGE", "ok"],
  );
  const exit = await pile.kill("SIGTERM");
  assert.equal(exit.code, 0, pile.output().split("\n").slice(-10).join("\n"));
});

test("built daemon: SIGTERM closes the front ends first (MQTT says offline itself) and exits 0", async (t) => {
  assert.ok(existsSync(MOSQUITTO), `${MOSQUITTO} is missing: install Debian's mosquitto`);
  const broker = new Broker();
  await broker.start();
  t.after(() => broker.close());
  const passwordFile = join(broker.dir, "pile-pass");
  writeFileSync(passwordFile, `${BROKER_PASSWORD}\n`, { mode: 0o600 });
  const httpPort = await freePort();
  const pile = await startPile({
    config: {
      site: {
        http: { enabled: true, host: "127.0.0.1", port: httpPort },
        mqtt: { enabled: true, url: broker.url, username: BROKER_USER, passwordFile },
      },
    },
  });
  t.after(() => pile.stop());
  const sub = await mqtt.connectAsync(broker.url, { username: BROKER_USER, password: BROKER_PASSWORD });
  t.after(() => sub.endAsync());
  const seen: string[] = [];
  sub.on("message", (_t, p) => seen.push(p.toString()));
  await sub.subscribeAsync(`piled/${pile.pileId}/availability`, { qos: 1 });
  const end = Date.now() + 15_000;
  while (seen.at(-1) !== "online" && Date.now() < end) await sleep(50);
  assert.equal(seen.at(-1), "online");
  assert.equal((await fetch(`http://127.0.0.1:${httpPort}/api/snapshot`)).status, 200);

  const exit = await pile.kill("SIGTERM");
  assert.equal(exit.code, 0, pile.output().split("\n").slice(-10).join("\n"));
  // Said by the bridge before the runtime stopped, so already here when the process is gone (a
  // last will would only follow the exit).
  assert.equal(seen.at(-1), "offline");
  await assert.rejects(fetch(`http://127.0.0.1:${httpPort}/api/snapshot`), "the dashboard is closed");
  const out = pile.output();
  assert.ok(!/dashboard not available|MQTT bridge not started/.test(out), "both had started");
});
