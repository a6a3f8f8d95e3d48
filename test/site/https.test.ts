/** The dashboard over HTTPS with the operator's certificate; the session cookie is then Secure. */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import forge from "node-forge";
import { TECH_SECRET } from "./fake-port.js";
import { startRig } from "./rig.js";

function selfSigned(): { cert: string; key: string } {
  const keys = forge.pki.rsa.generateKeyPair(2048);
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = "01";
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 86_400_000);
  const attrs = [{ name: "commonName", value: "127.0.0.1" }];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.setExtensions([{ name: "subjectAltName", altNames: [{ type: 7, ip: "127.0.0.1" }] }]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: forge.pki.privateKeyToPem(keys.privateKey) };
}

function call(
  url: string,
  ca: string,
  method: string,
  body?: string,
): Promise<{ status: number; cookie: string; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method, ca, headers: body ? { "content-type": "application/json" } : {} },
      (res) => {
        let text = "";
        res.on("data", (d: Buffer) => {
          text += d.toString();
        });
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, cookie: String(res.headers["set-cookie"] ?? ""), text }),
        );
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

test("HTTPS with the operator's certificate: the page, and a Secure session cookie", async () => {
  const dir = mkdtempSync(join(tmpdir(), "piled-tls-"));
  const { cert, key } = selfSigned();
  writeFileSync(join(dir, "cert.pem"), cert);
  writeFileSync(join(dir, "key.pem"), key, { mode: 0o600 });
  const rig = await startRig({ tls: { certFile: join(dir, "cert.pem"), keyFile: join(dir, "key.pem") } });
  try {
    const url = rig.url.replace("http:", "https:");
    const page = await call(`${url}/`, cert, "GET");
    assert.equal(page.status, 200);
    assert.match(page.text, /<title>piled<\/title>/);
    const login = await call(`${url}/api/login`, cert, "POST", JSON.stringify({ secret: TECH_SECRET }));
    assert.equal(login.status, 200, login.text);
    assert.match(login.cookie, /; Secure/);
    await assert.rejects(
      call(`${url}/`, "", "GET"),
      "an unknown certificate is refused by a checking client",
    );
  } finally {
    await rig.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("HTTPS: connections that never finish their handshake count against the cap; above it, refused", async () => {
  const dir = mkdtempSync(join(tmpdir(), "piled-tls-"));
  const { cert, key } = selfSigned();
  writeFileSync(join(dir, "cert.pem"), cert);
  writeFileSync(join(dir, "key.pem"), key, { mode: 0o600 });
  const rig = await startRig({
    maxConnections: 4,
    tls: { certFile: join(dir, "cert.pem"), keyFile: join(dir, "key.pem") },
  });
  const held: ReturnType<typeof connect>[] = [];
  try {
    const port = Number(new URL(rig.url).port);
    for (let i = 0; i < 4; i++) {
      const s = connect(port, "127.0.0.1");
      await new Promise((r) => s.once("connect", r));
      held.push(s);
    }
    // Accepted in order: the four held ones are the server's before the fifth comes in.
    const url = rig.url.replace("http:", "https:");
    await assert.rejects(call(`${url}/`, cert, "GET"), "the fifth connection is closed unanswered");
    assert.equal(rig.counters.get("http.connectionRefused"), 1);
    for (const s of held) s.destroy();
    // Until the server has seen the four close, a request may still be refused.
    let after = await call(`${url}/`, cert, "GET").catch(() => undefined);
    while (after === undefined) after = await call(`${url}/`, cert, "GET").catch(() => undefined);
    assert.equal(after.status, 200);
  } finally {
    for (const s of held) s.destroy();
    await rig.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
