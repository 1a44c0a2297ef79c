/**
 * Token buckets keyed by string (an IP, a casefolded account). Used for login attempts:
 * `capacity` attempts at once, refilled at `perMinute` per minute. Entries that are full again
 * are forgotten by `sweep()`, so memory is bounded by recent activity.
 */
export class KeyedRateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly perMinute: number, private readonly capacity = perMinute) {}

  /** Take one token for `key`; false when the key is over its rate. A rate of 0 means unlimited. */
  take(key: string, now = Date.now()): boolean {
    if (this.perMinute <= 0) return true;
    const b = this.buckets.get(key) ?? { tokens: this.capacity, at: now };
    b.tokens = Math.min(this.capacity, b.tokens + ((now - b.at) / 60_000) * this.perMinute);
    b.at = now;
    if (b.tokens < 1) {
      this.buckets.set(key, b);
      return false;
    }
    b.tokens -= 1;
    this.buckets.set(key, b);
    return true;
  }

  sweep(now = Date.now()): void {
    for (const [key, b] of this.buckets) {
      if (b.tokens + ((now - b.at) / 60_000) * this.perMinute >= this.capacity) this.buckets.delete(key);
    }
  }
}
