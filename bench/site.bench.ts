/**
 * The site front ends: the dashboard's page weight (raw and gzip), its first paint in headless
 * chromium, and the delay from a state change to the live stream (SSE), to the page's DOM in
 * chromium and to an MQTT subscriber on a local mosquitto, and the built daemon's RSS with dashboard + metrics + MQTT on
 * against off. A figure whose tool is missing is reported as skipped with the reason.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { get } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import mqtt from "mqtt";
import { requestControl } from "../src/control/index.js";
import { simPileConfig } from "../src/daemon/sim-config.js";
import { mqttSchema } from "../src/site/config.js";
import { SiteCounters } from "../src/site/counters.js";
import { PAGE_WEIGHT } from "../src/site/http.js";
import { MqttBridge } from "../src/site/mqtt.js";
import { PAGE_CSS, PAGE_HTML, PAGE_JS } from "../src/site/page.js";
import { PILED } from "../test/helpers/pile-proc.js";
import { BROKER_PASSWORD, BROKER_USER, Broker, freePort, MOSQUITTO } from "../test/site/broker.js";
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
  const page = await browser.newPage();
  await page.goto(rig.url);
  await page.waitForSelector("#live.on");
  const dom = await stateToDom(page, rig.port);
  await browser.close();
  await rig.close();
  return {
    firstContentfulPaintMedianMs: Number(median(paints).toFixed(1)),
    loads: paints.length,
    stateToDomMedianMs: Number(median(dom).toFixed(3)),
    rounds: dom.length,
  };
}

type Page = Awaited<
  ReturnType<Awaited<ReturnType<typeof import("playwright-core").chromium.launch>>["newPage"]>
>;

/**
 * From a state change on the port to the page's #state showing it: the page's own clock
 * (performance.timeOrigin + now, a MutationObserver on #state) against this process's, both the
 * machine's wall clock.
 */
async function stateToDom(page: Page, port: FakePort): Promise<number[]> {
  interface W {
    document: { getElementById(i: string): unknown };
    MutationObserver: new (cb: () => void) => { observe(n: unknown, o: object): void };
    performance: { timeOrigin: number; now(): number };
    __changed: number;
  }
  await page.evaluate(() => {
    const w = globalThis as unknown as W;
    w.__changed = 0;
    new w.MutationObserver(() => {
      w.__changed = w.performance.timeOrigin + w.performance.now();
    }).observe(w.document.getElementById("state"), { childList: true, characterData: true, subtree: true });
  });
  const ms: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const want = STATES[(i + 1) % 2]!;
    const t0 = performance.timeOrigin + performance.now();
    port.setState(want);
    await page.locator("#state", { hasText: new RegExp(`^${want}$`) }).waitFor();
    ms.push((await page.evaluate(() => (globalThis as unknown as W).__changed)) - t0);
  }
  return ms;
}

/** VmRSS of a process, bytes (Linux). */
function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

/**
 * The BUILT daemon on the simulated plant (BLE off both ways), once with the `site` section off
 * and once with the dashboard, metrics and MQTT bridge on (the page and /metrics loaded once,
 * the bridge connected to mosquitto); its RSS after it has served for a few seconds.
 */
async function daemonRss(mode: "on" | "off", broker: Broker, passwordFile: string): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "piled-bench-site-"));
  mkdirSync(join(dir, "keys"), { mode: 0o700 });
  const httpPort = await freePort();
  const site = {
    http: { enabled: true, host: "127.0.0.1", port: httpPort },
    mqtt: { enabled: true, url: broker.url, username: BROKER_USER, passwordFile },
  };
  const config = { ...simPileConfig({ pileId: "BENCH-SITE", dir }), ...(mode === "on" ? { site } : {}) };
  writeFileSync(join(dir, "piled.json"), JSON.stringify(config));
  const child = spawn(process.execPath, [PILED, "--config", join(dir, "piled.json")], { stdio: "ignore" });
  try {
    const socket = join(dir, "control.sock");
    for (let i = 0; ; i++) {
      const r = await requestControl(socket, "status", [], 1000);
      if (r.ok && r.value.ok) break;
      if (i > 300 || child.exitCode !== null) throw new Error(`piled (${mode}) did not come up`);
      await new Promise((r) => setTimeout(r, 100));
    }
    if (mode === "on") {
      const load = (path: string) =>
        new Promise<void>((resolve, reject) =>
          get(`http://127.0.0.1:${httpPort}${path}`, (res) => res.resume().on("end", resolve)).on(
            "error",
            reject,
          ),
        );
      // the control socket answers before the site front ends are up: wait for the page
      for (let i = 0; ; i++) {
        const up = await load("/").then(
          () => true,
          () => false,
        );
        if (up) break;
        if (i > 100) throw new Error("the dashboard did not come up");
        await new Promise((r) => setTimeout(r, 100));
      }
      await load("/metrics");
      await load("/api/snapshot");
    }
    await new Promise((r) => setTimeout(r, 3000));
    return rssOf(child.pid!);
  } finally {
    const gone = new Promise((r) => child.once("exit", r));
    if (child.exitCode === null) child.kill("SIGTERM");
    await gone;
    rmSync(dir, { recursive: true, force: true });
  }
}

async function rss(): Promise<Record<string, unknown>> {
  if (!existsSync(MOSQUITTO)) return { skipped: `${MOSQUITTO} missing (Debian mosquitto)` };
  if (!existsSync(PILED)) return { skipped: `${PILED} missing (npm run build)` };
  const broker = new Broker();
  await broker.start();
  const pw = join(broker.dir, "pass");
  writeFileSync(pw, BROKER_PASSWORD, { mode: 0o600 });
  const off: number[] = [];
  const on: number[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      off.push(await daemonRss("off", broker, pw));
      on.push(await daemonRss("on", broker, pw));
    }
  } finally {
    await broker.close();
  }
  const mib = (b: number) => Number((b / 1048576).toFixed(1));
  return {
    daemonRssOffMiB: mib(median(off)),
    daemonRssOnMiB: mib(median(on)),
    extraMiB: mib(median(on) - median(off)),
    runs: off.length,
  };
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
