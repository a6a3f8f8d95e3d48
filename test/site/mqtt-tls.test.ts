/**
 * MQTT over TLS against a real broker (Debian's mosquitto, a TLS listener on loopback that takes
 * certificates only: require_certificate, the client certificate's CN as the username): the
 * bridge checks the broker against its CA and authenticates with the pile's client certificate,
 * and its retained state reaches a subscriber. Without a client certificate, with one of another
 * CA, or against a broker its CA does not know, it never connects, and each failure is counted.
 * Certificates are made with openssl for the test.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import mqtt from "mqtt";
import { mqttSchema } from "../../src/site/config.js";
import { SiteCounters } from "../../src/site/counters.js";
import { MqttBridge } from "../../src/site/mqtt.js";
import { Broker } from "./broker.js";
import { FakePort } from "./fake-port.js";

const openssl = (dir: string, args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });

/** A CA and a certificate signed by it (EC P-256, a day); returns the files' paths. */
function pki(dir: string, name: string, leaves: { name: string; cn: string; san?: string }[]) {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl(
    dir,
    ["req", "-x509", ...ec, "-keyout", `${name}.key`, "-out", `${name}.pem`, "-days", "1"].concat([
      "-subj",
      `/CN=${name}`,
    ]),
  );
  for (const l of leaves) {
    openssl(dir, ["req", ...ec, "-keyout", `${l.name}.key`, "-out", `${l.name}.csr`, "-subj", `/CN=${l.cn}`]);
    const ext = join(dir, `${l.name}.ext`);
    writeFileSync(ext, l.san ? `subjectAltName=${l.san}\n` : "basicConstraints=CA:FALSE\n");
    openssl(dir, [
      "x509",
      "-req",
      "-in",
      `${l.name}.csr`,
      "-CA",
      `${name}.pem`,
      "-CAkey",
      `${name}.key`,
      "-CAcreateserial",
      "-out",
      `${l.name}.pem`,
      "-days",
      "1",
      "-extfile",
      ext,
    ]);
    chmodSync(join(dir, `${l.name}.key`), 0o600);
  }
}

async function until(what: string, f: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test("MQTT over TLS: the broker checked against the CA, the pile authenticated by its certificate; wrong ones never connect, counted", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "piled-mqtt-tls-"));
  pki(dir, "ca", [
    { name: "server", cn: "127.0.0.1", san: "IP:127.0.0.1" },
    { name: "pile", cn: "pile" },
    { name: "reader", cn: "reader" },
  ]);
  pki(dir, "other-ca", [
    { name: "stranger", cn: "pile" },
    { name: "other-server", cn: "127.0.0.1", san: "IP:127.0.0.1" },
  ]);
  const f = (n: string) => join(dir, n);
  const broker = new Broker({ ca: f("ca.pem"), cert: f("server.pem"), key: f("server.key") });
  await broker.start();
  const port = await FakePort.create();
  const bridges: MqttBridge[] = [];
  t.after(async () => {
    for (const b of bridges) await b.close();
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const bridge = async (over: Record<string, unknown>) => {
    const counters = new SiteCounters();
    const cfg = mqttSchema.parse({ enabled: true, url: broker.url, reconnectMs: 200, ...over });
    const said: string[] = [];
    const b = new MqttBridge(port, cfg, counters, { onProblem: (m) => said.push(m) });
    bridges.push(b);
    const r = await b.start();
    assert.ok(r.ok, JSON.stringify(r));
    return { b, counters, said };
  };

  const good = await bridge({ caFile: f("ca.pem"), certFile: f("pile.pem"), keyFile: f("pile.key") });
  await until("the bridge connected over TLS", () => good.b.connected);
  await good.b.flushed();
  const sub = await mqtt.connectAsync(broker.url, {
    ca: readFileSync(f("ca.pem")),
    cert: readFileSync(f("reader.pem")),
    key: readFileSync(f("reader.key")),
    reconnectPeriod: 0,
  });
  t.after(() => sub.endAsync());
  const got = new Map<string, string>();
  sub.on("message", (topic, p) => got.set(topic, p.toString()));
  await sub.subscribeAsync("piled/PILE-7/#", { qos: 1 });
  await until("retained state", () => got.has("piled/PILE-7/state"));
  assert.equal(got.get("piled/PILE-7/availability"), "online");
  assert.equal(JSON.parse(got.get("piled/PILE-7/state") ?? "{}").state, "AVAILABLE");

  const refused = [
    { caFile: f("ca.pem") }, // no client certificate
    { caFile: f("ca.pem"), certFile: f("stranger.pem"), keyFile: f("stranger.key") }, // another CA's
    { caFile: f("other-ca.pem"), certFile: f("pile.pem"), keyFile: f("pile.key") }, // broker unknown
  ];
  for (const over of refused) {
    const { b, counters, said } = await bridge(over);
    // Several attempts: the operator is told once, not at every retry.
    await until(
      `refusals counted for ${JSON.stringify(Object.keys(over))}`,
      () => counters.get("mqtt.errors") >= 3,
    );
    assert.equal(b.connected, false);
    assert.equal(counters.get("mqtt.connects"), 0);
    assert.equal(said.length, 1, said.join("; "));
  }
  assert.deepEqual(good.said, []);
});
