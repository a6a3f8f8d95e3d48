/**
 * Security profile 3 end to end: the built daemon dials wss:// and shows the station's client
 * certificate (`ocpp.certFile`, `ocpp.keyFile`), with no Basic auth. A test CA signs the CSMS's
 * server certificate and the station's; a second CA with the same name signs a station
 * certificate with the same CN. The Python CSMS requires a client certificate of the first CA
 * (`csms.py --client-ca`). Refused: no certificate, the other CA's, a key file group/other may
 * read (before anything is touched). No BLE session: no carrier is opened.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, test } from "node:test";
import { formatResult } from "../../src/control/index.js";
import type { OcppView } from "../../src/daemon/ocpp-glue.js";
import { PILED } from "../helpers/pile-proc.js";
import { Csms, freePort, requireVenv } from "../peers/ocpp/csms-proc.js";
import { OcppPile } from "./ocpp-pile.js";

const IDENT = "pile-mtls";
const PASSWORD = "tls-profile-3-unused-password";
const dir = mkdtempSync(join(tmpdir(), "piled-ocpp-mtls-"));
let port: number;
let pile: OcppPile;
const all: Csms[] = [];

const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/** A certificate for `subject` signed by the CA `ca`, with the extensions `ext`. */
function sign(ca: string, name: string, subject: string, ext: string): { cert: string; key: string } {
  openssl("req", ...EC, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subject);
  writeFileSync(join(dir, `${name}.ext`), ext);
  const caArgs = ["-CA", `${ca}-ca.pem`, "-CAkey", `${ca}-ca.key`, "-CAcreateserial", "-days", "2"];
  openssl("x509", "-req", "-in", `${name}.csr`, ...caArgs, "-extfile", `${name}.ext`, "-out", `${name}.pem`);
  chmodSync(join(dir, `${name}.key`), 0o600);
  return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
}

/** A self-signed CA `name` (one subject for both CAs: only the signature tells them apart). */
function makeCa(name: string): string {
  const ca = ["-subj", "/CN=Operator CA", "-days", "2"];
  openssl("req", "-x509", ...EC, ...ca, "-keyout", `${name}-ca.key`, "-out", `${name}-ca.pem`);
  return join(dir, `${name}-ca.pem`);
}

let operatorCa: string;
let server: { cert: string; key: string };
let station: { cert: string; key: string };
let rogueStation: { cert: string; key: string };
let looseKey: string;

before(async () => {
  requireVenv();
  operatorCa = makeCa("operator");
  makeCa("rogue");
  server = sign("operator", "csms", "/CN=localhost", "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  const client = `subjectAltName=DNS:${IDENT}\nextendedKeyUsage=clientAuth\n`;
  station = sign("operator", "station", `/CN=${IDENT}`, client);
  rogueStation = sign("rogue", "rogue-station", `/CN=${IDENT}`, client);
  looseKey = join(dir, "loose.key");
  writeFileSync(looseKey, readFileSync(station.key));
  chmodSync(looseKey, 0o644);
  port = await freePort();
  pile = new OcppPile({ csmsPort: port, identity: IDENT, password: PASSWORD });
  await pile.init();
});

after(async () => {
  await pile?.stop();
  for (const c of all) await c.stop().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

// Each test ends with the daemon and the CSMS stopped, whatever failed (the port is reused).
afterEach(async () => {
  await pile.kill("SIGTERM").catch(() => undefined);
  for (const c of all) await c.stop().catch(() => undefined);
});

const configPath = () => join(pile.dir, "piled.json");

/** The daemon's `ocpp` section, written over the one OcppPile made (profile 3: no passwordFile). */
function setOcpp(o: Record<string, unknown>): void {
  const c = JSON.parse(readFileSync(configPath(), "utf8")) as { ocpp: Record<string, unknown> };
  const base: Record<string, unknown> = {
    ...c.ocpp,
    url: `wss://127.0.0.1:${port}`,
    caFile: operatorCa,
    passwordFile: join(pile.dir, "ocpp-password"),
  };
  delete base.certFile;
  delete base.keyFile;
  c.ocpp = { ...base, ...o };
  for (const [k, v] of Object.entries(c.ocpp)) if (v === undefined) delete c.ocpp[k];
  writeFileSync(configPath(), `${JSON.stringify(c, null, 2)}\n`);
}

const profile3 = (pki: { cert: string; key: string }) =>
  setOcpp({ securityProfile: 3, passwordFile: undefined, certFile: pki.cert, keyFile: pki.key });

/** The CSMS asking for a client certificate of the operator's CA; Basic auth only with a password. */
async function mtlsCsms(password: string): Promise<Csms> {
  const c = new Csms(
    port,
    IDENT,
    password,
    { status: "Accepted", interval: 300 },
    {
      ...server,
      clientCa: operatorCa,
    },
  );
  all.push(c);
  await c.start();
  return c;
}

const waitView = (ok: (v: OcppView) => boolean, what: string) => pile.waitOcpp(ok, what);

/** The base64 lines of a PEM key: none may appear in any output. */
const keyLines = (path: string) =>
  readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l.length > 20 && !l.startsWith("-----"));

function assertNoKeyIn(text: string): void {
  for (const path of [station.key, rogueStation.key])
    for (const l of keyLines(path)) assert.ok(!text.includes(l), "no private key content in the output");
}

test("a client key file group/other may read (0644) refuses the configuration: exit 2, the file named, nothing touched", () => {
  setOcpp({ securityProfile: 3, passwordFile: undefined, certFile: station.cert, keyFile: looseKey });
  const r = spawnSync(process.execPath, [PILED, "--config", configPath()], {
    encoding: "utf8",
    timeout: 30_000,
  });
  assert.equal(r.status, 2, `exit code; stderr: ${r.stderr}`);
  assert.match(r.stderr, /OCPP refused, nothing was touched/);
  assert.ok(r.stderr.includes(`OCPP client key file ${looseKey} has mode 0644`), r.stderr);
  assert.equal(existsSync(join(pile.dir, "state")), false, "no state directory, no database");
  assert.equal(existsSync(join(pile.dir, "control.sock")), false, "no control socket");
  assertNoKeyIn(r.stdout + r.stderr);
});

test("no client certificate (profile 2 against a profile 3 CSMS): the CSMS refuses the handshake, pilectl ocpp says why", async (t) => {
  setOcpp({ securityProfile: 2 });
  const csms = await mtlsCsms(PASSWORD);
  await pile.spawn();
  const v = await waitView((x) => x.counters.connectFailures >= 2, "two refused connects");
  assert.equal(v.link, "closed");
  assert.equal(v.counters.connects, 0);
  t.diagnostic(`station: ${v.lastError}`);
  assert.match(v.lastError ?? "", /^TLS: the CSMS requires a client certificate/);
  assert.match(formatResult("ocpp", v), /last error TLS: the CSMS requires a client certificate/);
  assert.ok(
    csms.lines.some((l) => l.tlsRefused !== undefined),
    `CSMS refused: ${JSON.stringify(csms.lines)}`,
  );
  assert.ok(!csms.lines.some((l) => l.connected !== undefined), "no WebSocket was opened");
  assert.equal(csms.callsIn().length, 0);
});

test("a client certificate another CA signed (same CA name, same CN): refused, pilectl ocpp says the CSMS refused it", async (t) => {
  profile3(rogueStation);
  const csms = await mtlsCsms("");
  await pile.spawn();
  const v = await waitView((x) => x.counters.connectFailures >= 2, "two refused connects");
  assert.equal(v.link, "closed");
  assert.equal(v.counters.connects, 0);
  t.diagnostic(`station: ${v.lastError}`);
  assert.match(v.lastError ?? "", /^TLS: the CSMS refused the station's client certificate/);
  assert.match(formatResult("ocpp", v), /last error TLS: the CSMS refused the station's client certificate/);
  const refused = csms.lines.filter((l) => l.tlsRefused !== undefined);
  assert.ok(refused.length > 0, `CSMS refused: ${JSON.stringify(csms.lines)}`);
  t.diagnostic(`CSMS: ${JSON.stringify(refused[0])}`);
  assert.match(String(refused[0]!.tlsRefused), /CERTIFICATE_VERIFY_FAILED/);
  assert.ok(!csms.lines.some((l) => l.connected !== undefined), "no WebSocket was opened");
});

test("the station's certificate the operator's CA signed: wss:// up without Basic auth, the CSMS saw the station's CN, boot and status", async () => {
  profile3(station);
  const csms = await mtlsCsms("");
  await pile.spawn();
  await csms.until(() => csms.callsIn("BootNotification").length > 0, 20_000, "BootNotification over mTLS");
  await csms.until(() => csms.callsIn("StatusNotification").length > 0, 20_000, "StatusNotification");
  const v = await waitView((x) => x.link === "open" && x.boot === "Accepted", "link open");
  assert.equal(v.counters.connects, 1);
  const conn = csms.lines.find((l) => l.connected !== undefined);
  assert.deepEqual(
    {
      connected: conn?.connected,
      protocol: conn?.protocol,
      peerCN: conn?.peerCN,
      basicAuth: conn?.basicAuth,
    },
    { connected: IDENT, protocol: "ocpp2.0.1", peerCN: IDENT, basicAuth: false },
  );
  assert.ok(!csms.lines.some((l) => l.tlsRefused !== undefined));
  assert.deepEqual(
    csms.records.filter((r) => r.dir === "in").flatMap((r) => r.schemaErrors ?? []),
    [],
  );
  assertNoKeyIn(pile.out + csms.stderr);
});
