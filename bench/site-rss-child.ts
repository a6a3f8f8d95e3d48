/**
 * Child of the site bench: loads the pile-side modules and, with "on", starts the dashboard
 * (with metrics) and the MQTT bridge over a fake port; prints its RSS in bytes after a second
 * of serving. argv: on|off, broker URL, password file.
 */
import { get } from "node:http";
import { mqttSchema } from "../src/site/config.js";
import { SiteCounters } from "../src/site/counters.js";
import { MqttBridge } from "../src/site/mqtt.js";
import { startRig } from "../test/site/rig.js";

const [mode, url, passwordFile] = process.argv.slice(2);
if (mode === "on") {
  const rig = await startRig();
  const bridge = new MqttBridge(
    rig.port,
    mqttSchema.parse({ enabled: true, url, username: "pile", passwordFile }),
    new SiteCounters(),
  );
  await bridge.start();
  // node:http as the client: fetch would load undici, a cost of the client, not of the pile.
  const load = (path: string) =>
    new Promise<void>((resolve) => get(`${rig.url}${path}`, (res) => res.resume().on("end", resolve)));
  await load("/metrics");
  await load("/");
  rig.port.startSession();
}
await new Promise((r) => setTimeout(r, 1000));
process.stdout.write(`${process.memoryUsage().rss}\n`);
process.exit(0);
