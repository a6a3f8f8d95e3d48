/**
 * Fuzzing over real links to the BUILT daemon (simulated plant and meter, BLE on the emulated
 * radio): control-socket requests (generated JSON requests of read-only commands, garbage,
 * overlong and unterminated lines) and Control writes over the air (random fragments, mutated
 * HELLO/PRESENT messages). After the sample: the daemon is alive, AVAILABLE, with the contactor
 * open and no session on record.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import type { SessionView, StatusView } from "../src/control/index.js";
import { requestControl } from "../src/control/index.js";
import { simPileConfig } from "../src/daemon/sim-config.js";
import { NobleCentral } from "../src/hw/ble/central.js";
import { fragment } from "../src/protocol/fragments.js";
import { encodeMessage } from "../src/protocol/index.js";
import { writeKeyFile } from "../src/sdk/keyfile.js";
import { startRadio } from "../src/sim/radio.js";
import type { FuzzTally } from "./core-fuzz.js";
import { mutate } from "./core-fuzz.js";
import { PILED, sleep } from "./rig.js";

const READ_ONLY = ["status", "meter", "sessions", "faults", "time", "log", "help", "keys", "nope", ""];

const requestArb = fc.oneof(
  fc
    .record({
      id: fc.oneof(fc.nat(), fc.string(), fc.jsonValue()),
      cmd: fc.oneof(fc.constantFrom(...READ_ONLY), fc.string({ maxLength: 20 })),
      args: fc.oneof(fc.array(fc.string({ maxLength: 30 }), { maxLength: 5 }), fc.jsonValue()),
    })
    .filter(
      (r) =>
        !["stop", "relay-test", "clear-fault", "sim"].includes(String(r.cmd)) &&
        !(r.cmd === "keys" && Array.isArray(r.args) && r.args.length > 0),
    )
    .map((r) => Buffer.from(`${JSON.stringify(r)}\n`)),
  fc
    .uint8Array({ maxLength: 200 })
    .map((b) => Buffer.concat([Buffer.from(b.filter((x) => x !== 10)), Buffer.from("\n")])),
  fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b.filter((x) => x !== 10))),
  fc.nat(200_000).map((n) => Buffer.concat([Buffer.alloc(n, 0x7b), Buffer.from("\n")])),
);

function oneRequest(path: string, bytes: Buffer): Promise<"answered" | "closed" | "hung"> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    let done = false;
    const end = (r: "answered" | "closed" | "hung") => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve(r);
    };
    const timer = setTimeout(
      () => end(bytes.includes(10) ? "hung" : "closed"),
      bytes.includes(10) ? 3000 : 300,
    );
    s.on("connect", () => s.write(bytes));
    s.on("data", (d: Buffer) => {
      if (d.includes(10)) end("answered");
    });
    s.on("error", () => end("closed"));
    s.on("close", () => end("closed"));
  });
}

async function control(path: string, cmd: string, args: string[] = []): Promise<unknown> {
  const r = await requestControl(path, cmd, args, 5000);
  if (!r.ok || !r.value.ok) throw new Error(`${cmd} failed: ${JSON.stringify(r)}`);
  return r.value.result;
}

export async function fuzzWire(
  o: { socket: number; radio: number; seed: number },
  t: FuzzTally,
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "piled-wire-"));
  const radio = await startRadio();
  let child: ChildProcess | undefined;
  try {
    const pileBridge = await radio.bridge();
    const carrierBridge = await radio.bridge();
    mkdirSync(join(dir, "keys"), { mode: 0o700 });
    const key = crypto.getRandomValues(new Uint8Array(32));
    const w = writeKeyFile(join(dir, "keys", "key-4.json"), 4, key);
    if (!w.ok) throw w.error;
    const pileId = "FUZZ-W";
    writeFileSync(
      join(dir, "piled.json"),
      JSON.stringify(simPileConfig({ pileId, dir, blePath: pileBridge.path })),
    );
    child = spawn(process.execPath, [PILED, "--config", join(dir, "piled.json")], { stdio: "ignore" });
    const sock = join(dir, "control.sock");
    const until = Date.now() + 30_000;
    for (;;) {
      const s = await requestControl(sock, "status", [], 2000);
      if (s.ok && s.value.ok && (s.value.result as StatusView).ble === "up") break;
      if (Date.now() > until || child.exitCode !== null) throw new Error("the daemon did not come up");
      await sleep(100);
    }
    for (const bytes of fc.sample(requestArb, { numRuns: o.socket, seed: o.seed })) {
      t.cases++;
      t.inputs++;
      // a blank line is no request: the daemon waits for one (counted)
      const blank = bytes.toString("latin1").trim() === "";
      const r = await oneRequest(sock, bytes);
      if (r === "answered") t.answered++;
      else if (r === "closed" || blank) t.counted++;
      else t.violations.push(`control socket: a terminated request got no answer (${bytes.length} bytes)`);
      if (child.exitCode !== null || child.signalCode !== null) {
        t.violations.push(`control socket: the daemon died on a ${bytes.length}-byte request`);
        return;
      }
    }
    await fuzzRadio(pileId, carrierBridge.path, o, t);
    const st = (await control(sock, "status")) as StatusView;
    if (st.contactor !== "open") t.violations.push(`wire: contactor ${st.contactor} after the fuzzing`);
    const ss = (await control(sock, "sessions", ["10"])) as SessionView[];
    if (ss.length > 0) t.violations.push(`wire: ${ss.length} session(s) opened by fuzzed input`);
    if (child.exitCode !== null || child.signalCode !== null) t.violations.push("wire: the daemon died");
  } finally {
    if (child?.pid && child.exitCode === null) {
      const gone = new Promise((r) => child!.once("exit", r));
      process.kill(child.pid, "SIGTERM");
      await gone;
    }
    await radio.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function fuzzRadio(
  pileId: string,
  path: string,
  o: { radio: number; seed: number },
  t: FuzzTally,
): Promise<void> {
  const hello = encodeMessage({
    type: "HELLO",
    version: 1,
    keyId: 4,
    codeId: new Uint8Array(16).fill(9),
    clientNonce: new Uint8Array(16).fill(3),
  });
  const writeArb = fc.oneof(
    fc.uint8Array({ minLength: 1, maxLength: 60 }).map((b) => [b]),
    fc
      .array(fc.record({ op: fc.constant("flip" as const), at: fc.nat(100), bit: fc.nat(7) }), {
        minLength: 1,
        maxLength: 3,
      })
      .map((m) => fragment(mutate(hello, m), 23)),
    fc.uint8Array({ minLength: 1, maxLength: 400 }).map((b) => fragment(b, 23)),
  );
  const central = new NobleCentral({ controller: { kind: "uart", path } });
  let link: Awaited<ReturnType<NobleCentral["connect"]>> | undefined;
  let notes = 0;
  try {
    for (const frags of fc.sample(writeArb, { numRuns: o.radio, seed: o.seed })) {
      if (!link) {
        link = await central.connect(pileId, { timeoutMs: 15_000 });
        link.onNotify(() => notes++);
        const l = link;
        link.onDisconnect(() => {
          if (link === l) link = undefined;
        });
      }
      t.cases++;
      t.inputs++;
      const before = notes;
      try {
        for (const f of frags) await link.write(f);
      } catch {
        // the pile may drop a link that misbehaves: counted
      }
      await sleep(150);
      if (notes > before) t.answered++;
      else t.counted++;
    }
  } finally {
    await link?.close().catch(() => undefined);
    await central.close().catch(() => undefined);
  }
}
