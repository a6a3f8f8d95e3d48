/**
 * Bad input seen by the site surfaces ("http.badLogin", "mqtt.garbage", …), counted so that a
 * refusal is never silent. The metrics endpoint exports them by surface and kind.
 */
export class SiteCounters {
  private readonly counts = new Map<string, number>();

  inc(name: `${"http" | "mqtt" | "metrics"}.${string}`, n = 1): void {
    this.counts.set(name, (this.counts.get(name) ?? 0) + n);
  }

  get(name: string): number {
    return this.counts.get(name) ?? 0;
  }

  all(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }
}
