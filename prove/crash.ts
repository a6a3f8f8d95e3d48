/**
 * The crash campaign (docs/reliability.md): SIGKILL the built daemon at random instants over
 * every phase, sometimes skip ExecStopPost, sometimes cut the power (every file of the state
 * directory rolled back to its content at its last fsync, by the prove/fsync_shadow.c shim),
 * and after each kill check the promises:
 *   - no code accepted twice (accepted outcomes per code id; a replay of a recorded code refused);
 *   - every finished session intact field by field (compared with what was read before);
 *   - the session open at the kill marked "interrupted" and closed from the meter's register;
 *   - outputs safe before READY (contactor open on the sysfs line the moment READY=1 arrives);
 *   - PRAGMA integrity_check ok (on a copy of the state as the kill left it).
 * Runs inside the fake-sysfs namespace: runCrash() re-executes itself there.
 */
import { spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import type { SessionView } from "../src/control/index.js";
import { NobleCentral } from "../src/hw/ble/central.js";
import { nodeSuite } from "../src/protocol/node-suite.js";
import { pileStateName } from "../src/protocol/reasons.js";
import type { CarrierLink } from "../src/protocol/transport.js";
import { type CarrierOutcome, stop, unlock } from "../src/sdk/carrier.js";
import type { IssuedCode } from "../src/sdk/issuer.js";
import { REPO, Rig, sleep } from "./rig.js";
import { Rng } from "./rng.js";

export const PHASES = [
  "idle",
  "boot",
  "authorizing-before-commit",
  "authorizing-after-commit",
  "preparing",
  "charging",
  "finishing",
] as const;
export type Phase = (typeof PHASES)[number];
/** What a round aims at; authorizing is sorted into before/after the commit by the outcome. */
const TARGETS = ["idle", "boot", "authorizing", "authorizing", "preparing", "charging", "finishing"] as const;

export interface CrashSummary {
  seed: number;
  kills: number;
  perPhase: Record<string, number>;
  stopPostSkipped: number;
  powerCuts: number;
  powerCutModel: string;
  sessions: number;
  /** Faults latched by the daemon during the campaign (fail-safe; cleared to go on). */
  findings: string[];
  violations: string[];
}

export interface CrashOptions {
  seed: number;
  kills: number;
  log?: (line: string) => void;
  /** For the self-test: a deliberate violation the checkers must find (e.g. "replay"). */
  plant?: "replay" | "tamper";
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/** Runs the campaign in the fake-sysfs namespace (re-executing dist/prove/main.js there). */
export async function runCrash(o: CrashOptions): Promise<CrashSummary> {
  if (process.env.PROVE_NS === "1") return crashInside(o);
  if (process.getuid?.() !== 0) throw new Error("the crash campaign needs root (a private mount namespace)");
  const args = [
    join(REPO, "dist", "prove", "main.js"),
    "crash",
    "--seed",
    String(o.seed),
    "--kills",
    String(o.kills),
  ];
  if (o.plant) args.push("--plant", o.plant);
  const child = spawn(
    "unshare",
    [
      "-m",
      "--propagation",
      "private",
      "bash",
      join(REPO, "scripts", "fake-sysfs", "run.sh"),
      process.execPath,
      ...args,
    ],
    { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, PROVE_NS: "1" } },
  );
  let out = "";
  child.stdout.on("data", (b: Buffer) => {
    const s = b.toString();
    out += s;
    for (const l of s.split("\n")) if (l && !l.startsWith("PROVE-RESULT ")) o.log?.(l);
  });
  const code = await new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
  const line = out.split("\n").find((l) => l.startsWith("PROVE-RESULT "));
  if (!line) throw new Error(`the crash campaign ended (exit ${code}) without a result`);
  return JSON.parse(line.slice("PROVE-RESULT ".length)) as CrashSummary;
}

interface Ctx {
  rig: Rig;
  rng: Rng;
  violations: string[];
  /** Faults the daemon latched during the campaign (each cleared to go on). */
  findings: string[];
  /** Sessions read back so far, by id: the closed ones must never change. */
  known: Map<string, SessionView>;
  /** Accepted outcomes seen per code id. */
  accepted: Map<string, number>;
  codes: IssuedCode[];
  n: number;
  /** Running estimate of PRESENT → RESULT, ms (where the kill is aimed). */
  presentMs: number;
}

async function crashInside(o: CrashOptions): Promise<CrashSummary> {
  const rig = new Rig();
  const log = o.log ?? ((l: string) => process.stdout.write(`${l}\n`));
  const cx: Ctx = {
    rig,
    rng: new Rng(o.seed),
    violations: [],
    findings: [],
    known: new Map(),
    accepted: new Map(),
    codes: [],
    n: 0,
    presentMs: 40,
  };
  const perPhase: Record<string, number> = Object.fromEntries(PHASES.map((p) => [p, 0]));
  let skipped = 0;
  let cuts = 0;
  let reported = 0;
  let found = 0;
  try {
    await rig.start({ ble: true, shim: true });
    rig.spawnDaemon();
    await rig.waitUp(true);
    for (let k = 0; k < o.kills; k++) {
      const target = cx.rng.pick(TARGETS);
      const skipStop = cx.rng.chance(0.3);
      const cut = rig.shim !== undefined && cx.rng.chance(0.25);
      const r = await oneKill(cx, target);
      if (skipStop) skipped++;
      if (cut) cuts++;
      const recorded = await afterKill(cx, {
        skipStop,
        cut,
        open: r.open,
        codeId: r.codeId,
        plant: o.plant,
        k,
      });
      const phase =
        r.phase === "authorizing-before-commit" && recorded ? "authorizing-after-commit" : r.phase;
      perPhase[phase] = (perPhase[phase] ?? 0) + 1;
      for (const x of cx.violations.slice(reported))
        log(`crash: violation (${phase}, stop step ${skipStop ? "skipped" : "run"}, power cut ${cut}): ${x}`);
      reported = cx.violations.length;
      for (const x of cx.findings.slice(found)) log(`crash: finding (${phase}, kill ${k}): ${x}`);
      found = cx.findings.length;
      if ((k + 1) % 10 === 0 || k + 1 === o.kills)
        log(`crash: ${k + 1}/${o.kills} kills, ${cx.violations.length} violations`);
    }
  } catch (e) {
    cx.violations.push(`campaign aborted: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    await rig.close(cx.violations.length > 0 && o.plant === undefined);
    if (cx.violations.length > 0) log(`crash: work folder kept: ${rig.work}`);
  }
  const s: CrashSummary = {
    seed: o.seed,
    kills: o.kills,
    perPhase,
    stopPostSkipped: skipped,
    powerCuts: cuts,
    powerCutModel: rig.shim
      ? "each state file rolled back to its content at its last fsync/fdatasync; never-synced files deleted"
      : "none (gcc missing: no fsync shadow shim)",
    sessions: cx.known.size,
    findings: cx.findings,
    violations: cx.violations,
  };
  if (process.env.PROVE_NS === "1") process.stdout.write(`PROVE-RESULT ${JSON.stringify(s)}\n`);
  return s;
}

interface KillResult {
  phase: Phase;
  /** The session the store held open when the kill came (by code id), if one may have been. */
  open: boolean;
  codeId?: string;
}

async function connect(cx: Ctx, code: IssuedCode): Promise<{ link: CarrierLink; central: NobleCentral }> {
  const central = new NobleCentral({ controller: { kind: "uart", path: cx.rig.carrierBridge.path } });
  const link = await central.connect(code.pileId, { timeoutMs: 15_000 });
  return { link, central };
}

function issue(cx: Ctx): IssuedCode {
  const r = cx.rig.issuer.issueFor({
    deviceId: `VIN-${cx.n++}`,
    pileId: cx.rig.pileId,
    validForS: 3600,
    vehicle: { inAcquisitionState: true },
  });
  if (!r.ok) throw new Error(`issue: ${r.error.message}`);
  cx.codes.push(r.value);
  return r.value;
}

function countAccepted(cx: Ctx, codeId: string, out: CarrierOutcome): void {
  if (out.kind !== "accepted") return;
  const n = (cx.accepted.get(codeId) ?? 0) + 1;
  cx.accepted.set(codeId, n);
  if (n > 1) cx.violations.push(`code ${codeId} accepted ${n} times`);
}

/** One round: drive the pile to the target phase, SIGKILL it at a random instant there. */
async function oneKill(cx: Ctx, target: (typeof TARGETS)[number]): Promise<KillResult> {
  const { rig, rng } = cx;
  if (target === "idle") {
    await sleep(rng.int(0, 400));
    await rig.killDaemon();
    return { phase: "idle", open: false };
  }
  if (target === "boot") {
    await rig.killDaemon();
    rig.spawnDaemon();
    await sleep(rng.int(0, 700));
    const ready = rig.daemon?.readyAt !== undefined;
    await rig.killDaemon();
    return { phase: ready ? "idle" : "boot", open: false };
  }
  const code = issue(cx);
  const codeId = hex(code.codeId);
  const { link, central } = await connect(cx, code);
  let writes = 0;
  let presentAt = 0;
  let resultAt = 0;
  const states: string[] = [];
  const killAt = { t: Number.POSITIVE_INFINITY };
  const wrapped: CarrierLink = {
    ...link,
    mtu: link.mtu,
    write: async (f) => {
      writes++;
      if (writes === 2) presentAt = performance.now();
      return link.write(f);
    },
    onNotify: (l) => link.onNotify(l),
    readInfo: () => link.readInfo(),
    onDisconnect: (l) => link.onDisconnect(l),
    close: () => link.close(),
  };
  const abort = new AbortController();
  const run = unlock(wrapped, {
    code: code.code,
    verifySecret: code.verifySecret,
    pileId: code.pileId,
    timeoutMs: 8000,
    suite: nodeSuite,
    signal: abort.signal,
    onStatus: (s) => states.push(pileStateName(s.state) ?? ""),
  }).then((out) => {
    resultAt = performance.now();
    countAccepted(cx, codeId, out);
    return out;
  });
  try {
    if (target === "authorizing") {
      const aim = rng.next() ** 2 * cx.presentMs * 1.6; // biased early: the commit comes first
      while (presentAt === 0 && resultAt === 0) await sleep(1);
      if (presentAt > 0) killAt.t = presentAt + aim;
      while (resultAt === 0 && performance.now() < killAt.t) await sleep(0);
      const beforeResult = resultAt === 0;
      await rig.killDaemon();
      if (!beforeResult) {
        cx.presentMs = cx.presentMs * 0.8 + (resultAt - presentAt) * 0.2;
        return { phase: "preparing", open: true, codeId };
      }
      return { phase: "authorizing-before-commit", open: true, codeId }; // sorted after the restart
    }
    const out = await run;
    cx.presentMs = cx.presentMs * 0.8 + (resultAt - presentAt) * 0.2;
    if (out.kind !== "accepted") {
      cx.violations.push(`a fresh code was not accepted: ${JSON.stringify(out)}`);
      await rig.killDaemon();
      return { phase: "idle", open: false };
    }
    if (target === "preparing") {
      await sleep(rng.int(0, 250));
      await rig.killDaemon();
      return { phase: states.includes("CHARGING") ? "charging" : "preparing", open: true, codeId };
    }
    const until = Date.now() + 15_000;
    while (!(await rig.status())?.state.startsWith("CHARGING") && Date.now() < until) await sleep(50);
    if (target === "charging") {
      await sleep(rng.int(0, 1500));
      await rig.killDaemon();
      return { phase: "charging", open: true, codeId };
    }
    abort.abort();
    const stopping = stop(wrapped, {
      codeId: code.codeId,
      keyId: code.keyId,
      verifySecret: code.verifySecret,
      pileId: code.pileId,
      timeoutMs: 8000,
      suite: nodeSuite,
    }).catch(() => undefined);
    const w0 = writes;
    while (writes < w0 + 2 && performance.now() - resultAt < 10_000) await sleep(1);
    await sleep(rng.next() * cx.presentMs * 2);
    await rig.killDaemon();
    await stopping;
    return { phase: "finishing", open: true, codeId };
  } finally {
    abort.abort();
    await run.catch(() => undefined);
    await link.close().catch(() => undefined);
    await central.close().catch(() => undefined);
  }
}

/** Rolls each state file back to its last synced content; deletes the never-synced ones. */
function powerCut(rig: Rig): void {
  for (const f of readdirSync(rig.state)) {
    const sh = join(rig.shadow, f);
    if (existsSync(sh)) copyFileSync(sh, join(rig.state, f));
    else unlinkSync(join(rig.state, f));
  }
}

function integrity(rig: Rig): string {
  const copy = mkdtempSync(join(tmpdir(), "piled-prove-ic-"));
  try {
    for (const f of readdirSync(rig.state)) copyFileSync(join(rig.state, f), join(copy, f));
    if (!existsSync(join(copy, "piled.db"))) return "ok";
    const db = new Database(join(copy, "piled.db"));
    const r = db.pragma("integrity_check", { simple: true });
    db.close();
    return String(r);
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
}

interface After {
  skipStop: boolean;
  cut: boolean;
  open: boolean;
  codeId?: string | undefined;
  plant?: "replay" | "tamper" | undefined;
  k: number;
}

/** Checks everything after one kill; true when the round's code reached the ledger. */
async function afterKill(cx: Ctx, a: After): Promise<boolean> {
  const { rig, violations: v } = cx;
  const tag = `kill ${a.k}`;
  if (a.cut) powerCut(rig);
  if (!a.skipStop) {
    rig.safeOutputs();
    if (rig.value("contactor") !== "0") v.push(`${tag}: contactor closed after ExecStopPost`);
  }
  const ic = integrity(rig);
  if (ic !== "ok") v.push(`${tag}: integrity_check: ${ic}`);
  const d = rig.spawnDaemon();
  await rig.waitUp(true);
  if (d.atReady?.contactor !== "0") v.push(`${tag}: contactor ${d.atReady?.contactor} when READY=1 arrived`);
  let sessions = await rig.sessions();
  // the register can only have grown since the boot read it (the contactor may have stayed closed
  // until the new daemon opened it when ExecStopPost was skipped)
  const energyAtKill = rig.meter.values().energyImportWh;
  if (a.plant === "tamper" && sessions[0])
    sessions = [{ ...sessions[0], energyWh: sessions[0].energyWh + 1 }, ...sessions.slice(1)];
  const ids = new Set<string>();
  for (const s of sessions) {
    if (ids.has(s.codeId)) v.push(`${tag}: code ${s.codeId} holds two sessions`);
    ids.add(s.codeId);
    if (s.status === "active") v.push(`${tag}: session ${s.id} still active after the restart`);
    const before = cx.known.get(s.id);
    if (before && before.status !== "active" && JSON.stringify(before) !== JSON.stringify(s))
      v.push(`${tag}: session ${s.id} changed: ${JSON.stringify(before)} → ${JSON.stringify(s)}`);
  }
  for (const [id, s] of cx.known)
    if (s.status !== "active" && !sessions.some((x) => x.id === id)) v.push(`${tag}: session ${id} lost`);
  const mine = a.codeId ? sessions.find((s) => s.codeId === a.codeId) : undefined;
  if (mine && !cx.known.has(mine.id)) {
    if (mine.status === "interrupted") {
      if (mine.reason !== "INTERRUPTED") v.push(`${tag}: interrupted session reason ${mine.reason}`);
      if (mine.energySource !== "meter") v.push(`${tag}: interrupted session not closed from the meter`);
      if (
        mine.meterStopWh === null ||
        mine.meterStartWh === null ||
        mine.meterStopWh < mine.meterStartWh ||
        mine.meterStopWh > energyAtKill + 1
      )
        v.push(
          `${tag}: interrupted session energy ${mine.meterStartWh}→${mine.meterStopWh} (meter ${energyAtKill})`,
        );
    } else if (mine.status !== "finished") v.push(`${tag}: session status ${mine.status}`);
  }
  for (const s of sessions) cx.known.set(s.id, s);
  // a recorded code presented again must be refused (on this daemon, after its restart)
  const replay = mine
    ? cx.codes.find((c) => hex(c.codeId) === a.codeId)
    : cx.rng.chance(0.2)
      ? pickRecorded(cx, ids)
      : undefined;
  if (replay) await present(cx, replay, a.plant === "replay");
  if (rig.value("contactor") !== "0" && (await rig.status())?.state !== "CHARGING")
    v.push(`${tag}: contactor closed at idle`);
  // back to idle for the next round; a latched fault is a finding (fail-safe, not a broken
  // promise of the campaign): noted, then cleared where the plant allows it
  let s = await rig.status();
  if (s?.state === "FAULTED") {
    cx.findings.push(`${tag}: ${s.faults.join(",")} latched`);
    await rig.control("clear-fault", ["all"]).catch(() => undefined);
    s = await rig.status();
  }
  if (s && s.state !== "AVAILABLE") {
    await rig.killDaemon();
    rig.safeOutputs();
    rig.spawnDaemon();
    await rig.waitUp(true);
  }
  return mine !== undefined;
}

function pickRecorded(cx: Ctx, ids: Set<string>): IssuedCode | undefined {
  const rec = cx.codes.filter((c) => ids.has(hex(c.codeId)));
  return rec.length > 0 ? cx.rng.pick(rec) : undefined;
}

async function present(cx: Ctx, code: IssuedCode, planted: boolean): Promise<void> {
  const codeId = hex(code.codeId);
  const { link, central } = await connect(cx, code);
  try {
    const out = await unlock(link, {
      code: code.code,
      verifySecret: code.verifySecret,
      pileId: code.pileId,
      timeoutMs: 8000,
      suite: nodeSuite,
    });
    // every code presented here is in the ledger: an acceptance is a replay (the planted fault
    // counts a refusal as one, so the checker is seen to fire)
    if (out.kind === "accepted" || planted) cx.violations.push(`replay of recorded code ${codeId} accepted`);
  } finally {
    await link.close().catch(() => undefined);
    await central.close().catch(() => undefined);
  }
  // a replay accepted would have opened a session: close it so the next round starts idle
  const s = await cx.rig.status();
  if (s && s.state !== "AVAILABLE") await cx.rig.control("stop").catch(() => undefined);
}
