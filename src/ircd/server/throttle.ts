/**
 * Token buckets keyed by string (an IP, a casefolded account). Used for failed login attempts:
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

  /**
   * Give back a token taken for an attempt that succeeded: only failures should count, but the
   * token is taken up front so that parallel guesses cannot all pass before any has failed.
   */
  refund(key: string): void {
    const b = this.buckets.get(key);
    if (b) b.tokens = Math.min(this.capacity, b.tokens + 1);
  }

  sweep(now = Date.now()): void {
    for (const [key, b] of this.buckets) {
      if (b.tokens + ((now - b.at) / 60_000) * this.perMinute >= this.capacity) this.buckets.delete(key);
    }
  }
}
