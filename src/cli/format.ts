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

/**
 * `--tls` / `--tls-fingerprint FP` (which implies TLS): whether to use TLS and the fingerprint the
 * server's certificate must have (64 hex digits, any usual spelling).
 */
export function tlsOptions(values: Record<string, unknown>): { tls: boolean; tlsFingerprint?: string } {
  const fp = values['tls-fingerprint'];
  if (typeof fp !== 'string') return { tls: values.tls === true };
  const hex = fp.trim().replace(/^(sha256|sha-256)[:=]/i, '').replace(/[\s:]/g, '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new UsageError(`--tls-fingerprint: "${fp}" is not a SHA-256 fingerprint (64 hex digits, colons allowed)`);
  return { tls: true, tlsFingerprint: hex };
}

/** What a companion tells the user about the server's TLS certificate (undefined: nothing to say). */
export function serverCertificateNote(decision: { status: string; fingerprint?: string; source?: string }, server: string, file?: string): string | undefined {
  if (decision.status !== 'first-use' || !decision.fingerprint) return undefined;
  const fp = decision.fingerprint.toUpperCase().replace(/(..)(?=.)/g, '$1:');
  return (
    `first connection to ${server} over TLS: its certificate (SHA-256 ${fp}) is now pinned` +
    `${file ? ` in ${file}` : ''}; compare it with the fingerprint your administrator gives (sealchatd prints it at start)`
  );
}
