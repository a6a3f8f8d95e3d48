/**
 * A child process holding the pile's MQTT connection (the bridge over a fake port), for the
 * last-will test: it prints "connected" once online and then waits to be killed.
 * argv: broker URL, password file.
 */
import { mqttSchema } from "../../src/site/config.js";
import { SiteCounters } from "../../src/site/counters.js";
import { MqttBridge } from "../../src/site/mqtt.js";
import { FakePort } from "./fake-port.js";

const [url, passwordFile] = process.argv.slice(2);
const port = await FakePort.create("CHILD-1");
const bridge = new MqttBridge(
  port,
  mqttSchema.parse({ enabled: true, url, username: "pile", passwordFile }),
  new SiteCounters(),
);
const r = await bridge.start();
if (!r.ok) {
  process.stderr.write(`${r.error.message}\n`);
  process.exit(2);
}
const t = setInterval(() => {
  if (bridge.connected) {
    clearInterval(t);
    setTimeout(() => process.stdout.write("connected\n"), 200);
  }
}, 20);
setInterval(() => undefined, 60_000);
