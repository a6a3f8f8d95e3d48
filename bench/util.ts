/** Bench helpers: repeat a measurement and keep the median. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Operations per second of `fn`, median over `rounds` rounds of at least `minMs` each. */
export function opsPerSecond(fn: () => void, rounds = 7, minMs = 300): number {
  const rates: number[] = [];
  for (let r = 0; r < rounds; r++) {
    let n = 0;
    const t0 = performance.now();
    let t = t0;
    while (t - t0 < minMs) {
      for (let i = 0; i < 100; i++) fn();
      n += 100;
      t = performance.now();
    }
    rates.push((n * 1000) / (t - t0));
  }
  return Math.round(median(rates));
}

/** The q-quantile of `xs` (0 ≤ q ≤ 1), nearest rank. */
export function percentile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}
