/**
 * Field report: "a start-up step failed with the hardware open". The outputs the daemon leaves
 * behind when it gives up: contactor open first, then the lock at its rest only when the contactor
 * reads open and no weld is latched (DESIGN.md: a live plug is never released).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { failSafeOutputs, lockAfterFailure } from "../../src/daemon/daemon.js";
import { createLogger } from "../../src/daemon/log.js";

const log = createLogger({ level: "silent" });

function lines(feedback: boolean | Error) {
  const journal: string[] = [];
  return {
    journal,
    lines: {
      contactor: { write: async (v: boolean) => void journal.push(`contactor:${v}`) },
      lock: { write: async (v: boolean) => void journal.push(`lock:${v}`) },
      contactorFeedback: {
        read: async () => {
          journal.push("feedback");
          if (feedback instanceof Error) throw feedback;
          return feedback;
        },
      },
    },
  };
}

test("field report: after a failed start the contactor opens first, the lock rests only when that is safe", async () => {
  const cases: [boolean | Error, () => boolean, "released" | "engaged", boolean][] = [
    [false, () => false, "released", false], // open, no weld: lock to rest
    [false, () => false, "engaged", true], // rest is engaged by configuration
    [true, () => false, "released", true], // contactor still reads closed: a weld, keep locked
    [false, () => true, "released", true], // WELD latched in the store
    [
      false,
      () => {
        throw new Error("SQLITE_BUSY");
      },
      "released",
      true,
    ], // latch unknown
    [new Error("EIO"), () => false, "released", true], // feedback unreadable
  ];
  for (const [fb, latched, rest, engaged] of cases) {
    const l = lines(fb);
    const lock = await failSafeOutputs(l.lines, latched, rest, log);
    assert.deepEqual(
      l.journal,
      ["contactor:false", "feedback", `lock:${engaged}`],
      `${fb} ${latched} ${rest}`,
    );
    assert.equal(lock, engaged ? "engaged" : "released");
  }
  assert.equal(
    lockAfterFailure({ contactorClosed: undefined, weldLatched: false, lockSafe: "released" }),
    "engaged",
  );
});
