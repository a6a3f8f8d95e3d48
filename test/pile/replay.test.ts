import assert from "node:assert/strict";
import { test } from "node:test";
import { defaultPileCoreConfig, PileCore } from "../../src/pile/index.js";
import { Reason, toHex } from "../../src/protocol/index.js";
import { nodeSuite } from "../../src/protocol/node-suite.js";
import { brief, Carrier, counterRandom, healthyBoot, issue, keyRing, PILE_ID, Rig } from "./rig.js";

const replayed = { type: "RESULT", reason: Reason.REPLAYED };

test("a code already in the ledger is REPLAYED and moves nothing", () => {
  const rig = new Rig();
  rig.boot();
  const issued = issue();
  rig.ledger.used.add(toHex(issued.codeId));
  const car = new Carrier(rig, "c1", issued);
  car.hello();
  const fx = car.present();
  assert.deepEqual(car.lastReason(), replayed);
  assert.deepEqual(brief(fx), ["send:c1:RESULT:11"]);
});

test("a code accepted by this process is REPLAYED even while its record is pending", () => {
  const rig = new Rig();
  rig.boot();
  const issued = issue();
  const a = new Carrier(rig, "a", issued);
  a.hello();
  a.present();
  assert.equal(rig.ledger.used.size, 0, "not written yet");
  const b = new Carrier(rig, "b", issued);
  b.hello();
  b.present();
  assert.deepEqual(b.lastReason(), replayed);
});

test("a code used in a finished session is REPLAYED, also after a restart on the same ledger", () => {
  const rig = new Rig();
  rig.boot();
  const issued = issue();
  rig.startCharging(issued);
  rig.feed({ type: "technician", command: "stop" });
  rig.feed({ type: "contactorFeedback", closed: false });
  rig.feed({ type: "lockFeedback", engaged: false });
  const again = new Carrier(rig, "c2", issued);
  again.hello();
  again.present();
  assert.deepEqual(again.lastReason(), replayed);

  // A new process (restart): same ledger, fresh core.
  const core = new PileCore(
    { ...defaultPileCoreConfig, pileId: PILE_ID },
    { suite: nodeSuite, keys: keyRing(), ledger: rig.ledger, random: counterRandom() },
  );
  const rig2 = new Rig();
  Object.defineProperty(rig2, "core", { value: core });
  rig2.feed({ type: "boot", feedback: healthyBoot, floor: 0n });
  rig2.meter();
  const after = new Carrier(rig2, "c3", issued);
  after.hello();
  after.present();
  assert.deepEqual(after.lastReason(), replayed);
});

test("time checks come before replay: an expired code that was used is EXPIRED", () => {
  const rig = new Rig();
  rig.boot();
  const issued = issue({ issuedAt: BigInt(rig.wall! - 10 * 3_600_000), validFor: 60 });
  rig.ledger.used.add(toHex(issued.codeId));
  const car = new Carrier(rig, "c1", issued);
  car.hello();
  car.present();
  assert.deepEqual(car.lastReason(), { type: "RESULT", reason: Reason.EXPIRED });
});

test("a ledger that cannot be read refuses the code as FAULTED", () => {
  const rig = new Rig();
  rig.ledger.isUsed = () => {
    throw new Error("SQLITE_IOERR");
  };
  rig.boot();
  const car = new Carrier(rig, "c1", issue());
  car.hello();
  const fx = car.present();
  assert.deepEqual(car.lastReason(), { type: "RESULT", reason: Reason.FAULTED });
  assert.equal(
    fx.some((e) => e.type === "recordCode"),
    false,
  );
  assert.equal(rig.state(), "AVAILABLE");
});
