/**
 * The site front ends: the dashboard's page weight (raw and gzip), its first paint in headless
 * chromium, and the delay from a state change to the browser's live stream (SSE) and to an MQTT
 * subscriber on a local mosquitto. A figure whose tool is missing is reported as skipped with
 * the reason.
 */
import { existsSync } from "node:fs";
import { get } from "node:http";
import { gzipSync } from "node:zlib";
import mqtt from "mqtt";
import { mqttSchema } from "../src/site/config.js";
import { SiteCounters } from "../src/site/counters.js";
import { PAGE_WEIGHT } from "../src/site/http.js";
import { MqttBridge } from "../src/site/mqtt.js";
import { PAGE_CSS, PAGE_HTML, PAGE_JS } from "../src/site/page.js";
import { BROKER_PASSWORD, BROKER_USER, Broker, MOSQUITTO } from "../test/site/broker.js";
import { FakePort } from "../test/site/fake-port.js";
import { startRig } from "../test/site/rig.js";
import { median } from "./util.js";

export const name = "site";

const ROUNDS = 50;
const STATES = ["AVAILABLE", "UNAVAILABLE"];

async function sseDelay(): Promise<Record<string, unknown>> {
  const rig = await startRig();
  const frames: ((s: string) => void)[] = [];
  const req = get(`${rig.url}/events`, (res) => {
    let buf = "";
    res.on("data", (d: Buffer) => {
      buf += d.toString();
      let i = buf.indexOf("\n\n");
      while (i >= 0) {
        const frame = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const data = frame.split("\n").find((l) => l.startsWith("data: "));
        if (data) frames.shift()?.(JSON.parse(data.slice(6)).status.state as string);
        i = buf.indexOf("\n\n");
      }
    });
  });
  await new Promise<void>((r) => frames.push(() => r()));
  const ms: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const want = STATES[i % 2]!;
    const t0 = performance.now();
    const got = new Promise<string>((r) => frames.push(r));
    rig.port.setState(want);
    if ((await got) !== want) throw new Error("stream out of order");
    ms.push(performance.now() - t0);
  }
  req.destroy();
  await rig.close();
  return { stateToSseMedianMs: Number(median(ms).toFixed(3)), rounds: ROUNDS };
}

async function mqttDelay(): Promise<Record<string, unknown>> {
  if (!existsSync(MOSQUITTO)) return { skipped: `${MOSQUITTO} missing (Debian mosquitto)` };
  const broker = new Broker();
  await broker.start();
  const port = await FakePort.create();
  const { writeFileSync } = await import("node:fs");
  const pw = `${broker.dir}/pass`;
  writeFileSync(pw, BROKER_PASSWORD, { mode: 0o600 });
  const bridge = new MqttBridge(
    port,
    mqttSchema.parse({ enabled: true, url: broker.url, username: BROKER_USER, passwordFile: pw }),
    new SiteCounters(),
  );
  await bridge.start();
  while (!bridge.connected) await new Promise((r) => setTimeout(r, 20));
  await bridge.flushed();
  const sub = await mqtt.connectAsync(broker.url, { username: BROKER_USER, password: BROKER_PASSWORD });
  const waiting: ((s: string) => void)[] = [];
  sub.on("message", (_t, p, packet) => {
    if (!packet.retain) waiting.shift()?.(JSON.parse(p.toString()).state as string);
  });
  await sub.subscribeAsync(`${bridge.topicBase}/state`, { qos: 1 });
  await new Promise((r) => setTimeout(r, 100));
  const ms: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const want = STATES[(i + 1) % 2]!;
    const t0 = performance.now();
    const got = new Promise<string>((r) => waiting.push(r));
    port.setState(want);
    if ((await got) !== want) throw new Error("broker out of order");
    ms.push(performance.now() - t0);
  }
  await sub.endAsync();
  await bridge.close();
  await broker.close();
  return { stateToBrokerMedianMs: Number(median(ms).toFixed(3)), rounds: ROUNDS };
}

async function firstPaint(): Promise<Record<string, unknown>> {
  const exe = "/usr/bin/chromium";
  if (!existsSync(exe)) return { skipped: `${exe} missing (Debian chromium)` };
  const { chromium } = await import("playwright-core");
  const rig = await startRig();
  const browser = await chromium.launch({
    executablePath: exe,
    args: process.getuid?.() === 0 ? ["--no-sandbox"] : [],
  });
  const paints: number[] = [];
  for (let i = 0; i < 5; i++) {
    const page = await browser.newPage();
    await page.goto(rig.url);
    await page.waitForSelector("#live.on");
    const fcp = await page.evaluate(
      () =>
        (
          globalThis as unknown as { performance: { getEntriesByName(n: string): { startTime: number }[] } }
        ).performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? -1,
    );
    paints.push(fcp);
    await page.close();
  }
  await browser.close();
  await rig.close();
  return { firstContentfulPaintMedianMs: Number(median(paints).toFixed(1)), loads: paints.length };
}

/** RSS of a child with the site front ends on against off (same modules loaded both ways). */
async function rss(): Promise<Record<string, unknown>> {
  if (!existsSync(MOSQUITTO)) return { skipped: `${MOSQUITTO} missing (Debian mosquitto)` };
  const { execFileSync } = await import("node:child_process");
  const { writeFileSync } = await import("node:fs");
  const broker = new Broker();
  await broker.start();
  const pw = `${broker.dir}/pass`;
  writeFileSync(pw, BROKER_PASSWORD, { mode: 0o600 });
  const child = new URL("./site-rss-child.js", import.meta.url).pathname;
  const one = (mode: string) =>
    Number(execFileSync(process.execPath, [child, mode, broker.url, pw], { encoding: "utf8" }).trim());
  const off: number[] = [];
  const on: number[] = [];
  for (let i = 0; i < 3; i++) {
    off.push(one("off"));
    on.push(one("on"));
  }
  await broker.close();
  const mib = (b: number) => Number((b / 1048576).toFixed(1));
  return { rssOffMiB: mib(median(off)), rssOnMiB: mib(median(on)), extraMiB: mib(median(on) - median(off)) };
}

export async function run(): Promise<Record<string, unknown>> {
  const gz = [PAGE_HTML, PAGE_CSS, PAGE_JS].reduce((n, s) => n + gzipSync(s).length, 0);
  return {
    pageWeightBytes: PAGE_WEIGHT,
    pageWeightGzipBytes: gz,
    sse: await sseDelay(),
    mqtt: await mqttDelay(),
    browser: await firstPaint(),
    rss: await rss(),
  };
}
