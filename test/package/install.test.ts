/**
 * The package tier: `scripts/package/build-deb.sh` builds the .deb twice (the version of
 * package.json and a bumped one), and the real dpkg installs, upgrades and purges it in a copy of
 * this machine's root: an overlay (lower: /, upper: a tmpfs) in a private mount namespace, entered
 * with chroot. So the package meets a real Debian userland: its dependencies are checked against
 * the real dpkg database, its maintainer scripts run under /bin/sh with the real
 * systemd-sysusers and systemctl (offline: enable/disable only, nothing starts), and nothing
 * reaches the host (the namespace and its tmpfs go with the process holding them).
 *
 * Needs root (mount namespaces, overlayfs, chroot); without it the tier fails saying so.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const BUILD = join(ROOT, "scripts/package/build-deb.sh");
const VERSION = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version;
const BUMPED = `${VERSION}+upgrade1`;

let holder: ChildProcess | undefined;
let out = "";
let merged = "";
const debs: { v1: string; v2: string } = { v1: "", v2: "" };

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a shell command in the namespace; `chrooted`: inside the overlay root. */
function ns(cmd: string, chrooted = true): Run {
  assert.ok(holder?.pid, "the namespace holder is running");
  const argv = [
    "-t",
    String(holder.pid),
    "-m",
    // the holder's root and working directory, not the namespace's: the same thing on a machine,
    // but inside a chroot the namespace's root is the host's
    "-r",
    "-w",
    "--",
    ...(chrooted ? ["chroot", merged] : []),
    "sh",
    "-c",
    cmd,
  ];
  // The installed system runs as it would on a pile: without the test runner's preload, whose
  // file lives outside the overlay root.
  const { NODE_OPTIONS: _preload, ...env } = process.env;
  const r = spawnSync("nsenter", argv, { encoding: "utf8", timeout: 60_000, env });
  return { code: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

function nsOk(cmd: string, chrooted = true): string {
  const r = ns(cmd, chrooted);
  assert.equal(r.code, 0, `${cmd}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}

const exists = (p: string): boolean => ns(`test -e '${p}' || test -L '${p}'`).code === 0;
const stat = (p: string): string => nsOk(`stat -c '%a %U %G' '${p}'`).trim();
const WANTS = "/etc/systemd/system/multi-user.target.wants/piled.service";

function build(version: string): string {
  const r = spawnSync("bash", [BUILD, out], {
    encoding: "utf8",
    env: { ...process.env, PILED_PKG_VERSION: version, PILED_DEB_COMPRESS: "gzip" },
    timeout: 120_000,
  });
  assert.equal(r.status, 0, `build-deb failed:\n${r.stderr}`);
  return r.stdout.trim();
}

before(async () => {
  if (process.getuid?.() !== 0)
    throw new Error("the package tier needs root (unshare -m, overlayfs, chroot)");
  for (const tool of ["unshare", "nsenter", "dpkg-deb", "systemd-analyze"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0)
      throw new Error(`${tool} is missing (scripts/system-deps.txt; run scripts/ensure-system-deps.sh)`);
  }
  out = mkdtempSync(join(tmpdir(), "piled-deb-"));
  debs.v1 = build(VERSION);
  debs.v2 = build(BUMPED);
  merged = join(out, "ns/merged");
  // The holder makes the namespace and sleeps; its end (killed by PID) takes the mounts along.
  holder = spawn("unshare", ["-m", "--propagation", "private", "sleep", "600"], { stdio: "ignore" });
  await new Promise((r) => setTimeout(r, 200));
  const t = join(out, "ns");
  nsOk(
    [
      `mkdir -p ${t} && mount -t tmpfs -o size=512m tmpfs ${t}`,
      `mkdir ${t}/upper ${t}/work ${t}/merged ${t}/debs`,
      `mount -t overlay overlay -o lowerdir=/,upperdir=${t}/upper,workdir=${t}/work ${merged}`,
      `for d in proc sys dev; do mount --rbind /$d ${merged}/$d; done`,
      `mount -t tmpfs tmpfs ${merged}/run && mount -t tmpfs tmpfs ${merged}/tmp`,
      `cp ${debs.v1} ${debs.v2} ${merged}/tmp/`,
      // A root that has had piled before would hide what the package makes.
      `! chroot ${merged} getent passwd piled && ! test -e ${merged}/etc/piled`,
    ].join(" && "),
    false,
  );
});

after(() => {
  if (holder?.pid) process.kill(holder.pid, "SIGKILL");
  if (out) rmSync(out, { recursive: true, force: true });
});

const debIn = (p: string): string => `/tmp/${p.split("/").pop()}`;

test("install: files, modes, user and groups; nothing enabled without a config and a key", () => {
  const r = ns(`dpkg -i ${debIn(debs.v1)}`);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /piled: not enabled yet/);
  assert.equal(stat("/usr/bin/piled"), "755 root root");
  assert.equal(stat("/usr/bin/pilectl"), "755 root root");
  assert.equal(stat("/usr/lib/systemd/system/piled.service"), "644 root root");
  assert.equal(stat("/usr/lib/sysusers.d/piled.conf"), "644 root root");
  assert.equal(stat("/etc/udev/rules.d/99-piled.rules"), "644 root root");
  assert.ok(exists("/usr/share/piled/piled.example.json"));
  assert.ok(exists("/usr/lib/piled/node_modules/better-sqlite3/build/Release/better_sqlite3.node"));
  assert.ok(exists("/usr/lib/piled/dist/src/native/peercred.node"), "the peer-credential addon is shipped");
  assert.ok(!exists("/usr/lib/piled/node_modules/typescript"), "no dev dependency is shipped");
  assert.equal(stat("/etc/piled"), "750 root piled");
  assert.equal(stat("/etc/piled/keys"), "700 piled piled");
  assert.equal(stat("/var/lib/piled"), "750 piled piled");
  const pw = nsOk("getent passwd piled").trim().split(":");
  assert.equal(pw[6], "/usr/sbin/nologin");
  for (const g of ["gpio", "dialout"])
    assert.ok(nsOk(`id -nG piled`).split(/\s+/).includes(g), `piled in ${g}`);
  assert.ok(!exists(WANTS), "the unit is not enabled");
  assert.match(
    nsOk(`dpkg-query -W -f='\${Status} \${Version}' piled`),
    new RegExp(`install ok installed ${VERSION}`),
  );
});

test("the installed unit passes systemd-analyze verify; pilectl and the native modules run from the tree", () => {
  const v = ns(`systemd-analyze verify --root=${merged} piled.service`, false);
  assert.equal(v.code, 0, v.stdout + v.stderr);
  assert.equal((v.stdout + v.stderr).trim(), "", `verify printed warnings:\n${v.stdout}${v.stderr}`);
  assert.equal(nsOk("pilectl --version").trim(), `pilectl ${VERSION}`);
  assert.equal(nsOk("piled --version").trim(), `piled ${VERSION}`);
  // Each native module loads from the installed tree, as the piled user.
  const load = [
    "const r=require('module').createRequire('/usr/lib/piled/package.json');",
    "new (r('better-sqlite3'))(':memory:').prepare('select 1').get();",
    "r('@serialport/bindings-cpp'); r('unix-dgram');",
    "console.log('loaded')",
  ].join("");
  assert.equal(nsOk(`runuser -u piled -- node -e "${load}"`).trim(), "loaded");
});

test("upgrade keeps config, keys, the database and an edited conffile; enables once config and key exist", () => {
  nsOk(
    [
      "cp /usr/share/piled/piled.example.json /etc/piled/piled.json",
      "runuser -u piled -- pilectl key new --key-id 1 --out /etc/piled/keys/key-1.json",
      "printf 'db-bytes' > /var/lib/piled/piled.db && chown piled:piled /var/lib/piled/piled.db",
      "echo '# site edit' >> /etc/udev/rules.d/99-piled.rules",
    ].join(" && "),
  );
  const before = nsOk("sha256sum /etc/piled/piled.json /etc/piled/keys/key-1.json /var/lib/piled/piled.db");
  assert.equal(stat("/etc/piled/keys/key-1.json"), "600 piled piled");
  const r = ns(`dpkg -i ${debIn(debs.v2)}`);
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stdout, /not enabled yet/);
  assert.equal(
    nsOk("sha256sum /etc/piled/piled.json /etc/piled/keys/key-1.json /var/lib/piled/piled.db"),
    before,
  );
  assert.match(nsOk("tail -n1 /etc/udev/rules.d/99-piled.rules"), /# site edit/);
  assert.equal(stat("/etc/piled/keys"), "700 piled piled");
  assert.equal(stat("/var/lib/piled"), "750 piled piled");
  assert.ok(exists(WANTS), "the unit is enabled now");
  assert.equal(nsOk("pilectl --version").trim(), `pilectl ${BUMPED}`);
  // Disabled by the administrator, it stays disabled when the package is installed again.
  nsOk("systemctl disable piled.service 2>/dev/null");
  assert.ok(!exists(WANTS));
  nsOk(`dpkg -i ${debIn(debs.v2)} >/dev/null`);
  assert.ok(!exists(WANTS), "an administrator's disable survives an upgrade");
  nsOk("dpkg-reconfigure piled >/dev/null");
  assert.ok(exists(WANTS), "dpkg-reconfigure enables it again");
});

test("pilectl doctor from the installed tree, as piled: the installed modes pass, the absent hardware fails", () => {
  // The console's hash made as the README says, with the installed hash-secret tool.
  nsOk(
    [
      "printf 'technician-secret\\n' | node /usr/lib/piled/dist/src/daemon/console/hash-secret.js > /etc/piled/console.hash",
      "chown root:piled /etc/piled/console.hash && chmod 0640 /etc/piled/console.hash",
    ].join(" && "),
  );
  const d = ns("runuser -u piled -- pilectl doctor --config /etc/piled/piled.json");
  assert.equal(d.code, 1, d.stdout + d.stderr);
  const status = (n: string): string | undefined =>
    new RegExp(`^(ok|warn|fail)\\s+${n}\\s`, "m").exec(d.stdout)?.[1];
  assert.equal(status("config"), "ok", d.stdout);
  assert.equal(status("keys"), "ok", d.stdout);
  assert.equal(status("disk"), "ok", d.stdout);
  assert.equal(status("console"), "ok", d.stdout);
  assert.equal(status("gpio"), "fail", d.stdout);
  assert.equal(status("meter"), "fail", d.stdout);
});

test("purge removes what the package made; the user stays", () => {
  const r = ns("dpkg --purge piled");
  assert.equal(r.code, 0, r.stderr);
  for (const p of [
    "/usr/lib/piled",
    "/usr/bin/piled",
    "/usr/bin/pilectl",
    "/usr/lib/systemd/system/piled.service",
    "/usr/lib/sysusers.d/piled.conf",
    "/etc/udev/rules.d/99-piled.rules",
    "/usr/share/piled",
    "/etc/piled",
    "/var/lib/piled",
    WANTS,
  ])
    assert.ok(!exists(p), `${p} is gone`);
  assert.notEqual(ns(`dpkg-query -W -f='\${Status}' piled | grep -q 'install ok'`).code, 0);
  assert.equal(ns("getent passwd piled").code, 0, "the piled user is kept (Debian practice)");
});
