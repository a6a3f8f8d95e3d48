/**
 * The control socket records who ran an audited command: the peer's uid and pid from
 * SO_PEERCRED (the project's addon, src/native/peercred.c), down to the audit table.
 * The uid tier runs the built pilectl as `nobody` (setpriv), so it needs root.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { pileControl } from "../../src/daemon/control-impl.js";
import { startControlSocket } from "../../src/daemon/control-socket.js";
import { KeyDirectory } from "../../src/daemon/keys.js";
import { peerCred, peercredAddon, socketFd } from "../../src/daemon/peercred.js";
import { systemClock } from "../../src/hw/ports.js";
import { diskRig } from "./disk-rig.js";
import { repoRoot } from "./fake-pile-control.js";

const NOBODY = 65534;

test("the addon reads the peer's pid, uid and gid of an accepted socket, and refuses a bad fd", async (t) => {
  const a = peercredAddon();
  assert.ok(!(a instanceof Error), a instanceof Error ? a.message : "");
  assert.throws(() => a.peercred(-1), { code: "EINVAL" });
  assert.throws(() => a.peercred(0x7fff_fff0), { code: "EBADF" });
  const dir = mkdtempSync(join(tmpdir(), "piled-cred-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, "s.sock");
  const got = await new Promise<unknown>((resolve) => {
    const srv = createServer((s) => {
      assert.ok((socketFd(s) ?? -1) >= 0);
      resolve(peerCred(s));
      s.destroy();
      srv.close();
    });
    srv.listen(path, () => createConnection(path).on("error", () => {}));
  });
  assert.deepEqual(got, { pid: process.pid, uid: process.getuid!(), gid: process.getgid!() });
});

function run(cmd: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) =>
    execFile(cmd, args, { env: { ...process.env, PILED_SOCKET: "" } }, (e, out, err) =>
      resolve({ code: e ? ((e as { code?: number }).code ?? -1) : 0, out, err }),
    ),
  );
}

test("an audited command over the socket carries the client's uid: nobody 65534, root 0", async (t) => {
  if (process.getuid?.() !== 0) {
    t.skip("needs root: runs pilectl as nobody through setpriv");
    console.log("# skipped: not root, cannot run pilectl as another user");
    return;
  }
  const repo = await repoRoot(import.meta.url);
  const bin = join(repo, "dist/src/cli/pilectl.js");
  const r = await diskRig();
  t.after(() => r.close());
  const control = pileControl({
    runtime: r.runtime,
    store: r.store,
    keys: new KeyDirectory(r.config.keyDir),
    clock: systemClock,
    meterStaleMs: r.config.deadlines.meterStaleMs,
  });
  // The client reaches the socket through its group (nogroup), never through a world mode.
  chmodSync(r.config.stateDir, 0o711);
  const path = join(r.config.stateDir, "control.sock");
  const srv = await startControlSocket({ path, mode: 0o660, group: String(NOBODY), pile: control });
  t.after(() => srv.close());

  // The checkout may sit where nobody cannot reach it (under /root): the tree is bound onto a
  // folder nobody can enter, in a private mount namespace, and pilectl run from there.
  const code = mkdtempSync(join(tmpdir(), "piled-code-"));
  chmodSync(code, 0o755);
  t.after(() => rmSync(code, { recursive: true, force: true }));
  const script =
    'mount --bind "$0" "$1" && exec setpriv --reuid=65534 --regid=65534 --clear-groups "$2" "$1/dist/src/cli/pilectl.js" clear-fault all --socket "$3"';
  // Mutating commands, audited whether done or refused (nothing is latched, nothing runs).
  const n = await run("unshare", [
    "-m",
    "--propagation",
    "private",
    "sh",
    "-c",
    script,
    repo,
    code,
    process.execPath,
    path,
  ]);
  assert.doesNotMatch(n.err, /cannot connect/, n.err);
  const me = await run(process.execPath, [bin, "stop", "--socket", path]);
  assert.doesNotMatch(me.err, /cannot connect/, me.err);

  // The rows reach the store through the runtime (possibly deferred): wait for both.
  let rows = r.store.audit.list({ limit: 10 });
  for (let i = 0; i < 100 && rows.filter((a) => a.actor === "control").length < 2; i++) {
    await new Promise((res) => setTimeout(res, 50));
    rows = r.store.audit.list({ limit: 10 });
  }
  const ctl = rows.filter((a) => a.actor === "control");
  const byAction = new Map(ctl.map((a) => [a.action, a]));
  assert.equal(byAction.get("clear-fault")?.uid, NOBODY, `${JSON.stringify(ctl)} ${n.code} ${n.err}`);
  assert.equal(byAction.get("stop")?.uid, 0, JSON.stringify(ctl));
  for (const a of ctl) assert.ok((a.pid ?? 0) > 0, `pid of ${a.action}`);
  // Rows the socket did not make carry none.
  for (const a of rows.filter((x) => x.actor !== "control")) assert.equal(a.uid, null);

  // `pilectl log` shows who.
  const log = await run(process.execPath, [bin, "log", "10", "--socket", path]);
  assert.match(log.out, /control\(uid 65534 pid \d+\) clear-fault/);
  assert.match(log.out, /control\(uid 0 pid \d+\) stop/);
});
