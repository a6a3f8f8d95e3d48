/**
 * The pile's peripheral and the carrier's central over the emulated radio (btvirt), each in its
 * own process as in the field. Needs bluez-test-tools, socat, gcc and unshare (root or user
 * namespaces); fails naming what is missing.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { after, afterEach, before, test } from "node:test";
import { NobleCentral } from "../../../src/hw/ble/central.js";
import { BleError } from "../../../src/hw/ble/errors.js";
import { decodeInfo } from "../../../src/protocol/messages.js";
import type { CarrierLink } from "../../../src/sdk/transport.js";
import { checkRadioTools, type Radio, type RadioBridge, startRadio } from "../../../src/sim/radio.js";
import { PeripheralProcess } from "./air.js";

let radio: Radio;
const cleanups: Array<() => Promise<void>> = [];

before(async () => {
  checkRadioTools(); // throws naming the Debian packages that are missing
  radio = await startRadio();
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

after(async () => {
  await radio?.close();
});

async function pile(pileId: string): Promise<{ p: PeripheralProcess; bridge: RadioBridge }> {
  const bridge = await radio.bridge();
  const p = new PeripheralProcess(bridge.path, pileId);
  cleanups.push(async () => {
    await p.kill();
    await bridge.close();
  });
  await p.up();
  return { p, bridge };
}

async function central(opts: { mtu?: number; supervisionMs?: number } = {}): Promise<NobleCentral> {
  const bridge = await radio.bridge();
  const c = new NobleCentral({ controller: { kind: "uart", path: bridge.path }, ...opts });
  cleanups.push(async () => {
    await c.close();
    await bridge.close();
  });
  return c;
}

/** Writes one fragment and resolves with the next notification. */
function echo(link: CarrierLink, fragment: Uint8Array): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const off = link.onNotify((f) => {
      off();
      resolve(f);
    });
    link.write(fragment).catch((e) => {
      off();
      reject(e);
    });
  });
}

const code = (e: unknown) => (e instanceof BleError ? e.code : `not a BleError: ${String(e)}`);

test("a carrier finds the pile by name, reads Info, echoes through Control→Event at MTU 256, and the pile sees it leave", async () => {
  const { p } = await pile("CP-0042");
  const c = await central();
  const link = await c.connect("CP-0042", { timeoutMs: 10_000 });
  assert.equal(link.mtu, 256);

  const info = decodeInfo(await link.readInfo());
  assert.ok(info.ok);
  assert.equal(info.value.pileId, "CP-0042");

  const frag = Uint8Array.from([0x80, 1, 2, 3, 4]);
  assert.deepEqual([...(await echo(link, frag))], [...frag]);
  const big = new Uint8Array(253).fill(0x5a); // MTU − 3: the largest notification
  big[0] = 0x80;
  assert.deepEqual([...(await echo(link, big))], [...big]);
  const w = await p.waitFor((e) => e.ev === "write");
  assert.equal(w.mtu, 256, "the pile sees the negotiated MTU on its side of the connection");

  const connected = await p.waitFor((e) => e.ev === "connect");
  await link.close();
  await p.waitFor((e) => e.ev === "disconnect" && e.id === connected.id);
  await assert.rejects(link.write(frag), (e) => code(e) === "DISCONNECTED");
});

test("field report: the pile ends a connection from its side (idle drop); the carrier sees DISCONNECTED", async () => {
  const { p } = await pile("CP-0043");
  const c = await central();
  const link = await c.connect("CP-0043", { timeoutMs: 10_000 });
  const connected = await p.waitFor((e) => e.ev === "connect");
  const gone = new Promise<void>((resolve) => link.onDisconnect(resolve));
  p.drop();
  await p.waitFor((e) => e.ev === "disconnect" && e.id === connected.id);
  await gone;
  await assert.rejects(link.write(Uint8Array.from([0x80, 1])), (e) => code(e) === "DISCONNECTED");
});

test("a long pileId: the name is shortened, the carrier confirms by a long Info read from one snapshot (MTU 23)", async () => {
  // Two piles whose names are cut to the same 29 bytes: only Info tells them apart.
  const stem = "STATION-NORTH-LEVEL2-BAY";
  const mine = `${stem}-0017-${"é".repeat(17)}`; // 64 bytes of UTF-8
  assert.equal(Buffer.byteLength(mine), 64);
  const other = `${stem}-0018`;
  const { p: decoy } = await pile(other);
  const { p } = await pile(mine);
  const c = await central({ mtu: 23 });
  const link = await c.connect(mine, { timeoutMs: 15_000 });
  assert.equal(link.mtu, 23);
  const raw = await link.readInfo();
  assert.ok(raw.length > 22, "Info is longer than one ATT read at MTU 23");
  const info = decodeInfo(raw);
  assert.ok(info.ok);
  assert.equal(info.value.pileId, mine);
  assert.equal(info.value.keyIds.length, 16);
  assert.equal(new Set(info.value.keyIds).size, 1, "all parts of a long read come from one snapshot");
  const statsMine = await p.stats();
  assert.ok(Number(statsMine.infoCalls) >= 2, "the long read took its own snapshot at offset 0");
  assert.deepEqual([...(await echo(link, Uint8Array.from([0x80, 0x42])))], [0x80, 0x42]);
  await link.close();
  const decoyStats = await decoy.stats();
  assert.equal(decoyStats.connections, 0);
});

test("a pile killed mid-connection is reported DISCONNECTED; restarted, it works again", async () => {
  const { p, bridge } = await pile("CP-KILL");
  const c = await central({ supervisionMs: 600 });
  const link = await c.connect("CP-KILL", { timeoutMs: 10_000 });
  const down = new Promise<void>((r) => link.onDisconnect(r));
  assert.deepEqual([...(await echo(link, Uint8Array.from([0x80, 9])))], [0x80, 9]);

  await p.kill("SIGKILL");
  await bridge.close(); // the controller goes with its bridge (else it keeps advertising)
  await down;
  await assert.rejects(link.write(Uint8Array.from([0x80, 1])), (e) => code(e) === "DISCONNECTED");

  await pile("CP-KILL");
  const again = await c.connect("CP-KILL", { timeoutMs: 10_000 });
  assert.deepEqual([...(await echo(again, Uint8Array.from([0x80, 10])))], [0x80, 10]);
  await again.close();
});

test("no pile of that name: NOT_FOUND; no controller: NO_RADIO", async () => {
  const c = await central();
  await assert.rejects(c.connect("NOBODY", { timeoutMs: 800 }), (e) => code(e) === "NOT_FOUND");
  const none = new NobleCentral({
    controller: { kind: "uart", path: `${radio.dir}/absent` },
    powerOnTimeoutMs: 500,
  });
  await assert.rejects(none.connect("X", { timeoutMs: 2000 }), (e) => code(e) === "NO_RADIO");
  await none.close();
});

test("two carriers at once on the emulated radio: the second gets no GATT service and times out, the first is unharmed", async () => {
  // btvirt 5.66 hands the peripheral's host the same connection handle (42) for every central,
  // so the second link's requests are never answered. On a stack with distinct handles both
  // connect and the pile answers the second BUSY; here the second carrier ends with a timeout.
  const { p } = await pile("CP-TWO");
  const c1 = await central();
  const c2 = await central();
  const first = await c1.connect("CP-TWO", { timeoutMs: 10_000 });
  await assert.rejects(c2.connect("CP-TWO", { timeoutMs: 1500 }), (e) => code(e) === "CONNECT_TIMEOUT");
  assert.deepEqual([...(await echo(first, Uint8Array.from([0x80, 7])))], [0x80, 7]);
  const stats = await p.stats();
  assert.equal(stats.duplicateAccepts, 1);
  assert.equal(stats.connections, 1);
  await first.close();
});

test("a btvirt that ends on its own is started again: its bridges come back on their same paths and a pile on one is found", async () => {
  const own = await startRadio();
  cleanups.push(() => own.close());
  const bridge = await own.bridge();
  const pid = own.btvirtPid;
  assert.ok(pid !== undefined, "btvirt's pid is known");
  process.kill(pid, "SIGSEGV"); // as the emulator has been seen to end
  const until = Date.now() + 30_000;
  while (own.restarts < 1 || own.btvirtPid === pid || !existsSync(bridge.path)) {
    assert.ok(Date.now() < until, `restarts ${own.restarts}, bridge path there: ${existsSync(bridge.path)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(own.restarts, 1);
  // the same path, a new controller behind it: a pile opened there advertises on the new air
  const p = new PeripheralProcess(bridge.path, "CP-RESET");
  cleanups.push(() => p.kill());
  await p.up();
  const cb = await own.bridge();
  const c = new NobleCentral({ controller: { kind: "uart", path: cb.path } });
  cleanups.push(async () => {
    await c.close();
    await cb.close();
  });
  const link = await c.connect("CP-RESET", { timeoutMs: 10_000 });
  const info = decodeInfo(await link.readInfo());
  assert.ok(info.ok);
  await link.close();
});
