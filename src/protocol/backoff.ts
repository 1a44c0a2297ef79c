/**
 * Capped exponential backoff, the one rule every reconnecting or restarting part of sealchat
 * follows (companions reconnecting to the daemon, keybot reconnecting, `serve` restarting keybot,
 * a companion asking keybot for its key again): the delay doubles per failed attempt up to a
 * cap, with optional jitter so that many clients cut off at once do not return at once.
 */

export interface BackoffOptions {
  /** First delay (default 1000 ms); doubles with each failed attempt... */
  initialMs?: number;
  /** ...up to this (default 30 000 ms). */
  maxMs?: number;
  /** Up to this fraction of each delay is taken off at random (default 0: none). */
  jitter?: number;
}

/** The delay before attempt `attempt` (0-based). `random` is injectable for tests. */
export function backoffDelay(attempt: number, o: BackoffOptions = {}, random: () => number = Math.random): number {
  const initial = Math.max(0, o.initialMs ?? 1000);
  const max = Math.max(initial, o.maxMs ?? 30_000);
  const jitter = Math.min(1, Math.max(0, o.jitter ?? 0));
  // The exponent is capped only so that 2 ** n stays finite; `max` caps the delay itself.
  const base = Math.min(max, initial * 2 ** Math.min(Math.max(0, attempt), 30));
  return Math.round(base * (1 - jitter * random()));
}
