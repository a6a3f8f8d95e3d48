/**
 * The verification exchange of PROTOCOL.md §3 per connection: HELLO → CHALLENGE (pileProof),
 * PRESENT (deviceProof, code checks, replay), STOP (stopProof); the per-connection and global
 * proof-failure limits, the exchange timeout and the idle drop. A verified PRESENT hands over to
 * the record-before-accept handshake (handshake.ts).
 */
import {
  checkClaims,
  decodeClientMessage,
  deriveVerifySecret,
  deviceProof,
  equalBytes,
  type Hello,
  openCode,
  PROTOCOL_VERSION,
  type Present,
  pileProof,
  Reason,
  type Stop,
  stopProof,
  toHex,
} from "../protocol/index.js";
import { authorize } from "./handshake.js";
import { type Conn, type Kernel, STOPPABLE } from "./kernel.js";
import { protocolProofPolicy } from "./rate-limit.js";
import { beginStop } from "./session.js";
import { transition } from "./transitions.js";

export function connected(k: Kernel, connId: string): void {
  k.conns.set(connId, { exchange: undefined, failures: 0, busyAt: k.now });
}

export function disconnected(k: Kernel, id: string): void {
  k.conns.delete(id);
  const s = k.session;
  if (s) {
    s.subscribers.delete(id);
    s.waiters.delete(id);
  }
}

export function fragmentError(k: Kernel, connId: string): void {
  k.conn(connId);
  k.counters.fragmentErrors++;
  k.send(connId, { type: "ERROR", reason: Reason.BAD_MESSAGE });
}

export function message(k: Kernel, connId: string, bytes: Uint8Array, wall: number | undefined): void {
  const conn = k.conn(connId);
  conn.busyAt = k.now;
  k.counters.messages++;
  const m = decodeClientMessage(bytes);
  const rule = transition(k.phase, m.ok ? m.value.type : "badMessage");
  if ("refuse" in rule) {
    k.reject("message", rule.refuse, rule.detail);
    return;
  }
  if (!m.ok) {
    k.counters.badMessages++;
    k.send(connId, { type: "ERROR", reason: Reason.BAD_MESSAGE });
    return;
  }
  switch (m.value.type) {
    case "HELLO":
      hello(k, connId, conn, m.value);
      return;
    case "PRESENT":
      present(k, connId, conn, m.value, wall);
      return;
    case "STOP":
      stop(k, connId, conn, m.value);
      return;
  }
}

function hello(k: Kernel, connId: string, conn: Conn, h: Hello): void {
  conn.exchange = undefined;
  if (conn.failures >= protocolProofPolicy.perConnection) {
    k.counters.rateLimited++;
    k.error(connId, "RATE_LIMITED");
    return;
  }
  if (h.version !== PROTOCOL_VERSION) {
    k.error(connId, "UNSUPPORTED_VERSION");
    return;
  }
  const key = k.deps.keys.get(h.keyId);
  if (!key) {
    k.error(connId, "UNKNOWN_KEY");
    return;
  }
  const pileNonce = k.deps.random(16);
  if (!(pileNonce instanceof Uint8Array) || pileNonce.length !== 16) throw new Error("random source");
  const v = deriveVerifySecret(k.deps.suite, key.key, h.codeId);
  const proof = pileProof(k.deps.suite, v, h.codeId, h.clientNonce, pileNonce, k.cfg.pileId);
  conn.exchange = {
    keyId: h.keyId,
    codeId: h.codeId,
    clientNonce: h.clientNonce,
    pileNonce,
    v,
    startedAt: k.now,
    answered: false,
    presented: false,
  };
  k.send(connId, { type: "CHALLENGE", pileNonce, pileProof: proof });
}

function present(k: Kernel, connId: string, conn: Conn, p: Present, wall: number | undefined): void {
  const ex = conn.exchange;
  if (!ex || ex.presented) {
    k.error(connId, "OUT_OF_ORDER");
    return;
  }
  ex.presented = true;
  ex.answered = true;
  const suite = k.deps.suite;
  const expected = deviceProof(suite, ex.v, ex.codeId, ex.pileNonce, ex.clientNonce);
  if (!suite.timingSafeEqual(expected, p.deviceProof)) {
    proofFailed(k, connId, "PRESENT");
    return;
  }
  const opened = openCode(suite, k.deps.keys, p.code);
  if (!opened.ok) {
    k.result(connId, opened.error);
    return;
  }
  const code = opened.value;
  const bad = checkClaims(code, {
    pileId: k.cfg.pileId,
    now: k.floor.now(wall),
    skewMs: k.cfg.skewMs,
    expect: { keyId: ex.keyId, codeId: ex.codeId },
  });
  if (bad) {
    k.result(connId, bad);
    return;
  }
  const hex = toHex(code.codeId);
  let used: boolean;
  try {
    used = k.usedHere.has(hex) || k.deps.ledger.isUsed(code.codeId);
  } catch {
    k.log("error", "ledger.read_failed", { codeId: hex });
    k.result(connId, "FAULTED");
    return;
  }
  if (used) {
    k.result(connId, "REPLAYED");
    return;
  }
  authorize(k, connId, code);
}

function stop(k: Kernel, connId: string, conn: Conn, m: Stop): void {
  const ex = conn.exchange;
  if (!ex) {
    k.error(connId, "OUT_OF_ORDER");
    return;
  }
  ex.answered = true;
  const suite = k.deps.suite;
  const expected = stopProof(suite, ex.v, ex.codeId, ex.pileNonce);
  if (!suite.timingSafeEqual(expected, m.stopProof)) {
    proofFailed(k, connId, "STOP");
    return;
  }
  const s = k.session;
  if (!s?.recorded || s.ended || !equalBytes(s.code.codeId, ex.codeId)) {
    k.result(connId, "OUT_OF_ORDER");
    return;
  }
  s.subscribers.add(connId);
  s.waiters.add(connId);
  k.log("info", "session.stop_requested", { sessionId: toHex(s.sessionId), connId });
  if (STOPPABLE.has(k.phase)) beginStop(k, "CARRIER_STOP");
}

function proofFailed(k: Kernel, connId: string, what: "PRESENT" | "STOP"): void {
  k.counters.badProofs++;
  const conn = k.conn(connId);
  conn.failures++;
  k.log("warn", "proof.failed", { message: what, connId, connFailures: conn.failures });
  k.result(connId, "BAD_PROOF");
  if (conn.failures === protocolProofPolicy.perConnection)
    k.log("warn", "proof.connection_limited", { connId, failures: conn.failures });
  if (k.proofs.failure(k.now)) {
    const p = protocolProofPolicy;
    const failures = k.proofs.recent(k.now);
    k.counters.securityEvents++;
    k.out.push({
      type: "securityEvent",
      event: "PROOF_FAILURES",
      failures,
      threshold: p.securityEventFailures,
      windowMs: p.securityEventWindowMs,
    });
    k.log("error", "security.proof_failures", {
      failures,
      threshold: p.securityEventFailures,
      windowMs: p.securityEventWindowMs,
    });
  }
}

/** Busy: an exchange in progress, or a session of its own (started, stopping or watched). */
export function busy(k: Kernel, id: string, conn: Conn): boolean {
  if (conn.exchange && !conn.exchange.answered) return true;
  const s = k.session;
  return s !== undefined && (s.connId === id || s.subscribers.has(id) || s.waiters.has(id));
}

/** Idle time counts from the last moment a connection was busy. */
export function markBusy(k: Kernel): void {
  for (const [id, conn] of k.conns) if (busy(k, id, conn)) conn.busyAt = k.now;
}

/** §3: an idle link cannot hold the radio. Asked again after another idle period if it stays. */
export function idleDrop(k: Kernel, connId: string): void {
  const conn = k.conns.get(connId);
  if (!conn) return;
  conn.busyAt = k.now;
  k.counters.idleDrops++;
  k.log("info", "connection.idle_drop", { connId, idleMs: protocolProofPolicy.idleDropMs });
  k.out.push({ type: "disconnect", connId, reason: "IDLE" });
}

export function exchangeTimeout(k: Kernel, connId: string): void {
  const conn = k.conns.get(connId);
  if (!conn) return;
  conn.exchange = undefined;
  k.counters.exchangeTimeouts++;
  k.error(connId, "TIMEOUT");
}
