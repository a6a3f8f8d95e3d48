/** A PileControl for the console and control-socket tests: plain state, every call recorded. */
import type {
  AuditEntry,
  AuditView,
  ControlResult,
  KeyView,
  PileControl,
  SessionView,
} from "../../src/control/index.js";

export interface FakePileControl extends PileControl {
  audits: AuditEntry[];
  calls: string[];
  /** Key bytes the fake was handed (to check they go nowhere else). */
  keyHex: Map<number, string>;
  charging: boolean;
  latched: string[];
  meterFails: boolean;
}

export function fakePileControl(now = () => 1_700_000_000_000): FakePileControl {
  const keys: KeyView[] = [{ keyId: 1, file: "/etc/piled/keys/00000001.key", added: 1_690_000_000_000 }];
  const sessions: SessionView[] = [
    {
      id: "a1b2c3d4e5f60718293a4b5c6d7e8f90",
      codeId: "00112233445566778899aabbccddeeff",
      carrier: "vehicle",
      deviceId: "VIN-1",
      status: "finished",
      energyWh: 7200,
      energySource: "meter",
      startedAt: 1_699_000_000_000,
      endedAt: 1_699_000_360_000,
      meterStartWh: 1000,
      meterStopWh: 8200,
      reason: "STOPPED_BY_CARRIER",
      faults: [],
    },
  ];
  const refused = (code: string, message: string): ControlResult => ({ ok: false, code, message });
  const f: FakePileControl = {
    audits: [],
    calls: [],
    keyHex: new Map(),
    charging: true,
    latched: ["CONTACTOR_WELDED"],
    meterFails: false,
    status: () => {
      f.calls.push("status");
      return {
        pileId: "TEST-1",
        state: f.charging ? "CHARGING" : "IDLE",
        since: now() - 60_000,
        contactor: f.charging ? "closed" : "open",
        lock: f.charging ? "engaged" : "released",
        vehiclePresent: true,
        ble: "up",
        meterFresh: true,
        security: { recentFailedProofs: 0, alarm: false, events: 0, lastEventAt: null },
        faults: [...f.latched],
        unavailableBecause: [],
        store: { freeBytes: 52_428_800, minFreeBytes: 1_048_576, fault: null, faultSince: null, pending: 0 },
        session: f.charging ? { codeId: "aa".repeat(16), startedAt: now() - 60_000, energyWh: 120 } : null,
        uptimeMs: 3_600_000,
        version: "0.1.0",
        counters: { "ble.badFragment": 2 },
      };
    },
    meter: async () => {
      f.calls.push("meter");
      return f.meterFails
        ? { ok: false, code: "TIMEOUT", message: "meter did not answer" }
        : { ok: true, energyImportWh: 12345, powerW: 7200, voltageV: 231.2, currentA: 31.1, ageMs: 120 };
    },
    sessions: (limit) => {
      f.calls.push(`sessions ${limit}`);
      return sessions.slice(0, limit);
    },
    faults: () => {
      f.calls.push("faults");
      return f.latched.map((code) => ({ code, since: now() - 1000, latched: true }));
    },
    clearFault: (code, actor) => {
      f.calls.push(`clearFault ${code} ${actor}`);
      if (code === "all") {
        f.latched = [];
        return { ok: true, detail: "cleared all" };
      }
      if (!f.latched.includes(code)) return refused("NOT_LATCHED", `${code} is not latched`);
      f.latched = f.latched.filter((c) => c !== code);
      return { ok: true, detail: `cleared ${code}` };
    },
    stop: async (actor) => {
      f.calls.push(`stop ${actor}`);
      if (!f.charging) return refused("NO_SESSION", "no session to stop");
      f.charging = false;
      return { ok: true, detail: "session stopped" };
    },
    relayTest: async (actor) => {
      f.calls.push(`relayTest ${actor}`);
      return f.charging
        ? refused("BUSY", "a session is running")
        : { ok: true, detail: "relays and feedbacks ok" };
    },
    setCurrentLimit: async (currentA, actor) => {
      f.calls.push(`setCurrentLimit ${currentA} ${actor}`);
      return { ok: true, detail: currentA === null ? "no current limit" : `current limit ${currentA} A` };
    },
    setAvailable: async (available, actor) => {
      f.calls.push(`setAvailable ${available} ${actor}`);
      return { ok: true, detail: available ? "pile in service" : "pile out of service" };
    },
    keys: {
      list: () => {
        f.calls.push("keys.list");
        return keys.map((k) => ({ ...k }));
      },
      add: (keyId, hex, actor) => {
        f.calls.push(`keys.add ${keyId} ${actor}`);
        if (keys.some((k) => k.keyId === keyId)) return refused("KEY_EXISTS", `key ${keyId} exists`);
        f.keyHex.set(keyId, hex);
        keys.push({
          keyId,
          file: `/etc/piled/keys/${keyId.toString(16).padStart(8, "0")}.key`,
          added: now(),
        });
        return { ok: true, detail: `key ${keyId} added` };
      },
      retire: (keyId, actor) => {
        f.calls.push(`keys.retire ${keyId} ${actor}`);
        const i = keys.findIndex((k) => k.keyId === keyId);
        if (i < 0) return refused("NO_KEY", `no key ${keyId}`);
        keys.splice(i, 1);
        return { ok: true, detail: `key ${keyId} retired` };
      },
    },
    time: () => {
      f.calls.push("time");
      return { board: now(), floor: now() - 5000, now: now(), skewMs: 300_000 };
    },
    log: (limit) => {
      f.calls.push(`log ${limit}`);
      return f.audits.slice(-limit).map((e, i): AuditView => ({ ...e, at: now() + i }));
    },
    audit: (entry) => {
      f.audits.push(entry);
    },
  };
  return f;
}

/** The repository root, found from a compiled test file's folder. */
export async function repoRoot(fromUrl: string): Promise<string> {
  const { existsSync } = await import("node:fs");
  const { dirname, join } = await import("node:path");
  const { fileURLToPath } = await import("node:url");
  let d = dirname(fileURLToPath(fromUrl));
  while (d !== "/" && !(existsSync(join(d, "package.json")) && existsSync(join(d, "src")))) d = dirname(d);
  return d;
}
