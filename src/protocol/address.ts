/**
 * `HOST:PORT` as every sealchat program takes it: the daemon's `listen` entries and `--listen`,
 * keybot's `--irc`, the companions' `--server` and `--listen`. One parser, so the same text means
 * the same address everywhere.
 */
import { isIP } from 'node:net';

export interface HostPort {
  host: string;
  port: number;
}

export interface ParseHostPortOptions {
  /** A bare `PORT` means this host and that port (companions' `--listen 6680`). */
  defaultHost?: string;
  /** Port 0 asks the OS for any free port: allowed for listeners, never for a server to reach. */
  allowZero?: boolean;
}

/** Thrown for text that is not an address; the message names the text and says what was expected. */
export class AddressError extends Error {
  override name = 'AddressError';
}

/**
 * Parse `HOST:PORT`, `[IPv6]:PORT` (brackets required, as in RFC 3986 §3.2.2), or, with
 * `defaultHost`, a bare `PORT`.
 */
export function parseHostPort(spec: string, opts: ParseHostPortOptions = {}): HostPort {
  if (opts.defaultHost !== undefined && /^\d{1,5}$/.test(spec)) return { host: opts.defaultHost, port: checkPort(spec, spec, opts) };
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(spec);
  if (!m) throw new AddressError(`"${spec}" is not HOST:PORT (use [ADDR]:PORT for IPv6, e.g. [::1]:6667)`);
  const host = m[1] ?? m[2]!;
  if (m[1] !== undefined && isIP(host) !== 6) throw new AddressError(`"${host}" in "${spec}" is not an IPv6 address`);
  return { host, port: checkPort(m[3]!, spec, opts) };
}

function checkPort(text: string, spec: string, opts: ParseHostPortOptions): number {
  const port = Number(text);
  const min = opts.allowZero ? 0 : 1;
  if (port < min || port > 65535) throw new AddressError(`port ${port} in "${spec}" is out of range (${min}-65535)`);
  return port;
}

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
