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

/**
 * The key an address is counted under (clones, login attempts): an IPv4 address as it is; an
 * IPv6 address by its first `prefixLength` bits, because one subscriber usually holds a whole /64
 * (RFC 6177) and could otherwise spread guesses over 2^64 addresses. Text that is not IPv6 is its
 * own key.
 */
export function addressKey(ip: string, prefixLength: number): string {
  if (!ip.includes(':')) return ip;
  const bytes = ipv6Bytes(ip);
  if (!bytes) return ip;
  const bits = Math.max(0, Math.min(128, prefixLength));
  for (let i = 0; i < 16; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    bytes[i]! &= (0xff << (8 - keep)) & 0xff;
  }
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return `${groups.join(':')}/${bits}`;
}

/** The 16 bytes of an IPv6 address in text form (with `::` and an embedded IPv4 tail), or undefined. */
function ipv6Bytes(text: string): number[] | undefined {
  const zone = text.indexOf('%');
  const addr = zone >= 0 ? text.slice(0, zone) : text;
  const halves = addr.split('::');
  if (halves.length > 2) return undefined;
  const parse = (part: string): number[] | undefined => {
    if (part === '') return [];
    const out: number[] = [];
    const groups = part.split(':');
    for (const [i, g] of groups.entries()) {
      if (i === groups.length - 1 && g.includes('.')) {
        const v4 = g.split('.').map(Number);
        if (v4.length !== 4 || v4.some((x) => !(x >= 0 && x <= 255))) return undefined;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
        out.push(parseInt(g, 16));
      }
    }
    return out;
  };
  const head = parse(halves[0]!);
  const tail = halves.length === 2 ? parse(halves[1]!) : [];
  if (!head || !tail) return undefined;
  const fill = 8 - head.length - tail.length;
  if (halves.length === 2 ? fill < 0 : fill !== 0) return undefined;
  const groups = [...head, ...Array<number>(fill).fill(0), ...tail];
  return groups.flatMap((g) => [g >> 8, g & 0xff]);
}
