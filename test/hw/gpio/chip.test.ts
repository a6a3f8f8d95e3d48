import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { after, test } from "node:test";
import { findChip, listChips, resolveLine } from "../../../src/hw/gpio/chip.js";
import { GpioError } from "../../../src/hw/gpio/errors.js";
import { makeFakeTree } from "./fixtures/fake-tree.js";

const tree = makeFakeTree([
  { label: "pinctrl-bcm2711", base: 512, ngpio: 58, device: "gpiochip0" },
  { label: "raspberrypi-exp-gpio", base: 570, ngpio: 8, device: "gpiochip1" },
  { label: "pinctrl-rp1", base: 571, ngpio: 54, device: "gpiochip4" },
  { label: "legacy-soc", base: 0, ngpio: 32 },
  { label: "i2c-expander", base: 600, ngpio: 16 },
  { label: "i2c-expander", base: 616, ngpio: 16 },
]);
after(() => tree.remove());
const root = tree.root;

function gpioError(code: string) {
  return (err: unknown) => err instanceof GpioError && err.code === code;
}

test("a label resolves to base + offset, never assuming base 0", () => {
  assert.equal(resolveLine({ chip: "pinctrl-bcm2711", line: 17 }, { sysfsRoot: root }).number, 529);
  assert.equal(resolveLine({ chip: "pinctrl-rp1", line: 0 }, { sysfsRoot: root }).number, 571);
  assert.equal(resolveLine({ chip: "raspberrypi-exp-gpio", line: 7 }, { sysfsRoot: root }).number, 577);
  assert.equal(resolveLine({ chip: "legacy-soc", line: 4 }, { sysfsRoot: root }).number, 4);
});

test("the chip may be given as its sysfs directory or as its device name", () => {
  assert.equal(resolveLine({ chip: "gpiochip512", line: 2 }, { sysfsRoot: root }).number, 514);
  assert.equal(resolveLine({ chip: "gpiochip1", line: 2 }, { sysfsRoot: root }).number, 572);
  assert.equal(resolveLine({ chip: "gpiochip4", line: 5 }, { sysfsRoot: root }).number, 576);
  assert.equal(resolveLine({ chip: "gpiochip600", line: 1 }, { sysfsRoot: root }).number, 601);
});

test("a sysfs directory name takes precedence over another chip's device name", () => {
  // "gpiochip0" is both the base-0 chip's directory and the bcm2711 chip's device here
  assert.equal(findChip(listChips(root), "gpiochip0").label, "legacy-soc");
});

test("active-low is carried through", () => {
  const r = resolveLine({ chip: "pinctrl-bcm2711", line: 5, activeLow: true }, { sysfsRoot: root });
  assert.equal(r.activeLow, true);
  assert.equal(r.offset, 5);
  assert.equal(r.chip.ngpio, 58);
  assert.equal(resolveLine({ chip: "pinctrl-bcm2711", line: 5 }, { sysfsRoot: root }).activeLow, false);
});

test("an unknown chip is NO_CHIP and lists the labels seen", () => {
  assert.throws(
    () => resolveLine({ chip: "pinctrl-bcm2835", line: 1 }, { sysfsRoot: root }),
    (err: unknown) =>
      gpioError("NO_CHIP")(err) &&
      (err as GpioError).detail?.labels?.includes("pinctrl-bcm2711") === true &&
      (err as GpioError).message.includes("pinctrl-rp1"),
  );
});

test("a missing sysfs root is NO_CHIP", () => {
  assert.throws(
    () => resolveLine({ chip: "x", line: 0 }, { sysfsRoot: `${root}/absent` }),
    gpioError("NO_CHIP"),
  );
});

test("an offset at or past ngpio, negative or fractional is LINE_RANGE", () => {
  assert.equal(resolveLine({ chip: "pinctrl-bcm2711", line: 57 }, { sysfsRoot: root }).number, 569);
  for (const line of [58, 100, -1, 1.5]) {
    assert.throws(
      () => resolveLine({ chip: "pinctrl-bcm2711", line }, { sysfsRoot: root }),
      gpioError("LINE_RANGE"),
    );
  }
  assert.throws(
    () => resolveLine({ chip: "raspberrypi-exp-gpio", line: 8 }, { sysfsRoot: root }),
    gpioError("LINE_RANGE"),
  );
});

test("a label shared by two chips is AMBIGUOUS_CHIP; the directory name still works", () => {
  assert.throws(
    () => resolveLine({ chip: "i2c-expander", line: 0 }, { sysfsRoot: root }),
    gpioError("AMBIGUOUS_CHIP"),
  );
  assert.equal(resolveLine({ chip: "gpiochip616", line: 3 }, { sysfsRoot: root }).number, 619);
});

test("chips with unreadable or malformed files are skipped", () => {
  const bad = makeFakeTree([{ label: "good", base: 512, ngpio: 4 }]);
  try {
    // a chip dir with a non-numeric base is ignored, the good one still resolves
    mkdirSync(`${bad.root}/gpiochip9`);
    writeFileSync(`${bad.root}/gpiochip9/label`, "broken\n");
    writeFileSync(`${bad.root}/gpiochip9/base`, "nine\n");
    writeFileSync(`${bad.root}/gpiochip9/ngpio`, "4\n");
    mkdirSync(`${bad.root}/gpiochip20`); // no files at all
    assert.deepEqual(
      listChips(bad.root).map((c) => c.label),
      ["good"],
    );
    assert.equal(resolveLine({ chip: "good", line: 3 }, { sysfsRoot: bad.root }).number, 515);
  } finally {
    bad.remove();
  }
});
