/**
 * The built daemon with OCPP on, as its own process on the simulated plant and the emulated BLE
 * radio (like test/helpers/pile-proc.ts), in a folder that outlives the process: it can be
 * SIGKILLed and started again on the same state. Torn down by PID in stop().
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { SessionView, StatusView } from "../../src/control/index.js";
import { requestControl } from "../../src/control/index.js";
import type { OcppView } from "../../src/daemon/ocpp-glue.js";
import { simPileConfig } from "../../src/daemon/sim-config.js";
import { Issuer } from "../../src/sdk/issuer.js";
import { writeKeyFile } from "../../src/sdk/keyfile.js";
import { SimCarrier } from "../../src/sim/carriers.js";
import { checkRadioTools, type Radio, type RadioBridge, startRadio } from "../../src/sim/radio.js";
import { PILED } from "../helpers/pile-proc.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface OcppPileOptions {
  csmsPort: number;
  identity: string;
  password: string;
  ocpp?: Record<string, unknown>;
}

export class OcppPile {
  readonly dir = mkdtempSync(join(tmpdir(), "piled-ocpp-e2e-"));
  readonly pileId = `OC-${randomBytes(3).toString("hex").toUpperCase()}`;
  readonly key = new Uint8Array(randomBytes(32));
  readonly issuer = new Issuer({ keys: [{ keyId: 1, key: this.key }] });
  child: ChildProcess | undefined;
  out = "";
  private radio: Radio | undefined;
  private bridges: RadioBridge[] = [];
  private carriers: SimCarrier[] = [];
  private configPath = join(this.dir, "piled.json");

  constructor(private readonly o: OcppPileOptions) {}

  async init(): Promise<void> {
    checkRadioTools();
    this.radio = await startRadio();
    mkdirSync(join(this.dir, "keys"), { mode: 0o700 });
    const w = writeKeyFile(join(this.dir, "keys", "key-1.json"), 1, this.key);
    if (!w.ok) throw w.error;
    writeFileSync(join(this.dir, "ocpp-password"), `${this.o.password}\n`, { mode: 0o600 });
    const pileBridge = await this.bridge();
    const config = {
      ...simPileConfig({ pileId: this.pileId, dir: this.dir, blePath: pileBridge.path, meterPollMs: 200 }),
      ocpp: {
        enabled: true,
        url: `ws://127.0.0.1:${this.o.csmsPort}`,
        identity: this.o.identity,
        securityProfile: 1,
        passwordFile: join(this.dir, "ocpp-password"),
        backoffInitialMs: 100,
        backoffMaxMs: 500,
        bootRetryS: 1,
        meterValueIntervalS: 1,
        callTimeoutMs: 5000,
        ...this.o.ocpp,
      },
    };
    writeFileSync(this.configPath, `${JSON.stringify(config, null, 2)}\n`);
  }

  async bridge(): Promise<RadioBridge> {
    const b = await this.radio!.bridge();
    this.bridges.push(b);
    return b;
  }

  /** A vehicle carrier on a bridge of its own; its close() also closes the bridge. */
  async carrier(name: string): Promise<SimCarrier> {
    const b = await this.bridge();
    const c = new SimCarrier(name, "vehicle", { kind: "uart", path: b.path });
    const close = c.close.bind(c);
    c.close = async () => {
      this.carriers = this.carriers.filter((x) => x !== c);
      this.bridges = this.bridges.filter((x) => x !== b);
      await close().catch(() => undefined);
      await b.close().catch(() => undefined);
    };
    this.carriers.push(c);
    return c;
  }

  /** Spawns the daemon and waits until it answers `status` AVAILABLE with BLE up. */
  async spawn(timeoutMs = 30_000): Promise<void> {
    const child = spawn(process.execPath, [PILED, "--config", this.configPath], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    child.on("error", () => {});
    const keep = (b: Buffer) => {
      this.out = (this.out + b.toString()).slice(-300_000);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    const by = Date.now() + timeoutMs;
    for (;;) {
      const r = await requestControl(join(this.dir, "control.sock"), "status", [], 2000);
      if (r.ok && r.value.ok) {
        const s = r.value.result as StatusView;
        if (s.ble === "up" && s.state === "AVAILABLE") return;
      }
      if (child.exitCode !== null || child.signalCode !== null || Date.now() > by)
        throw new Error(`piled did not come up:\n${this.out.split("\n").slice(-30).join("\n")}`);
      await sleep(100);
    }
  }

  /** Resolves when the daemon exited (by itself or a signal sent here). */
  async exited(timeoutMs = 20_000): Promise<{ code: number | null; signal: string | null }> {
    const c = this.child;
    if (c === undefined) return { code: null, signal: null };
    if (c.exitCode === null && c.signalCode === null)
      await Promise.race([new Promise((r) => c.once("exit", r)), sleep(timeoutMs)]);
    return { code: c.exitCode, signal: c.signalCode };
  }

  async kill(signal: NodeJS.Signals): Promise<void> {
    const c = this.child;
    if (c?.pid === undefined || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise((r) => c.once("exit", r));
    process.kill(c.pid, signal);
    await gone;
  }

  async control(cmd: string, args: string[] = []): Promise<unknown> {
    const r = await requestControl(join(this.dir, "control.sock"), cmd, args, 10_000);
    if (!r.ok) {
      await sleep(500);
      const c = this.child;
      throw new Error(
        `${cmd}: ${r.error.code} ${r.error.message} (daemon exit ${c?.exitCode ?? c?.signalCode ?? "none"}):\n${this.out.split("\n").slice(-40).join("\n")}`,
      );
    }
    if (!r.value.ok) throw new Error(`${cmd}: ${r.value.error.code} ${r.value.error.message}`);
    return r.value.result;
  }

  status = async () => (await this.control("status")) as StatusView;
  ocpp = async () => (await this.control("ocpp")) as OcppView;

  /** Asks `pilectl ocpp`'s view again every 100 ms until `ok`, for at most 20 s. */
  async waitOcpp(ok: (v: OcppView) => boolean, what: string): Promise<OcppView> {
    const end = Date.now() + 20_000;
    for (;;) {
      const v = await this.ocpp();
      if (ok(v)) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
      await sleep(100);
    }
  }
  sessions = async (n = 10) => (await this.control("sessions", [String(n)])) as SessionView[];

  async waitStatus(pred: (s: StatusView) => boolean, timeoutMs = 20_000): Promise<StatusView> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const s = await this.status();
      if (pred(s)) return s;
      if (Date.now() > end) throw new Error(`status never matched; last ${JSON.stringify(s)}`);
      await sleep(100);
    }
  }

  /** A vehicle carrier unlocks with a fresh code; resolves once charging with energy > 0. */
  async startSession(c: SimCarrier): Promise<{ sessionId: string; codeId: string }> {
    const issued = this.issuer.issueFor({
      deviceId: "LSVAU2180N2183294",
      pileId: this.pileId,
      validForS: 600,
      vehicle: { inAcquisitionState: true },
    });
    if (!issued.ok) throw new Error(`issue: ${JSON.stringify(issued.error)}`);
    c.receive(issued.value);
    const o = await c.unlock(() => {});
    if (o.kind !== "accepted") throw new Error(`unlock: ${JSON.stringify(o)}`);
    await this.waitStatus((s) => s.state === "CHARGING" && (s.session?.energyWh ?? 0) > 0);
    return {
      sessionId: Buffer.from(o.sessionId).toString("hex"),
      codeId: Buffer.from(issued.value.codeId).toString("hex"),
    };
  }

  async stop(): Promise<void> {
    await this.kill("SIGTERM").catch(() => undefined);
    for (const c of this.carriers.splice(0)) await c.close().catch(() => undefined);
    for (const b of this.bridges.splice(0)) await b.close().catch(() => undefined);
    await this.radio?.close().catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
