/**
 * The pymodbus slave (slave.py) as a child process: started on a pty end, resolved once it says
 * "ready", stopped by its PID. Used by the peer tier and by the set-up tier.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "..");
export const SLAVE_SCRIPT = join(root, "test", "peers", "modbus", "slave.py");
/** The peer's interpreter: Debian's, or PILED_PEER_PYTHON (e.g. a wrapper that runs it in another release's root). */
export const PEER_PYTHON = process.env.PILED_PEER_PYTHON ?? "/usr/bin/python3";

export interface SlaveOptions {
  port: string;
  model: string;
  unit?: number;
  values: object;
  faultFile: string;
  /** Where the slave writes the files of every module it loaded, before it says "ready". */
  modulesOut?: string;
}

export async function startSlave(o: SlaveOptions): Promise<ChildProcess> {
  writeFileSync(o.faultFile, "none");
  const args = [
    SLAVE_SCRIPT,
    "--port",
    o.port,
    "--model",
    o.model,
    "--unit",
    String(o.unit ?? 1),
    "--values",
    JSON.stringify(o.values),
    "--fault-file",
    o.faultFile,
    ...(o.modulesOut !== undefined ? ["--modules-out", o.modulesOut] : []),
  ];
  const child = spawn(PEER_PYTHON, args, { stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  child.stderr?.on("data", (d: Buffer) => {
    err += d.toString();
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`pymodbus slave not ready: ${err}`)), 15_000);
    child.stdout?.on("data", (d: Buffer) => {
      if (d.toString().includes("ready")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`pymodbus slave exited (${code}): ${err}`));
    });
  });
  return child;
}

export async function stopSlave(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const gone = new Promise<void>((r) => child.once("exit", () => r()));
  process.kill(child.pid, "SIGTERM");
  await gone;
}
