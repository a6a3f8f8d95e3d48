/**
 * sd_notify(3) for a Type=notify unit: READY=1, WATCHDOG=1, STOPPING=1, STATUS=…
 *
 * A silent no-op when NOTIFY_SOCKET is unset (run by hand, in tests, under another supervisor).
 * Path sockets (what systemd itself hands a service: /run/systemd/notify) go straight from this
 * process through `unix-dgram`, so NotifyAccess=main holds. The `sd-notify` npm package would
 * need libsystemd-dev on the board; unix-dgram builds with nothing but a compiler.
 *
 * Abstract names (`@name`, used by some container managers) cannot be reached through
 * unix-dgram: it copies the address with strncpy and stops at the leading NUL. Those datagrams
 * are handed to `socat` (ABSTRACT-SENDTO), whose credentials are its own: a manager that checks
 * the sender's PID needs NotifyAccess=all in that setup.
 */
import { execFile } from "node:child_process";
import { createRequire } from "node:module";

interface DgramSocket {
  on(event: "error", listener: (e: Error) => void): void;
  send(buf: Buffer, offset: number, length: number, path: string, cb?: (e?: Error) => void): void;
  close(): void;
}
interface UnixDgram {
  createSocket(type: "unix_dgram", listener?: (msg: Buffer) => void): DgramSocket;
}

// unix-dgram is CommonJS without type declarations: typed here by the little we use.
const unixDgram = createRequire(import.meta.url)("unix-dgram") as UnixDgram;

export interface Notifier {
  /** Whether NOTIFY_SOCKET was set; false = every call is a no-op. */
  readonly enabled: boolean;
  ready(status?: string): void;
  watchdog(): void;
  stopping(status?: string): void;
  status(text: string): void;
  /** Sends raw assignments ("KEY=value" lines); resolves once handed to the kernel (or failed). */
  send(state: string): Promise<void>;
  close(): void;
}

export type NotifyErrorHandler = (e: Error) => void;

/** STATUS= is one line: newlines would start new assignments. */
const oneLine = (s: string): string => s.replace(/[\r\n]+/g, " ").slice(0, 1024);

export function createNotifier(
  env: NodeJS.ProcessEnv = process.env,
  onError: NotifyErrorHandler = () => {},
): Notifier {
  const target = env["NOTIFY_SOCKET"];
  if (target === undefined || target === "" || (!target.startsWith("/") && !target.startsWith("@"))) {
    const noop = async (): Promise<void> => {};
    return {
      enabled: false,
      ready: () => {},
      watchdog: () => {},
      stopping: () => {},
      status: () => {},
      send: noop,
      close: () => {},
    };
  }

  let sock: DgramSocket | undefined;
  const sendPath = (buf: Buffer): Promise<void> =>
    new Promise((resolve) => {
      try {
        if (!sock) {
          sock = unixDgram.createSocket("unix_dgram");
          sock.on("error", onError);
        }
        sock.send(buf, 0, buf.length, target, (e) => {
          if (e) onError(e);
          resolve();
        });
      } catch (e) {
        onError(e instanceof Error ? e : new Error(String(e)));
        resolve();
      }
    });

  const sendAbstract = (buf: Buffer): Promise<void> =>
    new Promise((resolve) => {
      const child = execFile("socat", ["-u", "STDIN", `ABSTRACT-SENDTO:${target.slice(1)}`], (e) => {
        if (e) onError(e);
        resolve();
      });
      child.stdin?.end(buf);
    });

  const send = (state: string): Promise<void> => {
    const buf = Buffer.from(state, "utf8");
    return target.startsWith("@") ? sendAbstract(buf) : sendPath(buf);
  };
  const fire = (state: string): void => {
    void send(state);
  };

  return {
    enabled: true,
    ready: (status) => fire(status === undefined ? "READY=1" : `READY=1\nSTATUS=${oneLine(status)}`),
    watchdog: () => fire("WATCHDOG=1"),
    stopping: (status) => fire(status === undefined ? "STOPPING=1" : `STOPPING=1\nSTATUS=${oneLine(status)}`),
    status: (text) => fire(`STATUS=${oneLine(text)}`),
    send,
    close: () => {
      try {
        sock?.close();
      } catch {
        // already closed
      }
      sock = undefined;
    },
  };
}

/**
 * How often to send WATCHDOG=1: half of WATCHDOG_USEC, when the watchdog is meant for this
 * process (WATCHDOG_PID unset or equal to `pid`); undefined when there is no watchdog.
 */
export function watchdogIntervalMs(
  env: NodeJS.ProcessEnv = process.env,
  pid: number = process.pid,
): number | undefined {
  const usec = env["WATCHDOG_USEC"];
  if (usec === undefined || !/^\d{1,15}$/.test(usec)) return undefined;
  const wpid = env["WATCHDOG_PID"];
  if (wpid !== undefined && wpid !== "" && wpid !== String(pid)) return undefined;
  const n = Number(usec);
  if (n <= 0) return undefined;
  return Math.max(1, Math.floor(n / 2000));
}

/**
 * Pings the watchdog every `watchdogIntervalMs()` while `healthy()` holds (a daemon whose main
 * loop is stuck stops pinging and is restarted). Returns the stop function.
 */
export function startWatchdog(
  notifier: Notifier,
  healthy: () => boolean = () => true,
  env: NodeJS.ProcessEnv = process.env,
): () => void {
  const every = watchdogIntervalMs(env);
  if (every === undefined || !notifier.enabled) return () => {};
  const t = setInterval(() => {
    if (healthy()) notifier.watchdog();
  }, every);
  t.unref();
  return () => clearInterval(t);
}
