/**
 * Browser tier: Debian's chromium, headless, driven by playwright-core. The page shows a session
 * that starts over BLE (driven through the fake port's event stream) live, without a reload; a
 * technician logs in, stops it, a weld latches and is cleared. Screenshots go to
 * test-artifacts/site/.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { chromium } from "playwright-core";
import { TECH_SECRET } from "./fake-port.js";
import { startRig } from "./rig.js";

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = join(process.cwd(), "test-artifacts", "site");

test("the dashboard in headless chromium: live session, technician stop, weld cleared", async (t) => {
  assert.ok(
    existsSync(CHROMIUM),
    `${CHROMIUM} is missing: install Debian's chromium (scripts/system-deps.txt)`,
  );
  mkdirSync(ARTIFACTS, { recursive: true });
  const rig = await startRig();
  const args = process.getuid?.() === 0 ? ["--no-sandbox"] : [];
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args });
  t.after(async () => {
    await browser.close();
    await rig.close();
  });
  const page = await browser.newPage({ viewport: { width: 1000, height: 800 } });
  const shot = async (name: string) => {
    const path = join(ARTIFACTS, `${name}.png`);
    await page.screenshot({ path, fullPage: true });
    assert.ok(statSync(path).size > 1000, `screenshot ${name} written`);
  };
  // Locators run in playwright's own world: the page's CSP (no eval) does not stop them.
  const reEscape = (t: string) => t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const textIs = (sel: string, text: string) =>
    page.locator(sel, { hasText: new RegExp(`^${reEscape(text)}$`) }).waitFor();
  const textHas = (sel: string, text: string) => page.locator(sel, { hasText: text }).waitFor();
  await page.goto(rig.url);
  await page.waitForSelector("#live.on");
  assert.equal(await page.textContent("#state"), "AVAILABLE");
  await shot("1-available");

  // A session starts over BLE: the page follows without a reload.
  rig.port.startSession();
  await textIs("#state", "CHARGING");
  rig.port.progress(1234);
  await textHas("#session", "1234 Wh");
  // The pile's figures are floats: shown rounded, never with a float's seventeen digits.
  rig.port.progress(0.25);
  await textHas("#session", "1234.3 Wh");
  assert.match((await page.textContent("#meter")) ?? "", /current31\.3 A/);
  const session = (await page.textContent("#session")) ?? "";
  assert.match(session, /7200 W/);
  assert.match(session, /vehicle VIN-TEST-1/);
  assert.match(session, /16 A/);
  await shot("2-charging");

  // Actions are refused before login (the buttons are hidden; the API says LOGIN).
  assert.equal(await page.isVisible("#actions"), false);
  await page.fill("#secret", "not the secret");
  await page.click("#login button");
  await textIs("#msg", "login incorrect");
  await page.fill("#secret", TECH_SECRET);
  await page.click("#login button");
  await page.waitForSelector("#actions", { state: "visible" });
  const cookies = await page.context().cookies();
  const sid = cookies.find((c) => c.name === "piled_sid");
  assert.ok(sid?.httpOnly, "session cookie is HttpOnly");
  assert.equal(sid?.sameSite, "Strict");
  assert.equal(
    await page.evaluate(() => (globalThis as unknown as { document: { cookie: string } }).document.cookie),
    "",
    "the page's script cannot read it",
  );

  await page.click('#actions [data-c="stop"]');
  await textIs("#state", "AVAILABLE");
  assert.match((await page.textContent("#msg")) ?? "", /done: session stopped/);
  assert.match((await page.textContent("#sessions")) ?? "", /TECHNICIAN/);
  await shot("3-stopped");

  // The next session welds; the fault shows with what to do, and the technician clears it.
  rig.port.startSession("5e55100000000000000000000000000b");
  await textIs("#state", "CHARGING");
  rig.port.weld();
  await textIs("#state", "FAULTED");
  assert.match((await page.textContent("#faults")) ?? "", /WELD \(latched\).*replace the contactor/);
  await shot("4-weld");
  await page.click('#actions [data-c="clear-fault"]');
  await textIs("#state", "AVAILABLE");
  assert.equal((await page.textContent("#faults"))?.trim(), "none");
  await shot("5-cleared");
  assert.deepEqual(rig.port.calls, ["stop:dashboard", "clear-fault:all:dashboard"]);
  assert.equal(rig.counters.get("http.badCsrf"), 0);
});
