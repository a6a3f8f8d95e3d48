/**
 * The Python test CSMS (csms.py, mobilityhouse `ocpp` in .venv-peers) as a child process: every
 * frame it saw is kept in `records`, each with the errors of its second, independent schema
 * check; commands go over stdin. Stopped by its PID.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "..");
export const CSMS_SCRIPT = join(root, "test", "peers", "ocpp", "csms.py");
export const VENV_PYTHON = join(root, ".venv-peers", "bin", "python");

export function requireVenv(): void {
  if (!existsSync(VENV_PYTHON))
    throw new Error(
      `the OCPP peer needs ${VENV_PYTHON}: run scripts/ensure-python-venv.sh (npm pretest does)`,
    );
}

export interface Rec {
  dir: "in" | "out";
  size: number;
  frame: unknown;
  schemaErrors: string[] | null;
}

export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => resolve(typeof a === "object" && a !== null ? a.port : 0));
    });
  });
}

export class Csms {
  readonly records: Rec[] = [];
  readonly lines: Record<string, unknown>[] = [];
  private child: ChildProcess | undefined;
  private nextId = 1;
  private waiters: { ok: () => boolean; resolve: () => void }[] = [];
  stderr = "";

  constructor(
    readonly port: number,
    readonly user: string,
    readonly password: string,
    readonly boot: { status: string; interval: number } = { status: "Accepted", interval: 300 },
    /**
     * PEM files of the server's certificate chain and key: the CSMS then serves wss:// only; with
     * `clientCa` it requires a client certificate that CA signed (security profile 3).
     */
    readonly tls?: { cert: string; key: string; clientCa?: string },
  ) {}

  async start(): Promise<void> {
    const child = spawn(
      VENV_PYTHON,
      [
        CSMS_SCRIPT,
        "--port",
        String(this.port),
        "--user",
        this.user,
        // An empty password: no Basic auth asked (security profile 3).
        ...(this.password !== "" ? ["--password", this.password] : []),
        "--boot-status",
        this.boot.status,
        "--interval",
        String(this.boot.interval),
        ...(this.tls ? ["--cert", this.tls.cert, "--key", this.tls.key] : []),
        ...(this.tls?.clientCa !== undefined ? ["--client-ca", this.tls.clientCa] : []),
      ],
      { stdio: ["pipe", "pipe", "pipe"] },
    );
    this.child = child;
    child.stderr?.on("data", (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-20_000);
    });
    createInterface({ input: child.stdout! }).on("line", (l) => {
      const m = JSON.parse(l) as Record<string, unknown>;
      this.lines.push(m);
      if (m.rec !== undefined) this.records.push(m.rec as Rec);
      const done = this.waiters.filter((w) => w.ok());
      this.waiters = this.waiters.filter((w) => !done.includes(w));
      for (const w of done) w.resolve();
    });
    await this.until(() => this.lines.some((l) => l.ready !== undefined), 15_000, "CSMS ready");
  }

  /** Resolves once `ok()` holds (checked after every line), or fails after `ms`. */
  async until(ok: () => boolean, ms: number, what: string): Promise<void> {
    if (ok()) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out waiting for ${what}; stderr: ${this.stderr}`)),
        ms,
      );
      this.waiters.push({
        ok,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  private async command(cmd: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    this.child?.stdin?.write(`${JSON.stringify({ id, ...cmd })}\n`);
    await this.until(
      () => this.lines.some((l) => l.id === id),
      20_000,
      `answer to ${JSON.stringify(cmd).slice(0, 80)}`,
    );
    return this.lines.find((l) => l.id === id) as Record<string, unknown>;
  }

  call(action: string, params: Record<string, unknown>) {
    return this.command({ call: action, params });
  }

  /** Sends a raw frame; "@PAD@" in it becomes `pad` x's (a huge frame without a huge command line). */
  raw(text: string, timeout = 5, pad = 0) {
    return this.command({ raw: text, timeout, pad });
  }

  set(s: Record<string, unknown>) {
    return this.command({ set: s });
  }

  /** Calls (type 2) the station sent, as [action, payload]. */
  callsIn(action?: string): Record<string, unknown>[] {
    return this.records
      .filter(
        (r) =>
          r.dir === "in" && Array.isArray(r.frame) && r.frame[0] === 2 && (!action || r.frame[2] === action),
      )
      .map((r) => (r.frame as unknown[])[3] as Record<string, unknown>);
  }

  async stop(): Promise<void> {
    const c = this.child;
    if (c === undefined || c.exitCode !== null) return;
    const done = new Promise((r) => c.once("exit", r));
    if (c.pid !== undefined) process.kill(c.pid, "SIGTERM");
    await done;
  }
}
