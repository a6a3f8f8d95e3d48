/**
 * Security profile 2 end to end: the built daemon dials wss:// with HTTP Basic auth and trusts
 * only the operator's CA (`ocpp.caFile`). A test CA and server certificates are made here with
 * the openssl CLI; the Python CSMS serves TLS with them. A CSMS whose certificate another CA
 * signed is refused (no link, a clear error in `pilectl ocpp` and the log); the right one works.
 * No BLE session: no carrier is opened.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { formatResult } from "../../src/control/index.js";
import type { OcppView } from "../../src/daemon/ocpp-glue.js";
import { Csms, freePort, requireVenv } from "../peers/ocpp/csms-proc.js";
import { OcppPile } from "./ocpp-pile.js";

const IDENT = "pile-tls";
const PASSWORD = "tls-profile-2-password";
const dir = mkdtempSync(join(tmpdir(), "piled-ocpp-tls-"));
let port: number;
let pile: OcppPile;
const all: Csms[] = [];

const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });

/** A self-signed CA `name` and a server certificate for 127.0.0.1 / localhost signed by it. */
function makeCa(name: string): { ca: string; cert: string; key: string } {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  // One subject for both CAs: only the signature tells them apart.
  const ca = ["-subj", "/CN=Operator CA", "-days", "2"];
  openssl("req", "-x509", ...ec, ...ca, "-keyout", `${name}-ca.key`, "-out", `${name}-ca.pem`);
  openssl("req", ...ec, "-keyout", `${name}-srv.key`, "-out", `${name}-srv.csr`, "-subj", "/CN=localhost");
  writeFileSync(join(dir, `${name}.ext`), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  openssl(
    "x509",
    "-req",
    "-in",
    `${name}-srv.csr`,
    "-CA",
    `${name}-ca.pem`,
    "-CAkey",
    `${name}-ca.key`,
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    `${name}.ext`,
    "-out",
    `${name}-srv.pem`,
  );
  return {
    ca: join(dir, `${name}-ca.pem`),
    cert: join(dir, `${name}-srv.pem`),
    key: join(dir, `${name}-srv.key`),
  };
}

let operator: ReturnType<typeof makeCa>;
let rogue: ReturnType<typeof makeCa>;

async function tlsCsms(pki: { cert: string; key: string }): Promise<Csms> {
  const c = new Csms(port, IDENT, PASSWORD, { status: "Accepted", interval: 300 }, pki);
  all.push(c);
  await c.start();
  return c;
}

before(async () => {
  requireVenv();
  operator = makeCa("operator");
  rogue = makeCa("rogue");
  port = await freePort();
  pile = new OcppPile({
    csmsPort: port,
    identity: IDENT,
    password: PASSWORD,
    ocpp: { url: `wss://127.0.0.1:${port}`, securityProfile: 2, caFile: operator.ca },
  });
  await pile.init();
});

after(async () => {
  await pile?.stop();
  for (const c of all) await c.stop().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

const waitView = (ok: (v: OcppView) => boolean, what: string) => pile.waitOcpp(ok, what);

test("a CSMS whose certificate the operator's CA did not sign is refused: no link, the reason in pilectl ocpp and the log", async () => {
  const bad = await tlsCsms(rogue);
  await pile.spawn();
  const v = await waitView((x) => x.counters.connectFailures >= 2, "two refused connects");
  assert.equal(v.link, "closed");
  assert.equal(v.boot, "none");
  assert.equal(v.counters.connects, 0);
  assert.match(v.lastError ?? "", /TLS: the CSMS certificate is not trusted/);
  assert.match(formatResult("ocpp", v), /last error TLS: the CSMS certificate is not trusted/);
  assert.equal(bad.callsIn().length, 0, "the CSMS never saw a frame");
  assert.ok(!bad.lines.some((l) => l.connected !== undefined), "no WebSocket was opened");
  const logged = pile.out
    .split("\n")
    .filter((l) => l.includes('"OCPP connect failed"'))
    .map((l) => JSON.parse(l) as { err: string });
  assert.equal(logged.length, 1, "one log line for the kind of failure, not one per retry");
  assert.match(logged[0]!.err, /certificate is not trusted/);
  assert.doesNotMatch(pile.out, new RegExp(PASSWORD), "the password is not logged");
  await bad.stop();
});

test("the CSMS with the certificate the operator's CA signed: wss:// link up, Basic auth accepted, boot and status", async () => {
  const good = await tlsCsms(operator);
  await good.until(() => good.callsIn("BootNotification").length > 0, 20_000, "BootNotification over TLS");
  await good.until(() => good.callsIn("StatusNotification").length > 0, 20_000, "StatusNotification");
  const v = await waitView((x) => x.link === "open" && x.boot === "Accepted", "link open");
  assert.equal(v.counters.connects, 1);
  assert.ok(good.lines.some((l) => l.connected === IDENT && l.protocol === "ocpp2.0.1"));
  assert.deepEqual(
    good.records.filter((r) => r.dir === "in").flatMap((r) => r.schemaErrors ?? []),
    [],
  );
});
