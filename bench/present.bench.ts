/**
 * Full PRESENT processing on the pile, as the daemon does it: deviceProof (V by HKDF, HMAC,
 * constant-time compare), openCode, checkClaims, the replay-ledger look-up and the durable ledger
 * insert (SQLite WAL, synchronous=FULL: one fsync per accepted code). Fresh codes each time, so
 * every insert is a real one. Also the same path without the insert, to show what the disk costs.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  checkClaims,
  codeExpiry,
  deriveVerifySecret,
  deviceProof,
  KeyRing,
  openCode,
} from "../src/protocol/index.js";
import { nodeSuite } from "../src/protocol/node-suite.js";
import { Issuer } from "../src/sdk/issuer.js";
import { openStore } from "../src/store/index.js";
import { median } from "./util.js";

export const name = "present";

const PILE = "PILE-SZ-0042";
const SKEW = 120_000;

interface Prepared {
  code: Uint8Array;
  codeId: Uint8Array;
  presented: Uint8Array;
  clientNonce: Uint8Array;
  pileNonce: Uint8Array;
}

export async function run(): Promise<Record<string, unknown>> {
  const key = nodeSuite.randomBytes(32);
  const ring = new KeyRing(nodeSuite);
  const entry = ring.add(7, key);
  const now = Date.now();
  const issuer = new Issuer({ keys: [{ keyId: 7, key }], suite: nodeSuite, clock: () => now });
  const prepare = (n: number): Prepared[] =>
    Array.from({ length: n }, () => {
      const r = issuer.issue({ deviceId: "LSVAU2180N2183294", pileId: PILE });
      if (!r.ok) throw r.error;
      const clientNonce = nodeSuite.randomBytes(16);
      const pileNonce = nodeSuite.randomBytes(16);
      const presented = deviceProof(nodeSuite, r.value.verifySecret, r.value.codeId, pileNonce, clientNonce);
      return { code: r.value.code, codeId: r.value.codeId, presented, clientNonce, pileNonce };
    });

  const dir = mkdtempSync(join(tmpdir(), "piled-bench-present-"));
  const store = openStore(join(dir, "piled.db"));
  const process = (p: Prepared, durable: boolean): void => {
    const v = deriveVerifySecret(nodeSuite, entry.key, p.codeId);
    const proof = deviceProof(nodeSuite, v, p.codeId, p.pileNonce, p.clientNonce);
    if (!nodeSuite.timingSafeEqual(proof, p.presented)) throw new Error("bench: proof");
    const opened = openCode(nodeSuite, ring, p.code);
    if (!opened.ok) throw new Error(`bench: ${opened.error}`);
    const failure = checkClaims(opened.value, {
      pileId: PILE,
      now: BigInt(now),
      skewMs: SKEW,
      expect: { keyId: 7, codeId: p.codeId },
    });
    if (failure) throw new Error(`bench: ${failure}`);
    if (store.ledger.isUsed(p.codeId)) throw new Error("bench: replayed");
    if (durable) {
      store.ledger.record({
        codeId: p.codeId,
        keyId: 7,
        issuedAt: opened.value.claims.issuedAt,
        expiresAt: codeExpiry(opened.value.claims, SKEW),
      });
    }
  };
  const rate = (durable: boolean, n: number, rounds: number): number => {
    const rates: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const batch = prepare(n);
      const t0 = performance.now();
      for (const p of batch) process(p, durable);
      rates.push((n * 1000) / (performance.now() - t0));
    }
    return Math.round(median(rates));
  };
  try {
    const withInsert = rate(true, 300, 7);
    const withoutInsert = rate(false, 5000, 7);
    return {
      unit: "PRESENTs per second, median of 7 rounds, fresh codes",
      fullPresentPerSecond: withInsert,
      withoutDurableInsertPerSecond: withoutInsert,
      diskShare: Math.round((1 - withInsert / withoutInsert) * 1000) / 1000,
      note: "the durable insert is one fsync (WAL, synchronous=FULL): the disk sets the full rate",
    };
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
