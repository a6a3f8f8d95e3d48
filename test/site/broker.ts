/** A real mosquitto on a loopback port with a temp config and password file, for the MQTT tier. */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const MOSQUITTO = "/usr/sbin/mosquitto";
export const BROKER_USER = "pile";
export const BROKER_PASSWORD = "broker-pass-1";

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => resolve(typeof a === "object" && a ? a.port : 0));
    });
  });
}

/** A TLS listener's files (PEM): clients must show a certificate of `ca`; its CN is the username. */
export interface BrokerTls {
  ca: string;
  cert: string;
  key: string;
}

export class Broker {
  private proc: ChildProcess | undefined;
  readonly dir = mkdtempSync(join(tmpdir(), "piled-mqtt-"));
  port = 0;
  log = "";

  /** Without `tls`: plain MQTT with the password file; with it: MQTT over TLS, certificates only. */
  constructor(private readonly tls?: BrokerTls) {}

  get url(): string {
    return `${this.tls ? "mqtts" : "mqtt"}://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    if (!existsSync(MOSQUITTO))
      throw new Error(`${MOSQUITTO} is missing: install Debian's mosquitto (scripts/system-deps.txt)`);
    if (this.port === 0) this.port = await freePort();
    const pw = join(this.dir, "passwd");
    if (!existsSync(pw))
      execFileSync("mosquitto_passwd", ["-b", "-c", pw, BROKER_USER, BROKER_PASSWORD], { stdio: "ignore" });
    const conf = join(this.dir, "mosquitto.conf");
    const auth = this.tls
      ? [
          `cafile ${this.tls.ca}`,
          `certfile ${this.tls.cert}`,
          `keyfile ${this.tls.key}`,
          "require_certificate true",
          "use_identity_as_username true",
        ]
      : [`password_file ${pw}`];
    const lines = [
      `listener ${this.port} 127.0.0.1`,
      "allow_anonymous false",
      ...auth,
      "persistence false",
      "log_dest stderr",
      "log_type error",
      "log_type warning",
    ];
    // Run as root, mosquitto would change to its own user and not read the temp files.
    if (process.getuid?.() === 0) lines.push("user root");
    writeFileSync(conf, `${lines.join("\n")}\n`);
    const p = spawn(MOSQUITTO, ["-c", conf], { stdio: ["ignore", "ignore", "pipe"] });
    this.proc = p;
    p.stderr?.on("data", (d: Buffer) => {
      this.log += d.toString();
    });
    await this.waitListening();
  }

  private async waitListening(): Promise<void> {
    const { connect } = await import("node:net");
    for (let i = 0; i < 100; i++) {
      const ok = await new Promise<boolean>((resolve) => {
        const s = connect(this.port, "127.0.0.1");
        s.once("connect", () => {
          s.destroy();
          resolve(true);
        });
        s.once("error", () => resolve(false));
      });
      if (ok) return;
      if (this.proc?.exitCode !== null) throw new Error(`mosquitto exited: ${this.log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`mosquitto did not listen on ${this.port}: ${this.log}`);
  }

  /** SIGSTOP: the broker stalls (its sockets stay open, nothing is answered); SIGCONT resumes it. */
  signal(sig: "SIGSTOP" | "SIGCONT" | "SIGKILL"): void {
    this.proc?.kill(sig);
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    const gone = new Promise((r) => p.once("exit", r));
    p.kill("SIGTERM");
    p.kill("SIGCONT"); // a stalled broker acts on the SIGTERM only once resumed
    await gone;
  }

  async close(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
