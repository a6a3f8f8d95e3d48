/** The OCPP control commands (`pilectl ocpp`, `ocmf [N]`, `sessions --ocmf`) over a station view. */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { OcppControl } from "../../src/control/index.js";
import { executeCommand, formatResult } from "../../src/control/index.js";
import type { OcppView } from "../../src/daemon/ocpp-glue.js";
import { fakePileControl } from "../daemon/fake-pile-control.js";

const view: OcppView = {
  enabled: true,
  url: "ws://csms.example/ocpp",
  identity: "pile-7",
  publicKey: "3059301306072A8648CE3D020106082A8648CE3D03010703420004AB",
  link: "closed",
  boot: "none",
  outbox: { depth: 12, dropped: 1, dead: 0 },
  lastError: "Error: connect ECONNREFUSED",
  counters: {
    connects: 1,
    connectFailures: 4,
    badFrames: 0,
    schemaRejects: 2,
    unknownActions: 0,
    callErrors: 2,
    oversizeFrames: 0,
  },
  faultsReported: 0,
  securityEventsReported: 1,
};

test("ocpp shows link, outbox depth, last error and the station key; ocmf lists records; bad arguments are USAGE", async () => {
  const asked: number[] = [];
  const ocpp: OcppControl = {
    view: () => view,
    ocmf: (n) => {
      asked.push(n);
      return [{ sessionId: "aa", page: 3, sealedAt: 1, record: "OCMF|{}|{}" }];
    },
  };
  const pile = { ...fakePileControl(), ocpp: () => ocpp };
  const ctx = { pile, actor: "pilectl" };
  const r = await executeCommand(ctx, "ocpp", []);
  assert.ok(r.ok);
  const text = formatResult("ocpp", r.result);
  assert.match(text, /link closed/);
  assert.match(text, /outbox 12 pending {2}1 dropped/);
  assert.match(text, /ECONNREFUSED/);
  assert.match(text, new RegExp(view.publicKey));
  const o = await executeCommand(ctx, "ocmf", ["4"]);
  assert.ok(o.ok);
  assert.equal(formatResult("ocmf", o.result), "OCMF|{}|{}");
  assert.deepEqual(asked, [4]);
  for (const bad of [["0"], ["x"], ["1", "2"], ["99999"]]) {
    const b = await executeCommand(ctx, "ocmf", bad);
    assert.ok(!b.ok && b.error.code === "USAGE", `ocmf ${bad.join(" ")}`);
  }
  const b = await executeCommand(ctx, "ocpp", ["extra"]);
  assert.ok(!b.ok && b.error.code === "USAGE");
  assert.deepEqual(asked, [4], "a refused command reached nothing");
});
