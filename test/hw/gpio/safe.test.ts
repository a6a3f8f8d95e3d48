import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { afterEach, beforeEach, test } from "node:test";
import {
  confirmOpen,
  forceSafeOutputs,
  lockDecision,
  type SafeOutputsSpec,
} from "../../../src/hw/gpio/safe.js";
import { startExportHelper } from "./fixtures/export-helper.js";
import { type FakeTree, makeFakeTree } from "./fixtures/fake-tree.js";

// bcm2711 numbered from 512 as on Raspberry Pi kernels from 6.6
const CONTACTOR = 529; // line 17, active-high
const LOCK = 539; // line 27, active-low
const FEEDBACK = 534; // line 22, active-high

const spec: SafeOutputsSpec = {
  contactor: { chip: "pinctrl-bcm2711", line: 17 },
  lock: { chip: "pinctrl-bcm2711", line: 27, activeLow: true },
  lockSafe: "released",
  contactorFeedback: { chip: "pinctrl-bcm2711", line: 22 },
};

let tree: FakeTree;
beforeEach(() => {
  tree = makeFakeTree([{ label: "pinctrl-bcm2711", base: 512, ngpio: 58 }]);
});
afterEach(() => tree.remove());

function file(n: number, name: string): string {
  return readFileSync(`${tree.root}/gpio${n}/${name}`, "utf8").trim();
}

/** The state a crashed daemon leaves while charging: contactor and lock driven, feedback as given. */
function leftCharging(feedbackClosed: boolean): void {
  tree.exportLine(CONTACTOR, { direction: "out\n", value: "1\n" });
  tree.exportLine(LOCK, { direction: "out\n", value: "1\n", active_low: "1\n" });
  tree.exportLine(FEEDBACK, { value: feedbackClosed ? "1\n" : "0\n" });
}

test("a crashed charging pile: contactor opened, feedback open, lock to its rest position", () => {
  leftCharging(false);
  const r = forceSafeOutputs(spec, { sysfsRoot: tree.root });
  assert.equal(r.ok, true);
  assert.equal(r.weld, false);
  assert.deepEqual(
    { n: r.contactor.number, active: r.contactor.active, err: r.contactor.error },
    { n: CONTACTOR, active: false, err: undefined },
  );
  assert.equal(file(CONTACTOR, "value"), "0");
  assert.equal(file(CONTACTOR, "direction"), "low");
  assert.equal(file(CONTACTOR, "active_low"), "0");
  assert.equal(r.lock.position, "released");
  assert.equal(r.lock.reason, "configured");
  // active-low lock released: logical 0, the pin raw high
  assert.equal(file(LOCK, "value"), "0");
  assert.equal(file(LOCK, "direction"), "high");
  assert.equal(file(LOCK, "active_low"), "1");
});

test("a welded contactor keeps the lock engaged and the pass reports not ok", () => {
  leftCharging(true);
  const r = forceSafeOutputs(spec, { sysfsRoot: tree.root });
  assert.equal(file(CONTACTOR, "value"), "0", "the contactor coil is released all the same");
  assert.equal(r.weld, true);
  assert.equal(r.contactorFeedback?.active, true);
  assert.equal(r.lock.position, "engaged");
  assert.equal(r.lock.reason, "weld");
  assert.equal(r.ok, false);
  // active-low lock engaged: logical 1, the pin raw low
  assert.equal(file(LOCK, "value"), "1");
  assert.equal(file(LOCK, "direction"), "low");
});

test("a lock whose rest position is engaged is driven engaged", () => {
  leftCharging(false);
  const r = forceSafeOutputs({ ...spec, lockSafe: "engaged" }, { sysfsRoot: tree.root });
  assert.equal(r.ok, true);
  assert.equal(r.lock.position, "engaged");
  assert.equal(file(LOCK, "value"), "1");
});

test("without feedback configured the lock goes to its rest position and weld is unknown", () => {
  leftCharging(true);
  const { contactorFeedback: _, ...noFeedback } = spec;
  const r = forceSafeOutputs(noFeedback, { sysfsRoot: tree.root });
  assert.equal(r.weld, undefined);
  assert.equal(r.contactorFeedback, undefined);
  assert.equal(r.lock.position, "released");
  assert.equal(r.ok, true);
});

test("an unreadable feedback keeps the lock engaged", () => {
  leftCharging(false);
  writeFileSync(`${tree.root}/gpio${FEEDBACK}/value`, "garbage\n");
  const r = forceSafeOutputs(spec, { sysfsRoot: tree.root });
  assert.equal(r.contactorFeedback?.error?.code, "IO");
  assert.equal(r.weld, undefined);
  assert.equal(r.lock.reason, "feedback-unreadable");
  assert.equal(r.lock.position, "engaged");
  assert.equal(r.ok, false);
});

test("a contactor that cannot be found keeps the lock engaged", () => {
  leftCharging(false);
  const r = forceSafeOutputs(
    { ...spec, contactor: { chip: "pinctrl-bcm2835", line: 17 } },
    { sysfsRoot: tree.root },
  );
  assert.equal(r.contactor.error?.code, "NO_CHIP");
  assert.equal(r.lock.reason, "contactor-failed");
  assert.equal(r.lock.position, "engaged");
  assert.equal(file(LOCK, "value"), "1");
  assert.equal(r.ok, false);
});

test("a lock offset past the chip is LINE_RANGE; the contactor is opened regardless", () => {
  leftCharging(false);
  const r = forceSafeOutputs(
    { ...spec, lock: { chip: "pinctrl-bcm2711", line: 58 } },
    { sysfsRoot: tree.root },
  );
  assert.equal(r.lock.error?.code, "LINE_RANGE");
  assert.equal(file(CONTACTOR, "value"), "0");
  assert.equal(r.ok, false);
});

test("lines nobody exported are exported, configured and driven", async () => {
  const helper = await startExportHelper(tree.root);
  try {
    const r = forceSafeOutputs(spec, { sysfsRoot: tree.root });
    assert.equal(r.contactor.exported, true);
    assert.equal(r.contactorFeedback?.exported, true);
    assert.equal(r.lock.exported, true);
    assert.equal(file(CONTACTOR, "direction"), "low");
    assert.equal(file(FEEDBACK, "direction"), "in");
    assert.equal(file(LOCK, "direction"), "high");
    assert.equal(file(LOCK, "active_low"), "1");
    assert.equal(r.ok, true);
  } finally {
    await helper.stop();
  }
});

test("an export nobody answers is EXPORT, and the lock stays engaged", () => {
  const r = forceSafeOutputs(spec, { sysfsRoot: tree.root, exportTimeoutMs: 50 });
  assert.equal(r.contactor.error?.code, "EXPORT");
  assert.equal(
    readFileSync(`${tree.root}/export`, "utf8"),
    String(LOCK),
    "the lock export was still attempted",
  );
  assert.equal(r.lock.position, "engaged");
  assert.equal(r.ok, false);
});

test("field report: --safe-outputs reports a weld on one failed read: sampling goes on to the end of the window", () => {
  // The aux contact reads closed 10 ms into the window, then its reads fail to the end.
  let now = 0;
  const script = [true];
  const seen: number[] = [];
  const r = confirmOpen(
    () => {
      seen.push(now);
      return script.shift();
    },
    { untilMs: 500, now: () => now, pause: (ms) => (now += ms) },
  );
  assert.equal(r.closed, undefined, "the last sample failed: unknown, not welded");
  assert.equal(seen.at(-1), 500, "sampled to the end of the window");
  assert.deepEqual([r.taken, r.failed], [51, 50]);
  assert.deepEqual(lockDecision({ contactorOpened: true, feedback: true, weld: r.closed }, "released"), {
    position: "engaged",
    reason: "feedback-unreadable",
  });
});

test("a failed read inside the window, then the contactor reads open: no weld, the lock goes to rest", () => {
  let now = 0;
  const script: (boolean | undefined)[] = [true, undefined, true, false];
  const r = confirmOpen(() => script.shift(), { untilMs: 500, now: () => now, pause: (ms) => (now += ms) });
  assert.deepEqual(r, { closed: false, taken: 4, failed: 1 });
  // and a contact that reads closed to the end is a weld
  now = 0;
  const w = confirmOpen(() => true, { untilMs: 100, now: () => now, pause: (ms) => (now += ms) });
  assert.equal(w.closed, true);
});

test("an unreadable feedback through the whole window is reported unreadable, with its samples", () => {
  leftCharging(false);
  writeFileSync(`${tree.root}/gpio${FEEDBACK}/value`, "garbage\n");
  const r = forceSafeOutputs(spec, { sysfsRoot: tree.root, confirmMs: 40 });
  assert.equal(r.weld, undefined);
  assert.equal(r.lock.reason, "feedback-unreadable");
  assert.ok(
    r.samples && r.samples.taken >= 2 && r.samples.failed === r.samples.taken,
    JSON.stringify(r.samples),
  );
  assert.equal(file(LOCK, "value"), "1");
});

test("field report: a latched weld is undone by the stop step: WELD latched keeps the lock engaged though the aux contact reads open", () => {
  leftCharging(false);
  const order: string[] = [];
  const r = forceSafeOutputs(
    {
      ...spec,
      latched: () => {
        order.push(`store read, contactor ${file(CONTACTOR, "value")}`);
        return { readable: true, codes: ["LOCK_LOST", "WELD"] };
      },
    },
    { sysfsRoot: tree.root },
  );
  assert.deepEqual(order, ["store read, contactor 0"], "the contactor is opened before the store is read");
  assert.equal(r.weld, false);
  assert.deepEqual([r.lock.position, r.lock.reason], ["engaged", "weld-latched"]);
  assert.equal(file(LOCK, "value"), "1", "the lock stays engaged");
  assert.equal(r.ok, false);
});

test("a store that cannot be read keeps the lock engaged; other latched faults leave it to its rest position", () => {
  leftCharging(false);
  const r = forceSafeOutputs(
    { ...spec, latched: () => ({ readable: false, detail: "IO: open" }) },
    { sysfsRoot: tree.root },
  );
  assert.deepEqual([r.lock.position, r.lock.reason], ["engaged", "store-unreadable"]);
  assert.equal(file(LOCK, "value"), "1");
  const thrown = forceSafeOutputs(
    {
      ...spec,
      latched: () => {
        throw new Error("boom");
      },
    },
    { sysfsRoot: tree.root },
  );
  assert.deepEqual([thrown.lock.position, thrown.lock.reason], ["engaged", "store-unreadable"]);
  const other = forceSafeOutputs(
    { ...spec, latched: () => ({ readable: true, codes: ["LOCK_LOST"] }) },
    { sysfsRoot: tree.root },
  );
  assert.deepEqual([other.lock.position, other.lock.reason, other.ok], ["released", "configured", true]);
  assert.equal(file(LOCK, "value"), "0");
});
