import assert from "node:assert/strict";
import { test } from "node:test";
import {
  COMMAND_NAMES,
  executeCommand,
  formatResult,
  parseKeyId,
  resolveCommand,
} from "../../src/control/index.js";
import { fakePileControl } from "../daemon/fake-pile-control.js";

const KEY = "0f".repeat(32);

test("every command runs, formats and leaves one audit entry with its outcome", async () => {
  const pile = fakePileControl();
  const ctx = { pile, actor: "pilectl", counters: () => ({ "control.badRequest": 3 }) };
  const runs: Array<[string, string[], string]> = [
    ["status", [], "ok"],
    ["meter", [], "ok"],
    ["sessions", ["5"], "ok"],
    ["faults", [], "ok"],
    ["clear-fault", ["NOPE"], "NOT_LATCHED"],
    ["clear-fault", ["CONTACTOR_WELDED"], "ok"],
    ["relay-test", [], "BUSY"],
    ["stop", [], "ok"],
    ["stop", [], "NO_SESSION"],
    ["relay-test", [], "ok"],
    ["keys", [], "ok"],
    ["keys", ["add", "0x10", KEY], "ok"],
    ["keys", ["retire", "16"], "ok"],
    ["time", [], "ok"],
    ["log", ["3"], "ok"],
    ["sim", ["plug-out"], "NOT_SIMULATED"],
    ["available", ["off"], "ok"],
    ["current-limit", ["16"], "ok"],
    ["current-limit", ["5"], "USAGE"],
    ["current-limit", ["off"], "ok"],
    ["available", ["maybe"], "USAGE"],
    ["available", ["on"], "ok"],
    ["ocpp", [], "NOT_ENABLED"],
    ["ocmf", ["3"], "NOT_ENABLED"],
  ];
  // Only what may change something is audited: a monitor polling status writes nothing.
  const changing = new Set(["clear-fault", "relay-test", "stop", "sim", "available", "current-limit"]);
  let expected = 0;
  for (const [name, args, outcome] of runs) {
    const before = pile.audits.length;
    const r = await executeCommand(ctx, name, args);
    assert.equal(r.ok ? "ok" : r.error.code, outcome, `${name} ${args.join(" ")}`);
    if (changing.has(name) || (name === "keys" && args.length > 0)) {
      expected++;
      assert.equal(pile.audits.length, before + 1, `${name} ${args.join(" ")} is audited`);
      assert.deepEqual(pile.audits.at(-1)!.action, name);
      assert.equal(pile.audits.at(-1)!.outcome, outcome);
      assert.equal(pile.audits.at(-1)!.actor, "pilectl");
    } else assert.equal(pile.audits.length, before, `${name} is read-only: not audited`);
    if (r.ok) assert.equal(typeof formatResult(resolveCommand(name)!, r.result), "string");
  }
  assert.equal(pile.audits.length, expected);
  assert.deepEqual(new Set(runs.map((r) => r[0])), new Set(COMMAND_NAMES));
  assert.equal(pile.keyHex.get(16), KEY, "the key reached the pile");
  assert.ok(!JSON.stringify(pile.audits).includes(KEY), "and not the audit log");
  assert.deepEqual(pile.audits.find((a) => a.args?.[0] === "add")!.args, ["add", "0x10", "[redacted]"]);
});

test("status merges the front end's bad-input counts", async () => {
  const pile = fakePileControl();
  const r = await executeCommand(
    { pile, actor: "x", counters: () => ({ "console.binary": 4 }) },
    "status",
    [],
  );
  assert.ok(r.ok);
  const s = r.result as { counters: Record<string, number> };
  assert.deepEqual(s.counters, { "ble.badFragment": 2, "console.binary": 4 });
  assert.match(formatResult("status", r.result), /bad input: ble\.badFragment=2 console\.binary=4/);
});

test("bad arguments are USAGE and reach nothing; unknown commands are UNKNOWN_COMMAND", async () => {
  const pile = fakePileControl();
  const ctx = { pile, actor: "console" };
  const bad: Array<[string, string[]]> = [
    ["status", ["x"]],
    ["sessions", ["0"]],
    ["sessions", ["-1"]],
    ["sessions", ["1001"]],
    ["sessions", ["1", "2"]],
    ["log", ["ten"]],
    ["clear-fault", []],
    ["clear-fault", ["a b"]],
    ["keys", ["add", "1"]],
    ["keys", ["add", "1", "abc"]],
    ["keys", ["add", "4294967296", KEY]],
    ["keys", ["add", "x", KEY]],
    ["keys", ["retire"]],
    ["keys", ["drop", "1"]],
    ["keys", ["list", "1"]],
    ["stop", ["now"]],
  ];
  for (const [name, args] of bad) {
    const r = await executeCommand(ctx, name, args);
    assert.ok(!r.ok && r.error.code === "USAGE", `${name} ${args.join(" ")}`);
  }
  const calls = pile.calls.length;
  assert.equal(calls, 0, "no bad command reached the pile");
  for (const name of ["constructor", "__proto__", "toString", "hasOwnProperty"]) {
    const r = await executeCommand(ctx, name, []);
    assert.ok(!r.ok && r.error.code === "UNKNOWN_COMMAND", name);
  }
  const u = await executeCommand(ctx, "reboot", [KEY]);
  assert.ok(!u.ok && u.error.code === "UNKNOWN_COMMAND");
  assert.deepEqual(pile.audits.at(-1), {
    actor: "console",
    action: "unknown",
    args: [],
    outcome: "UNKNOWN_COMMAND",
  });
  assert.equal(pile.audits.length, bad.length + 5);
  assert.ok(!JSON.stringify(pile.audits).includes(KEY));
});

test("a pile that throws gives INTERNAL, still audited", async () => {
  const pile = fakePileControl();
  pile.stop = async () => {
    throw Object.assign(new Error("gpio write failed"), { code: "EIO" });
  };
  const r = await executeCommand({ pile, actor: "console" }, "stop", []);
  assert.ok(!r.ok);
  assert.equal(r.error.code, "INTERNAL");
  assert.match(r.error.message, /EIO/);
  assert.equal(pile.audits.at(-1)!.outcome, "INTERNAL");
});

test("meter failures are refusals with the meter's code", async () => {
  const pile = fakePileControl();
  pile.meterFails = true;
  const r = await executeCommand({ pile, actor: "console" }, "meter-now", []);
  assert.ok(!r.ok && r.error.code === "TIMEOUT");
  assert.equal(pile.audits.length, 0, "a read that changes nothing is not audited");
});

test("key ids: decimal or 0x hex, 32 bits", () => {
  assert.equal(parseKeyId("0"), 0);
  assert.equal(parseKeyId("4294967295"), 0xffffffff);
  assert.equal(parseKeyId("0xFFFFFFFF"), 0xffffffff);
  assert.equal(parseKeyId("4294967296"), undefined);
  assert.equal(parseKeyId("0x100000000"), undefined);
  assert.equal(parseKeyId("1e3"), undefined);
  assert.equal(parseKeyId(""), undefined);
  assert.equal(parseKeyId("-1"), undefined);
});

test("field report: pilectl sessions tells an interrupted session's energy source", () => {
  const base = {
    id: "a1b2c3d4e5f60718293a4b5c6d7e8f90",
    codeId: "00112233445566778899aabbccddeeff",
    carrier: "vehicle" as const,
    deviceId: "VIN-1",
    status: "interrupted",
    startedAt: 1_699_000_000_000,
    endedAt: 1_699_000_360_000,
    meterStartWh: 1000,
    reason: "INTERRUPTED",
    faults: [],
  };
  const out = formatResult("sessions", [
    { ...base, meterStopWh: 1003, energyWh: 3, energySource: "meter" },
    { ...base, meterStopWh: 1001.3, energyWh: 1.3, energySource: "unknown" },
  ]).split("\n");
  assert.match(out[0]!, /3 Wh \(closed from the meter\) interrupted INTERRUPTED/);
  assert.match(out[1]!, /1\.3 Wh \(energy unknown: meter unreadable at boot\) interrupted INTERRUPTED/);
});

test("field report: key material in any argument never reaches the audit, and every refusal is audited", async () => {
  const pile = fakePileControl();
  const ctx = { pile, actor: "pilectl" };
  const hex = "7e".repeat(32);
  const b64 = Buffer.from(hex, "hex").toString("base64");
  const b64url = Buffer.from(hex, "hex").toString("base64url");
  const cases: Array<[string, string[]]> = [
    ["keys", ["list", hex.slice(0, 32), hex.slice(32)]],
    ["keys", ["ADD", "17", hex.toUpperCase()]],
    ["keys", ["retire", "16", hex]],
    ["keys", ["add", "17", hex.slice(0, 16), hex.slice(16, 32), hex.slice(32, 48), hex.slice(48)]],
    ["keys", ["add", "17", b64]],
    ["keys", ["add", "17", b64url.slice(0, 22), b64url.slice(22)]],
    ["keys", ["list", b64.toLowerCase()]],
    ["clear-fault", [hex]],
    ["stop", [b64]],
    [hex, []],
  ];
  for (const [name, args] of cases) {
    const before = pile.audits.length;
    const r = await executeCommand(ctx, name, args);
    assert.ok(!r.ok, `${name} ${args.join(" ")} is refused`);
    assert.equal(pile.audits.length, before + 1, `${name} ${args.join(" ")} is audited`);
    const seen = JSON.stringify([r, pile.audits.at(-1)]).toLowerCase();
    for (const piece of [hex.slice(0, 16), hex.slice(48), b64.slice(0, 11), b64url.slice(30)])
      assert.ok(!seen.includes(piece.toLowerCase()), `${name} ${args.join(" ")}: ${seen}`);
  }
  // The words around the key stay readable.
  assert.deepEqual(pile.audits[1]!.args, ["ADD", "17", "[redacted]"]);
  assert.deepEqual(pile.audits[2]!.args, ["retire", "16", "[redacted]"]);
  assert.equal(pile.keyHex.size, 0, "no key was added");
});

test("field report: pilectl sessions shows the faults that ended a session", () => {
  const welded = {
    id: "a1b2c3d4e5f60718293a4b5c6d7e8f90",
    codeId: "00112233445566778899aabbccddeeff",
    carrier: "vehicle" as const,
    deviceId: "VIN-1",
    status: "finished",
    startedAt: 1_699_000_000_000,
    endedAt: 1_699_000_360_000,
    meterStartWh: 1000,
    meterStopWh: 1003,
    energyWh: 3,
    energySource: null,
    reason: "TECHNICIAN",
    faults: ["WELD"],
  };
  const out = formatResult("sessions", [welded, { ...welded, reason: "CARRIER_STOP", faults: [] }]).split(
    "\n",
  );
  assert.match(out[0]!, /finished TECHNICIAN fault WELD$/);
  assert.match(out[1]!, /finished CARRIER_STOP$/);
});
