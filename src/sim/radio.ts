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
 * when btvirt does. A btvirt that ends on its own while the radio is open is said on stderr and
 * started again, its bridges with it (see Air). Everything started is stopped by PID in close().
 *
 * Run as a program (`node dist/src/sim/radio.js [--bridges N] [--watch-stdin]`) it starts a
 * radio, prints one JSON line `{"dir","socket","bridges":[paths]}` and runs until SIGTERM/SIGINT
 * (or, with --watch-stdin, until its stdin closes).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, lstatSync, rmSync } from "node:fs";
import { copyFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { exited, stopChild, waitFor } from "./radio/proc.js";
import { buildShim, checkRadioTools, RadioError } from "./radio/tools.js";

export { buildShim, checkRadioTools, RadioError, type RadioErrorCode } from "./radio/tools.js";

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
  /** How often btvirt ended on its own and was started again. */
  readonly restarts: number;
  /** The running btvirt's pid (for diagnosis, and for a test that ends it). */
  readonly btvirtPid: number | undefined;
  close(): Promise<void>;
}

/**
 * Runs btvirt in the namespace until it ends, or until this shell's stdin closes (then it kills
 * btvirt); prints "btvirt PID" once it runs and "btvirt-exit STATUS" when it ended (128+N for
 * signal N). $1 = the private dir.
 */
const SUPERVISOR = [
  'mount --bind "$1" /tmp || exit 97',
  "exec 3<&0",
  "LD_PRELOAD=/tmp/af_alg_shim.so btvirt -s &",
  "pid=$!",
  'echo "btvirt $pid"',
  '( read _ignored <&3; kill "$pid" 2>/dev/null ) &',
  "reader=$!",
  "trap 'kill $pid 2>/dev/null' TERM INT",
  "st=0",
  'while kill -0 "$pid" 2>/dev/null; do wait "$pid"; st=$?; done',
  'kill "$reader" 2>/dev/null',
  'echo "btvirt-exit $st"',
].join("\n");

/** The supervisor process in its namespace, with the tail of its stderr and btvirt's pid. */
interface Supervisor {
  sup: ChildProcess;
  stderr: () => string;
  btvirtPid: () => number | undefined;
  /** btvirt's exit status once it ended (128+N for signal N). */
  btvirtExit: () => number | undefined;
}

function spawnSupervisor(dir: string): Supervisor {
  // Root uses a plain mount namespace; others ask for a user namespace that maps them to root.
  const nsArgs = process.getuid?.() === 0 ? ["-m"] : ["-r", "-m"];
  const sup = spawn("unshare", [...nsArgs, "--propagation", "private", "sh", "-c", SUPERVISOR, "sh", dir], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stderr = "";
  let out = "";
  sup.stderr?.setEncoding("utf8").on("data", (d: string) => {
    stderr = (stderr + d).slice(-2000);
  });
  sup.stdout?.setEncoding("utf8").on("data", (d: string) => {
    out = (out + d).slice(-200);
  });
  const num = (re: RegExp) => {
    const m = re.exec(out);
    return m?.[1] === undefined ? undefined : Number(m[1]);
  };
  sup.on("error", () => {});
  sup.stdin?.on("error", () => {});
  return {
    sup,
    stderr: () => stderr,
    btvirtPid: () => num(/btvirt (\d+)/),
    btvirtExit: () => num(/btvirt-exit (\d+)/),
  };
}

const isSocket = (p: string) => {
  try {
    return lstatSync(p).isSocket();
  } catch {
    return false;
  }
};

/** Waits for btvirt's socket; when it does not come, stops the supervisor and throws the reason. */
async function awaitServer(s: Supervisor, socketPath: string, startTimeoutMs: number): Promise<void> {
  const { sup } = s;
  const up = await waitFor(
    () => isSocket(socketPath),
    startTimeoutMs,
    () => exited(sup),
  );
  if (up) return;
  const code = sup.exitCode;
  await stopChild(sup);
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

/** socat: a pty at `path` (a link) connected to btvirt's socket; resolves once the link exists. */
async function spawnSocat(
  path: string,
  socketPath: string,
  startTimeoutMs: number,
): Promise<{ child: ChildProcess; ok: boolean; err: () => string }> {
  const child = spawn("socat", [`PTY,link=${path},raw,echo=0`, `UNIX-CONNECT:${socketPath}`], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let err = "";
  child.stderr?.setEncoding("utf8").on("data", (d: string) => {
    err = (err + d).slice(-1000);
  });
  child.on("error", () => {});
  const ok = await waitFor(
    () => existsSync(path),
    startTimeoutMs,
    () => exited(child),
  );
  return { child, ok: ok && child.pid !== undefined, err: () => err.trim() };
}

export async function startRadio(opts: RadioOptions = {}): Promise<Radio> {
  checkRadioTools();
  const startTimeoutMs = opts.startTimeoutMs ?? 5000;
  const shim = buildShim(opts);
  const dir = await mkdtemp(join(opts.parentDir ?? tmpdir(), "piled-radio-"));
  await copyFile(shim, join(dir, "af_alg_shim.so"));
  const socketPath = join(dir, "bt-server-le");
  const air = new Air(dir, socketPath, startTimeoutMs);
  try {
    await air.startServer();
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  return air;
}

/**
 * A running radio. When btvirt ends on its own (it is an emulator, and has crashed), it is said
 * on stderr with its exit status and started again in a new namespace on the same folder, and
 * every open bridge gets a new socat on its same path: to the hosts on it this is a controller
 * that reset (their UART goes away and comes back), which the pile's radio-down path handles.
 */
class Air implements Radio {
  #s: Supervisor | undefined;
  #closed = false;
  #seq = 0;
  #restarts = 0;
  #restarting: Promise<void> | undefined;
  readonly #bridges = new Map<string, ChildProcess>();

  constructor(
    readonly dir: string,
    readonly socketPath: string,
    private readonly startTimeoutMs: number,
  ) {}

  get restarts(): number {
    return this.#restarts;
  }

  get btvirtPid(): number | undefined {
    return this.#s?.btvirtPid();
  }

  async startServer(): Promise<void> {
    rmSync(this.socketPath, { force: true }); // a socket left by an ended btvirt
    const s = spawnSupervisor(this.dir);
    this.#s = s;
    await awaitServer(s, this.socketPath, this.startTimeoutMs);
    s.sup.once("exit", () => {
      if (this.#closed || this.#s !== s) return;
      this.#restarts++;
      process.stderr.write(
        `radio ${this.dir}: btvirt ended (status ${s.btvirtExit() ?? "unknown"}${s.stderr() ? `: ${s.stderr().trim().slice(-300)}` : ""}); starting it again\n`,
      );
      this.#restarting = this.startServer()
        .then(() => this.#reopenBridges())
        .catch((e) => {
          process.stderr.write(`radio ${this.dir}: restart failed: ${String(e)}\n`);
        })
        .finally(() => {
          this.#restarting = undefined;
        });
    });
  }

  /** New socats for the bridges whose socat ended with the old btvirt. */
  async #reopenBridges(): Promise<void> {
    for (const [path, child] of this.#bridges) {
      if (!exited(child))
        await waitFor(
          () => exited(child),
          2000,
          () => false,
        );
      if (this.#closed || this.#bridges.get(path) !== child) continue;
      const next = await spawnSocat(path, this.socketPath, this.startTimeoutMs);
      if (this.#closed || !this.#bridges.has(path)) {
        await stopChild(next.child);
        continue;
      }
      this.#bridges.set(path, next.child);
      if (!next.ok) process.stderr.write(`radio ${this.dir}: bridge ${path} not back: ${next.err()}\n`);
    }
  }

  async bridge(): Promise<RadioBridge> {
    if (this.#closed) throw new RadioError("CLOSED", "the radio is closed");
    await this.#restarting;
    const path = join(this.dir, `hci-${++this.#seq}`);
    const { child, ok, err } = await spawnSocat(path, this.socketPath, this.startTimeoutMs);
    if (!ok || child.pid === undefined) {
      await stopChild(child);
      throw new RadioError(
        "BRIDGE_FAILED",
        `socat bridge to ${this.socketPath} did not come up: ${err()}${this.#deadNote()}`,
      );
    }
    this.#bridges.set(path, child);
    const pid = child.pid;
    return {
      path,
      pid,
      close: async () => {
        const c = this.#bridges.get(path) ?? child;
        this.#bridges.delete(path);
        await stopChild(c);
      },
    };
  }

  #deadNote(): string {
    const s = this.#s;
    if (!s || !exited(s.sup)) return "";
    return ` (btvirt ended, status ${s.btvirtExit() ?? "unknown"})`;
  }

  /** Stops the bridges, then the supervisor (btvirt killed outright if it lingers), then the folder. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#restarting;
    const bridges = [...this.#bridges.values()];
    this.#bridges.clear();
    await Promise.all(bridges.map((b) => stopChild(b)));
    const s = this.#s;
    if (s) {
      s.sup.stdin?.end();
      const done = await waitFor(
        () => exited(s.sup),
        2000,
        () => false,
      );
      if (!done) {
        const btvirtPid = s.btvirtPid();
        if (btvirtPid !== undefined && s.btvirtExit() === undefined) {
          try {
            process.kill(btvirtPid, "SIGKILL");
          } catch {
            // gone
          }
        }
        await stopChild(s.sup, 500);
      }
    }
    await rm(this.dir, { recursive: true, force: true });
  }
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
