/** The site config section: off by default, typed problems for bad values. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseSiteConfig } from "../../src/site/config.js";

test("everything is off by default and bound to loopback", () => {
  const r = parseSiteConfig(undefined);
  assert.ok(r.ok);
  assert.equal(r.config.http.enabled, false);
  assert.equal(r.config.http.host, "127.0.0.1");
  assert.equal(r.config.mqtt.enabled, false);
  assert.equal(r.config.mqtt.commands.enabled, false);
});

test("bad values are named, not thrown", () => {
  const r = parseSiteConfig({
    http: { port: 70000, tls: { certFile: "cert.pem", keyFile: "/k" } },
    mqtt: { url: "http://x", passwordFile: "/p", commands: { enabled: true, topic: "piled/#" }, extra: 1 },
  });
  assert.ok(!r.ok);
  const text = r.problems.join("\n");
  for (const path of [
    "site.http.port",
    "site.http.tls.certFile",
    "site.mqtt.url",
    "site.mqtt.username",
    "site.mqtt.commands.topic",
    "site.mqtt",
  ])
    assert.ok(text.includes(path), `${path} in ${text}`);
});
