/**
 * Latency histogram in microseconds, cheap enough to update on every delivery:
 * 1 µs buckets below 1 ms, 10 µs buckets to 100 ms, 1 ms buckets to 2 s, then one overflow
 * bucket. Percentiles are exact to the bucket width.
 */
const B1 = 1_000;
const B2 = B1 + (100_000 - 1_000) / 10; // 10 900
const B3 = B2 + (2_000_000 - 100_000) / 1_000; // 12 800
export const HIST_BUCKETS = B3 + 1;

export function bucketOf(us: number): number {
  if (us < 0) return 0;
  if (us < 1_000) return us | 0;
  if (us < 100_000) return B1 + (((us - 1_000) / 10) | 0);
  if (us < 2_000_000) return B2 + (((us - 100_000) / 1_000) | 0);
  return B3;
}

/** Upper edge of a bucket, in microseconds. */
export function bucketValue(b: number): number {
  if (b < B1) return b + 1;
  if (b < B2) return 1_000 + (b - B1 + 1) * 10;
  if (b < B3) return 100_000 + (b - B2 + 1) * 1_000;
  return Infinity;
}

export function toSparse(h: Uint32Array): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = 0; i < h.length; i++) if (h[i]) out.push([i, h[i]!]);
  return out;
}

export function mergeSparse(parts: Array<Array<[number, number]>>): Uint32Array {
  const h = new Uint32Array(HIST_BUCKETS);
  for (const p of parts) for (const [i, c] of p) h[i]! += c;
  return h;
}

/** The q-quantile (0..1) in milliseconds, or NaN for an empty histogram. */
export function quantileMs(h: Uint32Array, q: number): number {
  let total = 0;
  for (let i = 0; i < h.length; i++) total += h[i]!;
  if (total === 0) return NaN;
  const rank = Math.ceil(q * total);
  let seen = 0;
  for (let i = 0; i < h.length; i++) {
    seen += h[i]!;
    if (seen >= rank) return bucketValue(i) / 1000;
  }
  return Infinity;
}
