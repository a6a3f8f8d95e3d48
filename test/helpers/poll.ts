/**
 * The one poll helper of the suite: asks `probe` again and again until it answers (anything but
 * undefined or false), at most `timeoutMs`. `everyMs: 0` yields to the event loop between asks
 * (setImmediate) instead of sleeping. A probe that throws fails the wait at once (wrap it when a
 * failure only means "not yet").
 */
import { setTimeout as sleep } from "node:timers/promises";

export interface PollOptions {
  /** Give up after this long (default 10 s). */
  timeoutMs?: number;
  /** Pause between two asks (default 10 ms; 0 = one turn of the event loop). */
  everyMs?: number;
}

type Answer<T> = T | undefined | false;

const pause = (ms: number): Promise<unknown> =>
  ms > 0 ? sleep(ms) : new Promise((resolve) => setImmediate(resolve));

/** The probe's first answer, or undefined once `timeoutMs` has passed without one. */
export async function poll<T>(
  probe: () => Answer<T> | Promise<Answer<T>>,
  opts: PollOptions = {},
): Promise<T | undefined> {
  const until = performance.now() + (opts.timeoutMs ?? 10_000);
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (performance.now() > until) return undefined;
    await pause(opts.everyMs ?? 10);
  }
}

/** The probe's first answer; throws "timed out waiting for <what>" (plus `detail()`) without one. */
export async function waitFor<T>(
  what: string,
  probe: () => Answer<T> | Promise<Answer<T>>,
  opts: PollOptions & { detail?: () => string } = {},
): Promise<T> {
  const v = await poll(probe, opts);
  if (v === undefined)
    throw new Error(`timed out waiting for ${what}${opts.detail ? `; ${opts.detail()}` : ""}`);
  return v;
}
