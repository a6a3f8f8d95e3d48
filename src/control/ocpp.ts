/**
 * The control commands of the OCPP station: `ocpp` (link, boot, outbox depth, last error, the
 * OCMF station public key) and `ocmf [N]` (the last N sealed session records; `pilectl sessions
 * --ocmf`). Both answer NOT_ENABLED when the station is off.
 */
import type { CommandSpec } from "./table.js";
import type { CommandOutcome } from "./views.js";

/** What `ocpp` shows (the daemon's ocpp-glue.ts builds it). */
export interface OcppView {
  identity: string;
  url: string;
  link: string;
  boot: string;
  outbox: { depth: number; dropped: number; dead: number };
  lastError: string | undefined;
  faultsReported: number;
  securityEventsReported: number;
  /** Bad-input counters of the link, by name. */
  counters: object;
  /** The OCMF station key, DER SubjectPublicKeyInfo in hex. */
  publicKey: string;
}

export interface OcmfView {
  sessionId: string;
  page: number;
  sealedAt: number;
  record: string;
}

export interface OcppControl {
  view(): OcppView;
  ocmf(limit: number): OcmfView[];
}

const OFF: CommandOutcome<never> = {
  ok: false,
  error: { code: "NOT_ENABLED", message: "the OCPP station is off (ocpp.enabled in the config)" },
};

export const OCPP_SPECS = {
  ocpp: {
    usage: "ocpp",
    summary: "the OCPP link, outbox depth, last error and the OCMF station key",
    parse: (args: string[]) =>
      args.length === 0
        ? { ok: true as const, args: undefined }
        : { ok: false as const, message: "takes no arguments" },
    run: (ctx) => {
      const o = ctx.pile.ocpp?.();
      return o === undefined ? OFF : { ok: true, result: o.view() };
    },
    format: (v: OcppView) => {
      return [
        `ocpp ${v.identity} → ${v.url}  link ${v.link}  boot ${v.boot}`,
        `outbox ${v.outbox.depth} pending  ${v.outbox.dropped} dropped  ${v.outbox.dead} given up`,
        `last error ${v.lastError ?? "none"}`,
        `reported faults ${v.faultsReported}  security events ${v.securityEventsReported}`,
        `counters ${Object.entries(v.counters)
          .map(([k, n]) => `${k}=${n}`)
          .join(" ")}`,
        `OCMF station public key ${v.publicKey}`,
      ].join("\n");
    },
  } satisfies CommandSpec<undefined, OcppView>,
  ocmf: {
    usage: "ocmf [N]",
    summary: "the last N sealed OCMF session records (default 10)",
    parse: (args: string[]) => {
      if (args.length === 0) return { ok: true as const, args: 10 };
      const a = args[0] ?? "";
      return args.length === 1 && /^\d{1,4}$/.test(a) && Number(a) >= 1 && Number(a) <= 1000
        ? { ok: true as const, args: Number(a) }
        : { ok: false as const, message: "N must be a whole number 1..1000" };
    },
    run: (ctx, n) => {
      const o = ctx.pile.ocpp?.();
      return o === undefined ? OFF : { ok: true, result: o.ocmf(n) };
    },
    format: (list: OcmfView[]) => {
      return list.length === 0 ? "no sealed sessions" : list.map((x) => x.record).join("\n");
    },
  } satisfies CommandSpec<number, OcmfView[]>,
};
