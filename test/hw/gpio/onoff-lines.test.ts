/** The adapters' own logic (modes, debouncing, safe direction word, typed errors) over a stand-in onoff. */
import assert from "node:assert/strict";
import { existsSync, rmSync } from "node:fs";
import { afterEach, beforeEach, mock, test } from "node:test";
import { GpioError } from "../../../src/hw/gpio/errors.js";
import {
  type Edge,
  type GpioFactory,
  type OnoffGpio,
  openInput,
  openOutput,
} from "../../../src/hw/gpio/onoff-lines.js";
import { type FakeTree, makeFakeTree } from "./fixtures/fake-tree.js";

type Bit = 0 | 1;

class FakeGpio implements OnoffGpio {
  value: Bit = 0;
  written: Bit[] = [];
  listeners: ((err: Error | null | undefined, value: Bit) => void)[] = [];
  unwatched = 0;
  failWrite = false;
  failRead = false;
  reads = 0;
  constructor(
    readonly args: { n: number; direction: string; edge: Edge; activeLow: boolean },
    private readonly opts: { watchable: boolean; reportActiveLow?: boolean; dir: string },
  ) {}
  async read(): Promise<Bit> {
    this.reads += 1;
    if (this.failRead) throw Object.assign(new Error("EIO"), { code: "EIO" });
    return this.value;
  }
  async write(v: Bit): Promise<void> {
    if (this.failWrite) throw Object.assign(new Error("EIO"), { code: "EIO" });
    this.written.push(v);
  }
  watch(cb: (err: Error | null | undefined, value: Bit) => void): void {
    this.listeners.push(cb);
    if (!this.opts.watchable) throw new Error("Operation not permitted");
  }
  unwatchAll(): void {
    this.unwatched += 1;
    this.listeners = [];
  }
  direction(): string {
    return this.args.direction;
  }
  activeLow(): boolean {
    return this.opts.reportActiveLow ?? this.args.activeLow;
  }
  unexport(): void {
    rmSync(this.opts.dir, { recursive: true, force: true });
  }
  /** An interrupt: the line now reads `v`. */
  edge(v: Bit): void {
    this.value = v;
    for (const l of this.listeners) l(null, v);
  }
}

let tree: FakeTree;
let made: FakeGpio[];
beforeEach(() => {
  tree = makeFakeTree([{ label: "pinctrl-bcm2711", base: 512, ngpio: 58 }]);
  made = [];
  mock.timers.enable({ apis: ["setTimeout"] });
});
afterEach(() => {
  mock.timers.reset();
  tree.remove();
});

function factory(opts: { watchable?: boolean; reportActiveLow?: boolean } = {}): GpioFactory {
  return (n, direction, edge, o) => {
    const g = new FakeGpio(
      { n, direction, edge, activeLow: o.activeLow },
      {
        watchable: opts.watchable ?? true,
        reportActiveLow: opts.reportActiveLow,
        dir: `${tree.root}/gpio${n}`,
      },
    );
    made.push(g);
    return g;
  };
}

/** Lets pending promise callbacks (the sampler's reads) run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

const bcm = (line: number, activeLow?: boolean) => ({ chip: "pinctrl-bcm2711", line, activeLow });

test("an output opens with the raw direction word of its safe level", async () => {
  for (const [activeLow, safe, word] of [
    [false, false, "low"],
    [false, true, "high"],
    [true, false, "high"],
    [true, true, "low"],
  ] as const) {
    tree.exportLine(512);
    const out = await openOutput(bcm(0, activeLow), {
      name: "o",
      safe,
      sysfsRoot: tree.root,
      gpio: factory(),
    });
    assert.equal(made.at(-1)?.args.direction, word, `activeLow ${activeLow} safe ${safe}`);
    assert.equal(made.at(-1)?.args.activeLow, activeLow);
    assert.equal(made.at(-1)?.args.n, 512);
    await out.close();
    rmSync(`${tree.root}/gpio512`, { recursive: true });
  }
});

test("output writes map to 1/0; a failed write is IO", async () => {
  tree.exportLine(517);
  const out = await openOutput(bcm(5), {
    name: "contactor",
    safe: false,
    sysfsRoot: tree.root,
    gpio: factory(),
  });
  await out.write(true);
  await out.write(false);
  assert.deepEqual(made[0]?.written, [1, 0]);
  made[0]!.failWrite = true;
  await assert.rejects(out.write(true), (e: unknown) => e instanceof GpioError && e.code === "IO");
  await out.close();
  await assert.rejects(out.write(true), (e: unknown) => e instanceof GpioError && e.code === "IO");
});

test("a line that does not take its active-low setting is refused (IO)", async () => {
  tree.exportLine(517);
  await assert.rejects(
    openOutput(bcm(5, true), {
      name: "o",
      safe: false,
      sysfsRoot: tree.root,
      gpio: factory({ reportActiveLow: false }),
    }),
    (e: unknown) => e instanceof GpioError && e.code === "IO",
  );
});

test("a busy line is BUSY, other construction failures IO", async () => {
  tree.exportLine(517);
  const throwing =
    (code: string): GpioFactory =>
    () => {
      throw Object.assign(new Error(code), { code });
    };
  await assert.rejects(
    openOutput(bcm(5), { name: "o", safe: false, sysfsRoot: tree.root, gpio: throwing("EBUSY") }),
    (e: unknown) => e instanceof GpioError && e.code === "BUSY",
  );
  await assert.rejects(
    openInput(bcm(5), { name: "i", sysfsRoot: tree.root, gpio: throwing("EACCES") }),
    (e: unknown) => e instanceof GpioError && e.code === "IO" && e.detail?.errno === "EACCES",
  );
});

test("a watchable input is watched and its edges debounced", async () => {
  tree.exportLine(534);
  const input = await openInput(bcm(22), {
    name: "fb",
    debounceMs: 20,
    sysfsRoot: tree.root,
    gpio: factory(),
  });
  assert.equal(input.mode, "watched");
  assert.equal(made[0]?.args.edge, "both");
  const seen: boolean[] = [];
  input.watch((v) => seen.push(v));
  made[0]!.edge(1);
  mock.timers.tick(10);
  made[0]!.edge(0); // bounce
  made[0]!.edge(1);
  mock.timers.tick(19);
  assert.deepEqual(seen, []);
  assert.equal(await input.read(), false);
  mock.timers.tick(1);
  assert.deepEqual(seen, [true]);
  assert.equal(await input.read(), true);
  await input.close();
});

test("an input whose watch is refused falls back to sampling, debounced", async () => {
  tree.exportLine(534);
  const input = await openInput(bcm(22), {
    name: "fb",
    debounceMs: 20,
    sampleMs: 10,
    sysfsRoot: tree.root,
    gpio: factory({ watchable: false }),
  });
  assert.equal(input.mode, "sampled");
  assert.equal(made[0]?.listeners.length, 0, "the refused watcher is cleared");
  const seen: boolean[] = [];
  input.watch((v) => seen.push(v));
  made[0]!.value = 1;
  mock.timers.tick(10); // sampled: 1, wait starts
  await settle();
  mock.timers.tick(10);
  await settle();
  assert.deepEqual(seen, []);
  mock.timers.tick(10); // 20 ms after the first sample of 1
  await settle();
  assert.deepEqual(seen, [true]);
  await input.close();
  mock.timers.tick(100);
  await settle();
  made[0]!.value = 0;
  mock.timers.tick(100);
  await settle();
  assert.deepEqual(seen, [true], "nothing after close");
});

test("edge none samples without trying to watch", async () => {
  tree.exportLine(534);
  const input = await openInput(bcm(22), { name: "fb", edge: "none", sysfsRoot: tree.root, gpio: factory() });
  assert.equal(input.mode, "sampled");
  assert.equal(made[0]?.listeners.length, 0);
  await input.close();
});

test("the initial level is read at open", async () => {
  tree.exportLine(534);
  const f: GpioFactory = (...args) => {
    const g = factory()(...args) as FakeGpio;
    g.value = 1;
    return g;
  };
  const input = await openInput(bcm(22), { name: "fb", sysfsRoot: tree.root, gpio: f });
  assert.equal(await input.read(), true);
  await input.close();
});

test("an input whose first read fails is IO and is unexported again", async () => {
  const dir = tree.exportLine(534);
  const f: GpioFactory = (...args) => {
    const g = factory()(...args) as FakeGpio;
    g.read = () => Promise.reject(Object.assign(new Error("EIO"), { code: "EIO" }));
    return g;
  };
  await assert.rejects(
    openInput(bcm(22), { name: "fb", sysfsRoot: tree.root, gpio: f }),
    (e: unknown) => e instanceof GpioError && e.code === "IO" && e.detail?.errno === "EIO",
  );
  assert.equal(existsSync(dir), false);
});

test("field report: inputs that go quiet: a watched line is re-sampled, so a missed edge is seen", async () => {
  tree.exportLine(534);
  const input = await openInput(bcm(22), {
    name: "fb",
    debounceMs: 0,
    resampleMs: 100,
    sysfsRoot: tree.root,
    gpio: factory(),
  });
  assert.equal(input.mode, "watched");
  const seen: boolean[] = [];
  input.watch((v) => seen.push(v));
  made[0]!.value = 1; // the line moved, no interrupt came
  mock.timers.tick(99);
  await settle();
  assert.deepEqual(seen, []);
  mock.timers.tick(1);
  await settle();
  assert.deepEqual(seen, [true], "seen at the next re-sample");
  mock.timers.tick(100);
  await settle();
  assert.deepEqual(seen, [true], "an unchanged level is not reported again");
  made[0]!.edge(0);
  assert.deepEqual(seen, [true, false], "edges still report at once");
  await input.close();
  const reads = made[0]!.reads;
  mock.timers.tick(1000);
  await settle();
  assert.equal(made[0]!.reads, reads, "no re-sampling after close");
});

test("field report: inputs that go quiet: a watched line whose reads fail is reported unreadable, then readable again", async () => {
  tree.exportLine(534);
  const input = await openInput(bcm(22), {
    name: "fb",
    debounceMs: 0,
    resampleMs: 100,
    sysfsRoot: tree.root,
    gpio: factory(),
  });
  const health: [boolean, string][] = [];
  input.health((readable, detail) => health.push([readable, detail]));
  made[0]!.failRead = true;
  mock.timers.tick(100);
  await settle();
  mock.timers.tick(100);
  await settle();
  assert.equal(input.readErrors, 2);
  assert.equal(input.readable, false);
  assert.deepEqual(
    health.map(([r]) => r),
    [false],
    "reported once, when the reads start failing",
  );
  assert.match(health[0]![1], /fb.*EIO/);
  const late: boolean[] = [];
  input.health((r) => late.push(r));
  assert.deepEqual(late, [false], "a listener that comes later learns it at once");
  made[0]!.failRead = false;
  made[0]!.value = 1;
  const seen: boolean[] = [];
  input.watch((v) => seen.push(v));
  mock.timers.tick(100);
  await settle();
  assert.deepEqual(
    health.map(([r]) => r),
    [false, true],
  );
  assert.deepEqual(seen, [true], "the level read once the line answers again");
  // an error handed to the watcher counts the same
  for (const l of made[0]!.listeners) l(Object.assign(new Error("EIO"), { code: "EIO" }), 0);
  assert.deepEqual(
    health.map(([r]) => r),
    [false, true, false],
  );
  await input.close();
});

test("a sampled line whose reads fail is reported unreadable", async () => {
  tree.exportLine(534);
  const input = await openInput(bcm(22), {
    name: "fb",
    sampleMs: 10,
    sysfsRoot: tree.root,
    gpio: factory({ watchable: false }),
  });
  assert.equal(input.mode, "sampled");
  const health: boolean[] = [];
  input.health((r) => health.push(r));
  made[0]!.failRead = true;
  mock.timers.tick(10);
  await settle();
  assert.deepEqual(health, [false]);
  made[0]!.failRead = false;
  mock.timers.tick(10);
  await settle();
  assert.deepEqual(health, [false, true]);
  await input.close();
});

test("resampleMs 0 turns re-sampling off", async () => {
  tree.exportLine(534);
  const input = await openInput(bcm(22), {
    name: "fb",
    resampleMs: 0,
    sysfsRoot: tree.root,
    gpio: factory(),
  });
  const reads = made[0]!.reads;
  mock.timers.tick(5000);
  await settle();
  assert.equal(made[0]!.reads, reads);
  await input.close();
});
