/**
 * The uid, gid and pid of the process at the other end of an accepted Unix socket (SO_PEERCRED),
 * through the project's own addon src/native/peercred.c (Node has no API for it; the npm
 * `sockopt` package reads only 4 bytes, the pid). Built into dist/src/native by `npm run build`.
 */
import { createRequire } from "node:module";
import type { Socket } from "node:net";

export interface PeerCred {
  pid: number;
  uid: number;
  gid: number;
}

type Addon = { peercred(fd: number): PeerCred };

let addon: Addon | Error | undefined;

/** The addon, loaded once; an Error saying why when it cannot be. */
export function peercredAddon(): Addon | Error {
  if (addon === undefined) {
    try {
      addon = createRequire(import.meta.url)("../native/peercred.node") as Addon;
    } catch (e) {
      addon = new Error(
        `native peercred addon not loadable (run npm run build): ${e instanceof Error ? e.message : String(e)}`,
      );
    }
  }
  return addon;
}

/** The descriptor of a connected net.Socket, when it has one (Node's internal handle). */
export function socketFd(sock: Socket): number | undefined {
  const fd = (sock as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === "number" && Number.isInteger(fd) && fd >= 0 ? fd : undefined;
}

/** The peer's credentials, or an Error saying why they cannot be read. Never throws. */
export function peerCred(sock: Socket): PeerCred | Error {
  const a = peercredAddon();
  if (a instanceof Error) return a;
  const fd = socketFd(sock);
  if (fd === undefined) return new Error("socket has no descriptor");
  try {
    return a.peercred(fd);
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e));
  }
}
