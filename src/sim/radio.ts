/**
 * The emulated BLE radio: BlueZ's `btvirt` serving software LE controllers, one per process
 * that connects, each reached through a socat pty bridge as an H4 UART (what a USB/UART
 * controller running Zephyr's hci_uart presents on real hardware).
 *
 * Isolation: btvirt's socket paths are fixed (/tmp/bt-server-le). btvirt alone runs in a private
 * mount namespace (`unshare -m`) where a fresh directory is bind-mounted over /tmp, so its socket
 * appears outside at `<dir>/bt-server-le`; bridges (and so the daemon, the carriers, the tests)
 * run anywhere and connect to that real path. Each radio is its own air: runs never see each
 * other, nor the machine's real /tmp/bt-server-le.
 *
 * btvirt needs the kernel's AF_ALG crypto sockets; where they are absent an LD_PRELOAD shim
 * (radio/af_alg_shim.c, compiled once with gcc into a cache dir) lets the controllers start.
 *
 * Lifetime: btvirt runs under a small shell that kills it when its stdin closes, so the radio
 * goes away with the process that started it, even when that process is killed. Bridges end
 * when btvirt does. Everything started is stopped by PID in close().
 *
 * Run as a program (`node dist/src/sim/radio.js [--bridges N] [--watch-stdin]`) it starts a
 * radio, prints one JSON line `{"dir","socket","bridges":[paths]}` and runs until SIGTERM/SIGINT
 * (or, with --watch-stdin, until its stdin closes).
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { accessSync, constants, existsSync, lstatSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import { copyFile, mkdtemp, rm } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";

export type RadioErrorCode = "MISSING_TOOL" | "NOT_PERMITTED" | "START_FAILED" | "BRIDGE_FAILED" | "CLOSED";

export class RadioError extends Error {
  override readonly name = "RadioError";
  constructor(
    readonly code: RadioErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface RadioOptions {
  /** Where the compiled shim is cached. Default `$XDG_CACHE_HOME/piled` or `~/.cache/piled`. */
  cacheDir?: string;
  /** Parent of the radio's private directory. Default os.tmpdir(). */
  parentDir?: string;
  /** How long btvirt and each bridge may take to come up. Default 5000 ms. */
  startTimeoutMs?: number;
  /** The shim's C source; default src/sim/radio/af_alg_shim.c of this repository. */
  shimSourcePath?: string;
}

export interface RadioBridge {
  /** The pty to open as an H4 UART (`{ kind: "uart", path }`). */
  readonly path: string;
  /** socat's PID. */
  readonly pid: number;
  /** Ends the bridge, which destroys its controller (a killed peripheral stops advertising). */
  close(): Promise<void>;
}

export interface Radio {
  /** The private directory that is /tmp for btvirt. */
  readonly dir: string;
  /** btvirt's LE server socket, as seen from outside the namespace. */
  readonly socketPath: string;
  /** A new controller on this radio, behind a fresh pty. */
  bridge(): Promise<RadioBridge>;
  close(): Promise<void>;
}

/** Which Debian package brings each tool. */
const TOOLS: Array<[tool: string, pkg: string]> = [
  ["btvirt", "bluez-test-tools"],
  ["socat", "socat"],
  ["gcc", "gcc"],
  ["unshare", "util-linux"],
  ["mount", "mount"],
];

function findTool(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "/usr/bin:/bin").split(delimiter)) {
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return undefined;
}

/** Names every missing tool with its Debian package; throws MISSING_TOOL. */
export function checkRadioTools(): void {
  const missing = TOOLS.filter(([t]) => findTool(t) === undefined);
  if (missing.length > 0) {
    throw new RadioError(
      "MISSING_TOOL",
      `the emulated BLE radio needs ${missing.map(([t, p]) => `${t} (Debian package ${p})`).join(", ")}`,
    );
  }
}

function defaultShimSource(): string {
  // dist/src/sim/radio.js → repository root is three levels up; src/sim/radio.ts → two.
  const here = fileURLToPath(new URL(".", import.meta.url));
  for (const up of ["../../..", "../.."]) {
    const p = join(here, up, "src/sim/radio/af_alg_shim.c");
    if (existsSync(p)) return p;
  }
  throw new RadioError("START_FAILED", "src/sim/radio/af_alg_shim.c not found beside this module");
}

function defaultCacheDir(): string {
  return join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "piled");
}

/** Compiles the AF_ALG shim once per source version; returns the .so path. */
export function buildShim(opts: { cacheDir?: string; shimSourcePath?: string } = {}): string {
  const src = opts.shimSourcePath ?? defaultShimSource();
  const code = readFileSync(src);
  const tag = createHash("sha256").update(code).digest("hex").slice(0, 16);
  const dir = opts.cacheDir ?? defaultCacheDir();
  const out = join(dir, `af_alg_shim-${tag}.so`);
  if (existsSync(out)) return out;
  mkdirSync(dir, { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  const r = spawnSync("gcc", ["-shared", "-fPIC", "-O2", "-o", tmp, src, "-ldl"], { encoding: "utf8" });
  if (r.status !== 0) {
    throw new RadioError(
      "START_FAILED",
      `gcc could not build the AF_ALG shim: ${(r.stderr || String(r.error)).trim()}`,
    );
  }
  renameSync(tmp, out); // atomic: concurrent builders race harmlessly
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(pred: () => boolean, timeoutMs: number, gone: () => boolean): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (pred()) return true;
    if (gone()) return false;
    await sleep(10);
  }
  return pred();
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Sends SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
async function stopChild(child: ChildProcess, graceMs = 1000): Promise<void> {
  if (exited(child) || child.pid === undefined) return;
  const gone = new Promise<void>((r) => child.once("exit", () => r()));
  try {
    process.kill(child.pid, "SIGTERM");
  } catch {
    return;
  }
  const t = setTimeout(() => {
    if (!exited(child) && child.pid !== undefined) {
      try {
        process.kill(child.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }, graceMs);
  await gone;
  clearTimeout(t);
}

/** Runs btvirt in the namespace; kills it when stdin closes. $1 = the private dir. */
const SUPERVISOR = [
  'mount --bind "$1" /tmp || exit 97',
  "LD_PRELOAD=/tmp/af_alg_shim.so btvirt -s &",
  "pid=$!",
  'echo "btvirt $pid"',
  "trap 'kill $pid 2>/dev/null; exit 0' TERM INT",
  "read _ignored",
  'kill "$pid" 2>/dev/null',
  'wait "$pid"',
].join("\n");

/** The supervisor process in its namespace, with the tail of its stderr and btvirt's pid. */
interface Supervisor {
  sup: ChildProcess;
  stderr: () => string;
  btvirtPid: () => number | undefined;
}

function spawnSupervisor(dir: string): Supervisor {
  // Root uses a plain mount namespace; others ask for a user namespace that maps them to root.
  const nsArgs = process.getuid?.() === 0 ? ["-m"] : ["-r", "-m"];
  const sup = spawn("unshare", [...nsArgs, "--propagation", "private", "sh", "-c", SUPERVISOR, "sh", dir], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stderr = "";
  let btvirtPid: number | undefined;
  sup.stderr?.setEncoding("utf8").on("data", (d: string) => {
    stderr = (stderr + d).slice(-2000);
  });
  sup.stdout?.setEncoding("utf8").on("data", (d: string) => {
    const m = /btvirt (\d+)/.exec(d);
    if (m?.[1]) btvirtPid = Number(m[1]);
  });
  sup.on("error", () => {});
  sup.stdin?.on("error", () => {});
  return { sup, stderr: () => stderr, btvirtPid: () => btvirtPid };
}

/** Waits for btvirt's socket; when it does not come, cleans up and throws the reason. */
async function awaitServer(
  s: Supervisor,
  dir: string,
  socketPath: string,
  startTimeoutMs: number,
): Promise<void> {
  const { sup } = s;
  const isSocket = () => {
    try {
      return lstatSync(socketPath).isSocket();
    } catch {
      return false;
    }
  };
  const up = await waitFor(isSocket, startTimeoutMs, () => exited(sup));
  if (up) return;
  const code = sup.exitCode;
  await stopChild(sup);
  await rm(dir, { recursive: true, force: true });
  const stderr = s.stderr();
  if (code === 97 || /permission|not permitted/i.test(stderr)) {
    throw new RadioError(
      "NOT_PERMITTED",
      `cannot make a private mount namespace for btvirt (unshare -m needs root or user namespaces): ${stderr.trim()}`,
    );
  }
  throw new RadioError(
    "START_FAILED",
    `btvirt did not come up within ${startTimeoutMs} ms: ${stderr.trim()}`,
  );
}

/** One socat bridge: a pty at `path` connected to btvirt's socket. */
async function openBridge(
  path: string,
  socketPath: string,
  startTimeoutMs: number,
  bridges: Set<ChildProcess>,
): Promise<RadioBridge> {
  const child = spawn("socat", [`PTY,link=${path},raw,echo=0`, `UNIX-CONNECT:${socketPath}`], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let err = "";
  child.stderr?.setEncoding("utf8").on("data", (d: string) => {
    err = (err + d).slice(-1000);
  });
  child.on("error", () => {});
  bridges.add(child);
  child.once("exit", () => bridges.delete(child));
  const ok = await waitFor(
    () => existsSync(path),
    startTimeoutMs,
    () => exited(child),
  );
  if (!ok || child.pid === undefined) {
    await stopChild(child);
    throw new RadioError("BRIDGE_FAILED", `socat bridge to ${socketPath} did not come up: ${err.trim()}`);
  }
  const pid = child.pid;
  return { path, pid, close: () => stopChild(child) };
}

/** Stops the bridges, then the supervisor (btvirt killed outright if it lingers), then the folder. */
async function closeRadio(s: Supervisor, dir: string, bridges: Set<ChildProcess>): Promise<void> {
  const { sup } = s;
  await Promise.all([...bridges].map((b) => stopChild(b)));
  sup.stdin?.end();
  const done = await waitFor(
    () => exited(sup),
    2000,
    () => false,
  );
  if (!done) {
    const btvirtPid = s.btvirtPid();
    if (btvirtPid !== undefined) {
      try {
        process.kill(btvirtPid, "SIGKILL");
      } catch {
        // gone
      }
    }
    await stopChild(sup, 500);
  }
  await rm(dir, { recursive: true, force: true });
}

export async function startRadio(opts: RadioOptions = {}): Promise<Radio> {
  checkRadioTools();
  const startTimeoutMs = opts.startTimeoutMs ?? 5000;
  const shim = buildShim(opts);
  const dir = await mkdtemp(join(opts.parentDir ?? tmpdir(), "piled-radio-"));
  await copyFile(shim, join(dir, "af_alg_shim.so"));
  const socketPath = join(dir, "bt-server-le");
  const supervisor = spawnSupervisor(dir);
  await awaitServer(supervisor, dir, socketPath, startTimeoutMs);

  const bridges = new Set<ChildProcess>();
  let seq = 0;
  let closed = false;
  const bridge = async (): Promise<RadioBridge> => {
    if (closed) throw new RadioError("CLOSED", "the radio is closed");
    return openBridge(join(dir, `hci-${++seq}`), socketPath, startTimeoutMs, bridges);
  };
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await closeRadio(supervisor, dir, bridges);
  };
  return { dir, socketPath, bridge, close };
}

async function main(argv: string[]): Promise<void> {
  const i = argv.indexOf("--bridges");
  const n = i >= 0 ? Number(argv[i + 1]) : 0;
  if (!Number.isInteger(n) || n < 0 || n > 64) {
    process.stderr.write("usage: radio.js [--bridges N] [--watch-stdin]   (N in 0..64)\n");
    process.exit(2);
  }
  let radio: Radio;
  try {
    radio = await startRadio();
  } catch (e) {
    process.stderr.write(`radio: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  }
  const paths: string[] = [];
  for (let k = 0; k < n; k++) paths.push((await radio.bridge()).path);
  process.stdout.write(`${JSON.stringify({ dir: radio.dir, socket: radio.socketPath, bridges: paths })}\n`);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void radio.close().then(() => process.exit(0));
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  if (argv.includes("--watch-stdin")) {
    process.stdin.on("end", stop);
    process.stdin.on("error", stop);
    process.stdin.resume();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await main(process.argv.slice(2));
}
