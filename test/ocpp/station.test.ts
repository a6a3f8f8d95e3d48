/**
 * The station's delivery rules against a scripted link: a TransactionEvent the CSMS keeps
 * refusing is retried MessageAttempts times then set aside (the rest still flows), and the
 * Local-token policy "stop" ends the session the CSMS says is not accepted.
 */
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { test } from "node:test";
import Database from "better-sqlite3";
import { OcppConfigSchema } from "../../src/ocpp/config.js";
import type { OcppLink } from "../../src/ocpp/link.js";
import { Outbox } from "../../src/ocpp/outbox.js";
import { OcppStation } from "../../src/ocpp/station.js";
import { FakePile } from "./fake-pile.js";

class ScriptedLink extends EventEmitter {
  isOpen = true;
  counters = {};
  lastError = undefined;
  calls: [string, Record<string, unknown>][] = [];
  constructor(readonly answer: (m: string, p: Record<string, unknown>) => Record<string, unknown>) {
    super();
  }
  handle(): void {}
  start(): void {
    setImmediate(() => this.emit("open"));
  }
  async stop(): Promise<void> {}
  async call(m: string, p: Record<string, unknown>): Promise<Record<string, unknown>> {
    this.calls.push([m, p]);
    return this.answer(m, p);
  }
}

const until = async (ok: () => boolean, what: string): Promise<void> => {
  const end = Date.now() + 5_000;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

function rig(cfgExtra: object, answer: ConstructorParameters<typeof ScriptedLink>[0]) {
  const cfg = OcppConfigSchema.parse({
    enabled: true,
    url: "wss://c",
    identity: "p",
    passwordFile: "/x",
    ...cfgExtra,
  });
  const link = new ScriptedLink(answer);
  const pile = new FakePile();
  const st = new OcppStation(cfg, pile, new Outbox(new Database(":memory:")), link as unknown as OcppLink);
  st.vars.messageAttemptIntervalS = 0;
  return { link, pile, st };
}

const boot = { status: "Accepted", interval: 300, currentTime: new Date().toISOString() };

test("a TransactionEvent refused MessageAttempts times is set aside and the next one still goes", async () => {
  const { link, pile, st } = rig({}, (m, p) => {
    if (m === "BootNotification") return boot;
    if (m === "TransactionEvent" && (p.transactionInfo as { transactionId: string }).transactionId === "bad")
      throw Object.assign(new Error("refused"), { rpcErrorCode: "GenericError" });
    return {};
  });
  st.start();
  await until(() => st.boot === "Accepted", "boot");
  pile.emit({ type: "sessionStarted", sessionId: "bad", tokenId: "t", at: new Date(), meterStartWh: 1 });
  pile.emit({ type: "sessionStarted", sessionId: "good", tokenId: "t", at: new Date(), meterStartWh: 1 });
  await until(() => st.outbox.stats().depth === 0, "outbox drained");
  const tx = link.calls
    .filter(([m]) => m === "TransactionEvent")
    .map(([, p]) => [(p.transactionInfo as { transactionId: string }).transactionId, p.seqNo]);
  assert.deepEqual(tx, [
    ["bad", 0],
    ["bad", 0],
    ["bad", 0],
    ["bad", 0],
    ["bad", 0],
    ["good", 0],
  ]);
  assert.equal(st.outbox.stats().dead, 1);
  await st.stop();
});

test("localTokenPolicy stop ends the session whose token the CSMS does not accept; ignore does not", async () => {
  for (const policy of ["stop", "ignore"] as const) {
    const { pile, st } = rig({ localTokenPolicy: policy }, (m) =>
      m === "BootNotification"
        ? boot
        : m === "TransactionEvent"
          ? { idTokenInfo: { status: "Invalid" } }
          : {},
    );
    st.start();
    await until(() => st.boot === "Accepted", "boot");
    pile.view = { ...pile.view, session: { sessionId: "s1" } };
    pile.emit({ type: "sessionStarted", sessionId: "s1", tokenId: "t", at: new Date(), meterStartWh: 1 });
    await until(() => st.outbox.stats().depth === 0, "delivered");
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(pile.commands, policy === "stop" ? ["stop s1"] : [], policy);
    await st.stop();
  }
});

test("a failure of the outbox's own file during delivery is noted and retried, never a rejection", async () => {
  const { link, st } = rig({}, (m) => (m === "BootNotification" ? boot : {}));
  let failures = 1;
  const head = st.outbox.head.bind(st.outbox);
  st.outbox.head = () => {
    if (failures-- > 0) throw new Error("SQLITE_BUSY: database is locked");
    return head();
  };
  st.outbox.enqueue([
    {
      transactionId: "t1",
      eventType: "Started",
      payload: {
        eventType: "Started",
        timestamp: "x",
        triggerReason: "Authorized",
        transactionInfo: { transactionId: "t1" },
      },
    },
  ]);
  const rejections: unknown[] = [];
  const onRej = (e: unknown) => rejections.push(e);
  process.on("unhandledRejection", onRej);
  try {
    st.start();
    await until(
      () => link.calls.some(([m]) => m === "TransactionEvent"),
      "the event delivered after the retry",
    );
    assert.match(st.lastError ?? "", /SQLITE_BUSY/);
    assert.deepEqual(rejections, []);
  } finally {
    process.off("unhandledRejection", onRej);
    await st.stop();
  }
});
