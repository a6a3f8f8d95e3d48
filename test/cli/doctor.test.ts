/**
 * `pilectl doctor` against a plant made of fixtures: a fake sysfs GPIO tree (the one the GPIO
 * tier uses), the simulated Modbus meter on a pty pair, a fake /sys/class/bluetooth, a key
 * directory, a store identity file and a console hash file. First every check passes; then each
 * check is broken in turn, and that check, and only that one, fails, and the exit status is 1.
 */
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { main } from "../../src/cli/main.js";
import { hashSecret } from "../../src/daemon/console/secret.js";
import { SimMeter } from "../../src/sim/meter/sim-meter.js";
import { identityPath, newIdentity, writeIdentity } from "../../src/store/identity.js";
import { openPtyPair, type PtyPair } from "../helpers/pty.js";
import { type FakeTree, makeFakeTree } from "../hw/gpio/fixtures/fake-tree.js";

const CHIP = "pinctrl-test";
const BASE = 512;
let dir = "";
let tree: FakeTree;
let pair: PtyPair;
let sim: SimMeter;
let configPath = "";
let btRoot = "";
const ME = userInfo().username;

interface Outcome {
  code: number;
  status: Map<string, string>;
  detail: Map<string, string>;
  text: string;
}

async function doctor(extra: string[] = [], config = configPath): Promise<Outcome> {
  let text = "";
  const io = { out: (t: string) => (text += t), err: (t: string) => (text += t) };
  const args = ["doctor", "--config", config, "--user", ME, "--gpio-root", tree.root, "--bt-root", btRoot];
  const code = await main([...args, ...extra], io);
  const status = new Map<string, string>();
  const detail = new Map<string, string>();
  for (const l of text.split("\n")) {
    const m = /^(ok|warn|fail)\s+(\S+)\s+(.*)$/.exec(l);
    if (m) {
      status.set(m[2]!, m[1]!);
      detail.set(m[2]!, m[3]!);
    }
  }
  return { code, status, detail, text };
}

const line = (n: number, activeLow = false) => ({ chip: CHIP, line: n, activeLow });

function writeConfig(patch: Record<string, unknown> = {}): void {
  const c = {
    pileId: "PILE-DOC",
    keyDir: join(dir, "keys"),
    stateDir: join(dir, "state"),
    gpio: {
      contactor: line(17),
      lock: line(27),
      contactorFeedback: line(22, true),
      lockFeedback: line(23, true),
    },
    meter: { port: pair.a, model: "sdm630", timeoutMs: 100, retries: 0 },
    ble: { enabled: true, controller: { kind: "hci", device: 0 } },
    console: { enabled: true, secretHashFile: join(dir, "console.hash") },
    ...patch,
  };
  writeFileSync(configPath, JSON.stringify(c));
}

/** Asserts that `name` alone failed and the exit status says so; returns its line. */
function onlyFailed(o: Outcome, name: string): string {
  assert.equal(o.code, 1, o.text);
  const failed = [...o.status].filter(([, s]) => s === "fail").map(([n]) => n);
  assert.deepEqual(failed, [name], o.text);
  return o.detail.get(name)!;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "piled-doctor-"));
  tree = makeFakeTree([{ label: CHIP, base: BASE, ngpio: 58 }]);
  pair = await openPtyPair();
  sim = new SimMeter({ model: "sdm630", energyWh: 1234, voltageV: 231 });
  sim.setPower(0);
  await sim.attach(pair.b);
  btRoot = join(dir, "bluetooth");
  mkdirSync(join(btRoot, "hci0", "rfkill3"), { recursive: true });
  writeFileSync(join(btRoot, "hci0", "rfkill3", "soft"), "0\n");
  writeFileSync(join(btRoot, "hci0", "rfkill3", "hard"), "0\n");
  mkdirSync(join(dir, "keys"), { mode: 0o700 });
  mkdirSync(join(dir, "state"), { mode: 0o750 });
  const quiet = { out: () => {}, err: () => {} };
  const made = await main(["key", "new", "--key-id", "1", "--out", join(dir, "keys", "key-1.json")], quiet);
  assert.equal(made, 0);
  writeFileSync(join(dir, "console.hash"), `${await hashSecret("technician-secret")}\n`, { mode: 0o640 });
  configPath = join(dir, "piled.json");
  writeConfig();
});

after(async () => {
  await sim.detach();
  await pair.close();
  tree.remove();
  rmSync(dir, { recursive: true, force: true });
});

test("doctor: every check passes on a good plant, one line each, exit 0", async () => {
  const o = await doctor();
  assert.equal(o.code, 0, o.text);
  assert.deepEqual(
    [...o.status.keys()],
    ["config", "gpio", "meter", "ble", "keys", "clock", "disk", "console"],
  );
  for (const [n, s] of o.status) assert.equal(s, "ok", `${n}: ${o.detail.get(n)}`);
  assert.match(o.detail.get("meter")!, /231 V/);
  assert.match(o.text, /doctor: 8 ok, 0 warn, 0 failed/);
  assert.doesNotMatch(o.text, /scrypt\$/, "the hash never reaches the output");
});

test("doctor: a config that does not parse fails and stops there", async () => {
  const bad = join(dir, "bad.json");
  writeFileSync(bad, "{ not json");
  const o = await doctor([], bad);
  assert.equal(onlyFailed(o, "config").includes("not valid JSON"), true);
  assert.equal(o.status.size, 1);
});

test("doctor gpio: a missing chip, a line outside the chip, an exported line, a shared line", async () => {
  try {
    writeConfig({
      gpio: {
        contactor: { chip: "nochip", line: 1 },
        lock: line(27),
        contactorFeedback: line(22),
        lockFeedback: line(23),
      },
    });
    assert.match(onlyFailed(await doctor(), "gpio"), /no GPIO chip "nochip"/);
    writeConfig({
      gpio: { contactor: line(70), lock: line(27), contactorFeedback: line(22), lockFeedback: line(23) },
    });
    assert.match(onlyFailed(await doctor(), "gpio"), /outside chip/);
    writeConfig({
      gpio: { contactor: line(17), lock: line(17), contactorFeedback: line(22), lockFeedback: line(23) },
    });
    assert.match(onlyFailed(await doctor(), "gpio"), /both GPIO 529/);
    writeConfig();
    const exported = tree.exportLine(BASE + 27);
    try {
      assert.match(onlyFailed(await doctor(), "gpio"), /GPIO 539\) is already exported/);
    } finally {
      rmSync(exported, { recursive: true });
    }
  } finally {
    writeConfig();
  }
});

test("doctor meter: a silent meter fails with TIMEOUT", async () => {
  sim.setFaults({ silent: true });
  try {
    assert.match(onlyFailed(await doctor(), "meter"), /TIMEOUT/);
  } finally {
    sim.setFaults({ silent: false });
  }
});

test("doctor ble: no controller, then a controller blocked by rfkill", async () => {
  try {
    writeConfig({ ble: { controller: { kind: "hci", device: 1 } } });
    assert.match(onlyFailed(await doctor(), "ble"), /no controller hci1; seen: hci0/);
    writeConfig();
    writeFileSync(join(btRoot, "hci0", "rfkill3", "soft"), "1\n");
    assert.match(onlyFailed(await doctor(), "ble"), /blocked by rfkill \(soft\)/);
  } finally {
    writeFileSync(join(btRoot, "hci0", "rfkill3", "soft"), "0\n");
    writeConfig();
  }
});

test("doctor keys: a key readable by others, a foreign owner, no key at all", async () => {
  const key = join(dir, "keys", "key-1.json");
  chmodSync(key, 0o644);
  try {
    assert.match(onlyFailed(await doctor(), "keys"), /has mode 0644 \(want 0600\)/);
  } finally {
    chmodSync(key, 0o600);
  }
  // The user the keys must belong to is someone else: root's files are not theirs.
  const other = ME === "nobody" ? "root" : "nobody";
  assert.match(onlyFailed(await doctor(["--user", other]), "keys"), /is owned by uid \d+, not /);
  const empty = join(dir, "nokeys");
  mkdirSync(empty, { mode: 0o700 });
  try {
    writeConfig({ keyDir: empty });
    assert.match(onlyFailed(await doctor(), "keys"), /no key in/);
  } finally {
    writeConfig();
  }
});

test("doctor clock: a clock behind the store's time floor fails", async () => {
  const idFile = identityPath(join(dir, "state", "piled.db"));
  writeIdentity(idFile, newIdentity({ ledgerRows: 0, floor: BigInt(Date.now() + 3_600_000), latched: 0 }));
  try {
    assert.match(onlyFailed(await doctor(), "clock"), /before the store's time floor/);
    writeIdentity(idFile, newIdentity({ ledgerRows: 0, floor: BigInt(Date.now() - 1000), latched: 0 }));
    const o = await doctor();
    assert.equal(o.code, 0, o.text);
    assert.match(o.detail.get("clock")!, /after the store's time floor/);
  } finally {
    rmSync(idFile, { force: true });
  }
});

test("doctor disk: less free space than asked for fails", async () => {
  assert.match(
    onlyFailed(await doctor(["--min-free-mb", "1000000"]), "disk"),
    /below 976563 MiB|below \d+ MiB/,
  );
});

test("doctor console: a damaged hash file, then one readable by others", async () => {
  const f = join(dir, "console.hash");
  const good = `${await hashSecret("technician-secret")}\n`;
  try {
    writeFileSync(f, "scrypt$3$8$1$AAAA$BBBB\n");
    assert.match(onlyFailed(await doctor(), "console"), /hash file .*: /);
    writeFileSync(f, good);
    chmodSync(f, 0o644);
    assert.match(onlyFailed(await doctor(), "console"), /others may read it/);
  } finally {
    writeFileSync(f, good);
    chmodSync(f, 0o640);
  }
});

test("doctor: a usage error is exit 2", async () => {
  const o = await doctor(["--min-free-mb", "lots"]);
  assert.equal(o.code, 2, o.text);
});
