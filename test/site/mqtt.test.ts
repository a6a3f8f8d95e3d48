/**
 * MQTT tier against a real broker (Debian's mosquitto on loopback, user/password): the Home
 * Assistant discovery documents, retained state, a session's messages in order, commands only
 * from the configured topic (garbage and wrong topics refused and counted, nothing moves), the
 * last will when the process holding the connection is SIGKILLed, and everything retained back
 * after the broker restarts.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import mqtt, { type MqttClient } from "mqtt";
import { mqttSchema } from "../../src/site/config.js";
import { SiteCounters } from "../../src/site/counters.js";
import { clientOptions, MqttBridge, settlesWithin } from "../../src/site/mqtt.js";
import { BROKER_PASSWORD, BROKER_USER, Broker } from "./broker.js";
import { FakePort } from "./fake-port.js";

interface Msg {
  topic: string;
  text: string;
  retain: boolean;
}

async function listen(url: string, topics: string[]): Promise<{ client: MqttClient; msgs: Msg[] }> {
  const client = await mqtt.connectAsync(url, {
    username: BROKER_USER,
    password: BROKER_PASSWORD,
    reconnectPeriod: 0,
  });
  const msgs: Msg[] = [];
  client.on("message", (topic, payload, packet) =>
    msgs.push({ topic, text: payload.toString(), retain: packet.retain }),
  );
  if (topics.length > 0) await client.subscribeAsync(topics, { qos: 1 });
  return { client, msgs };
}

async function until(what: string, f: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function passwordFile(dir: string): string {
  const p = join(dir, "mqtt.pass");
  writeFileSync(p, `${BROKER_PASSWORD}\n`, { mode: 0o600 });
  return p;
}

async function startBridge(broker: Broker, port: FakePort, commands = true) {
  const counters = new SiteCounters();
  const cfg = mqttSchema.parse({
    enabled: true,
    url: broker.url,
    username: BROKER_USER,
    passwordFile: passwordFile(broker.dir),
    reconnectMs: 200,
    commands: { enabled: commands },
  });
  const bridge = new MqttBridge(port, cfg, counters);
  const r = await bridge.start();
  assert.ok(r.ok, JSON.stringify(r));
  await until("bridge connected", () => bridge.connected);
  await bridge.flushed();
  return { bridge, counters };
}

const retainedOf = (msgs: Msg[]) => new Map(msgs.filter((m) => m.retain).map((m) => [m.topic, m.text]));

test("discovery documents, retained state, a session in order, commands only from the topic", async (t) => {
  const broker = new Broker();
  await broker.start();
  const port = await FakePort.create();
  const { bridge, counters } = await startBridge(broker, port);
  t.after(async () => {
    await bridge.close();
    await broker.close();
  });
  const base = bridge.topicBase;
  assert.equal(base, "piled/PILE-7");
  const sub = await listen(broker.url, ["homeassistant/#", `${base}/#`]);
  t.after(() => sub.client.endAsync());
  await until("retained discovery and state", () => retainedOf(sub.msgs).has(`${base}/faults`));
  const retained = retainedOf(sub.msgs);
  assert.equal(retained.get(`${base}/availability`), "online");
  assert.equal(JSON.parse(retained.get(`${base}/state`) ?? "{}").state, "AVAILABLE");
  const energy = JSON.parse(retained.get("homeassistant/sensor/piled_PILE-7/energy/config") ?? "{}");
  assert.equal(energy.state_topic, `${base}/meter`);
  assert.equal(energy.device_class, "energy");
  assert.equal(energy.unique_id, "piled_PILE-7_energy");
  assert.deepEqual(energy.device.identifiers, ["piled_PILE-7"]);
  assert.equal(energy.availability_topic, `${base}/availability`);
  const stopButton = JSON.parse(retained.get("homeassistant/button/piled_PILE-7/stop/config") ?? "{}");
  assert.equal(stopButton.command_topic, `${base}/command`);
  assert.ok(retained.has("homeassistant/binary_sensor/piled_PILE-7/fault/config"));
  assert.ok(retained.has("homeassistant/switch/piled_PILE-7/available/config"));

  // A session's messages, in the order the pile made them.
  port.startSession();
  for (let i = 1; i <= 3; i++) port.progress(100 * i);
  await port.stop("test");
  await until("session ended", () =>
    sub.msgs.some((m) => m.topic === `${base}/session` && m.text.includes('"ended"')),
  );
  const phases = sub.msgs.filter((m) => m.topic === `${base}/session`).map((m) => JSON.parse(m.text));
  assert.deepEqual(
    phases.map((p) => `${p.phase}:${p.energyWh}`),
    ["started:0", "progress:100", "progress:300", "progress:600", "ended:600"],
  );
  assert.ok(phases.every((p) => p.id === "5e55100000000000000000000000000a"));
  assert.ok(
    !sub.msgs.some((m) => m.topic === `${base}/session` && m.retain),
    "session events are not retained",
  );

  // Commands: garbage and wrong topics are refused and counted; nothing moves.
  port.startSession();
  port.calls.length = 0;
  const cmd = await listen(broker.url, []);
  t.after(() => cmd.client.endAsync());
  await cmd.client.publishAsync(`${base}/command`, "\u0000\u00ffnot json", { qos: 1 });
  await cmd.client.publishAsync(`${base}/command`, '{"command":"format"}', { qos: 1 });
  await cmd.client.publishAsync(`${base}/command`, "x".repeat(5000), { qos: 1 });
  await cmd.client.publishAsync(`${base}/command/stop`, '{"command":"stop"}', { qos: 1 });
  await cmd.client.publishAsync(`${base}/cmd`, '{"command":"stop"}', { qos: 1 });
  await until(
    "refusals counted",
    () => counters.get("mqtt.badPayload") === 3 && counters.get("mqtt.wrongTopic") === 1,
  );
  assert.deepEqual(port.calls, []);
  assert.equal(port.state, "CHARGING");
  assert.ok(port.audits.filter((a) => a.actor === "mqtt" && a.outcome === "USAGE").length === 3);
  await cmd.client.publishAsync(`${base}/command`, '{"command":"stop"}', { qos: 1 });
  await until("stop ran", () => port.calls.length === 1);
  assert.deepEqual(port.calls, ["stop:mqtt"]);
  await until("command result", () =>
    sub.msgs.some((m) => m.topic === `${base}/command_result` && m.text.includes('"ok":true')),
  );
});

test("commands disabled: the bridge does not even subscribe; the password file is checked like a key", async (t) => {
  const broker = new Broker();
  await broker.start();
  const port = await FakePort.create();
  const { bridge, counters } = await startBridge(broker, port, false);
  t.after(async () => {
    await bridge.close();
    await broker.close();
  });
  const c = await listen(broker.url, []);
  t.after(() => c.client.endAsync());
  port.startSession();
  await c.client.publishAsync(`${bridge.topicBase}/command`, '{"command":"stop"}', { qos: 1 });
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(port.calls, []);
  assert.equal(counters.get("mqtt.wrongTopic"), 0);
  const loose = join(broker.dir, "loose.pass");
  writeFileSync(loose, "pw\n");
  chmodSync(loose, 0o644);
  const r = clientOptions(mqttSchema.parse({ username: "u", passwordFile: loose }), { topic: "x" });
  assert.ok(!r.ok && r.error.code === "PASSWORD_FILE" && /mode 0644/.test(r.error.message));
  const wrong = await mqtt
    .connectAsync(broker.url, { username: BROKER_USER, password: "wrong", reconnectPeriod: 0 })
    .then(
      (x) => x.endAsync().then(() => "connected"),
      (e: Error) => e.message,
    );
  assert.match(wrong, /Not authorized|Bad username/i, "the broker refuses a wrong password");
});

test("a retained command on the topic (left by anyone, delivered on every subscribe) is refused, counted; nothing moves", async (t) => {
  const broker = new Broker();
  await broker.start();
  const port = await FakePort.create();
  port.startSession();
  const early = await listen(broker.url, []);
  await early.client.publishAsync("piled/PILE-7/command", '{"command":"stop"}', { qos: 1, retain: true });
  await early.client.endAsync();
  const { bridge, counters } = await startBridge(broker, port);
  t.after(async () => {
    await bridge.close();
    await broker.close();
  });
  await until(
    "the retained command handled",
    () => counters.get("mqtt.retainedCommand") > 0 || port.calls.length > 0,
  );
  // A live message after it: what the broker had retained has been delivered by then.
  const fence = await listen(broker.url, []);
  await fence.client.publishAsync("piled/PILE-7/command", '{"command":"fence"}', { qos: 1 });
  await fence.client.endAsync();
  await until("the fence refused", () => counters.get("mqtt.badPayload") === 1);
  assert.deepEqual(port.calls, [], "a retained stop is not run");
  assert.equal(port.state, "CHARGING");
  assert.equal(counters.get("mqtt.retainedCommand"), 1, "delivered once: one subscription");
  assert.ok(port.audits.some((a) => a.actor === "mqtt" && a.outcome === "RETAINED"));
});

test("last will on SIGKILL; after a broker restart everything retained is back", async (t) => {
  const broker = new Broker();
  await broker.start();
  // In reverse order of opening, like the bridge before the broker: run the other way round,
  // each client would first wait out its bound for a broker that is gone.
  const closers: (() => Promise<unknown> | unknown)[] = [() => broker.close()];
  t.after(async () => {
    for (const f of closers.reverse()) await f();
  });
  const child = spawn(
    process.execPath,
    [join(import.meta.dirname, "mqtt-child.js"), broker.url, passwordFile(broker.dir)],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  closers.push(() => child.kill("SIGKILL"));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the child did not connect in 15 s")), 15_000);
    child.stdout.on("data", (d: Buffer) => {
      if (!d.toString().includes("connected")) return;
      clearTimeout(timer);
      resolve();
    });
    child.once("exit", (c) => {
      clearTimeout(timer);
      reject(new Error(`child exited ${c}`));
    });
  });
  const sub = await listen(broker.url, ["piled/CHILD-1/availability"]);
  await until("online", () => sub.msgs.some((m) => m.text === "online"));
  child.kill("SIGKILL");
  await until("last will", () => sub.msgs.at(-1)?.text === "offline");
  await sub.client.endAsync();
  const late = await listen(broker.url, ["piled/CHILD-1/availability"]);
  await until("retained will", () => late.msgs.length > 0);
  assert.deepEqual(late.msgs, [{ topic: "piled/CHILD-1/availability", text: "offline", retain: true }]);
  await late.client.endAsync();

  // Broker restart (no persistence): the bridge reconnects and publishes every retained topic again.
  const port = await FakePort.create();
  const { bridge, counters } = await startBridge(broker, port);
  closers.push(() => bridge.close());
  port.startSession();
  port.progress(250);
  await bridge.flushed();
  const before = await listen(broker.url, ["homeassistant/+/piled_PILE-7/#", `${bridge.topicBase}/#`]);
  await until("retained before", () => retainedOf(before.msgs).size >= 9);
  await new Promise((r) => setTimeout(r, 200));
  const was = retainedOf(before.msgs);
  await before.client.endAsync();
  await broker.stop();
  await broker.start();
  await until("reconnected", () => counters.get("mqtt.connects") >= 2 && bridge.connected);
  await new Promise((r) => setTimeout(r, 100));
  await bridge.flushed();
  const after = await listen(broker.url, ["homeassistant/+/piled_PILE-7/#", `${bridge.topicBase}/#`]);
  closers.push(() => after.client.endAsync(true));
  await until("retained after", () => retainedOf(after.msgs).size >= was.size);
  assert.equal(was.size, 10, "6 discovery documents, availability, state, meter, faults");
  assert.deepEqual(retainedOf(after.msgs), was);
  assert.equal(JSON.parse(was.get(`${bridge.topicBase}/state`) ?? "{}").state, "CHARGING");
});

/**
 * A bridge with a publish in flight (a session's) and its broker stalled (SIGSTOP: the socket
 * stays open and no PUBACK comes) or gone (killed with that publish still in flight: the client
 * is disconnected with something outstanding).
 */
async function publishInFlight(t: TestContext, how: "stalled" | "gone") {
  const broker = new Broker();
  await broker.start();
  const port = await FakePort.create();
  const { bridge, counters } = await startBridge(broker, port);
  t.after(async () => {
    await settlesWithin(bridge.close(), 5000);
    await broker.close();
  });
  broker.signal("SIGSTOP");
  port.startSession();
  await new Promise((r) => setTimeout(r, 100));
  if (how === "gone") {
    broker.signal("SIGKILL");
    await until("disconnected", () => !bridge.connected);
  }
  return { broker, port, bridge, counters };
}

for (const how of ["stalled", "gone"] as const) {
  test(`close with the broker ${how} and a publish in flight: bounded, the client ended, no reconnect`, async (t) => {
    const { broker, bridge, counters } = await publishInFlight(t, how);
    assert.equal(await settlesWithin(bridge.flushed(), 300), false, "a publish is in flight, unacknowledged");
    assert.ok(await settlesWithin(bridge.close(), 5000), "close() returned");
    assert.equal(bridge.connected, false);
    // The broker back on the same port: an ended client does not connect again.
    if (how === "stalled") broker.signal("SIGCONT");
    else await broker.start();
    await new Promise((r) => setTimeout(r, 800)); // four of the bridge's reconnect periods
    assert.equal(counters.get("mqtt.connects"), 1);
    assert.equal(bridge.connected, false);
  });
}

for (const how of ["stalled", "gone"] as const) {
  test(`broker ${how} with a publish in flight: the pile's events do not pile up behind it; after, the retained topics are the pile's as it is then`, async (t) => {
    const { broker, port, bridge, counters } = await publishInFlight(t, how);
    // Meter readings alone: what a skipped one leaves is in no later job's snapshot.
    for (let i = 0; i < 2000; i++) port.meterTick(1);
    assert.ok(bridge.pending <= 65, `${bridge.pending} jobs queued`);
    if (how === "stalled") {
      assert.ok(counters.get("mqtt.eventsSkipped") > 0);
      broker.signal("SIGCONT");
    } else {
      await broker.start();
    }
    await until("connected", () => bridge.connected);
    await until("the chain drained", () => bridge.pending === 0);
    const sub = await listen(broker.url, [`${bridge.topicBase}/#`]);
    t.after(() => sub.client.endAsync(true));
    await until("retained meter", () => retainedOf(sub.msgs).has(`${bridge.topicBase}/meter`));
    const retained = retainedOf(sub.msgs);
    assert.equal(
      JSON.parse(retained.get(`${bridge.topicBase}/meter`) ?? "{}").energyImportWh,
      port.energyImportWh,
    );
    assert.equal(JSON.parse(retained.get(`${bridge.topicBase}/state`) ?? "{}").state, "CHARGING");
  });
}
