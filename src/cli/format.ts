/**
 * Small pure helpers of the `sealchat` commands: fingerprints as people compare them, clock
 * times, and HOST:PORT arguments.
 */
import { AddressError, parseHostPort as parseAddress, type HostPort, type ParseHostPortOptions } from '../protocol/address.js';
import { UsageError } from './util.js';

/** HH:MM in local time. */
export function clock(date: Date = new Date()): string {
  return `${String(date.getHours()).padStart(2, '0')}:${String(date.getMinutes()).padStart(2, '0')}`;
}

/**
 * Parse an address option (`--server`, `--listen`) with the one parser every program uses
 * (src/protocol/address.ts); `what` names the option in the usage error.
 */
export function parseHostPort(text: string, what: string, opts: ParseHostPortOptions = {}): HostPort {
  try {
    return parseAddress(text, opts);
  } catch (err) {
    if (err instanceof AddressError) throw new UsageError(`${what}: ${err.message}`);
    throw err;
  }
}
