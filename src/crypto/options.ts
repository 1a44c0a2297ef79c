/**
 * Checks of the one options object the key calls take (misuse throws a TypeError naming the call).
 */

export function requireOptions(options: unknown, caller: string): Record<string, unknown> {
  if (!options || typeof options !== 'object') throw new TypeError(`${caller}: expected one options object`);
  return options as Record<string, unknown>;
}

export function toDate(now: unknown, caller: string): Date {
  if (now === undefined) return new Date();
  if (now instanceof Date && !Number.isNaN(now.getTime())) return now;
  if (typeof now === 'number' && Number.isFinite(now)) return new Date(now);
  throw new TypeError(`${caller}: options.now must be a Date or a number of milliseconds`);
}
