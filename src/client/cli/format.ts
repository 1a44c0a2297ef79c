/**
 * Small pure helpers of the `sealchat` commands: fingerprints as people compare them, clock
 * times, and HOST:PORT arguments.
 */
import { UsageError } from '../../bin/cli-util.js';

/** Upper case in groups of four, as keybot's `fingerprint` command prints it. */
export function formatFingerprint(fp: string): string {
  return fp.toUpperCase().replace(/(.{4})(?=.)/g, '$1 ');
}

/** HH:MM in local time. */
export function clock(date: Date = new Date()): string {
  return `${String(date.getHours()).padStart(2, '0')}:${String(date.getMinutes()).padStart(2, '0')}`;
}

export interface HostPort {
  host: string;
  port: number;
}

/**
 * Parse `HOST:PORT`, `[v6]:PORT`, or (with `defaultHost`) a bare `PORT`. `what` names the option
 * in errors. Port 0 is allowed only with `allowZero` (a listener on any free port).
 */
export function parseHostPort(text: string, what: string, opts: { defaultHost?: string; allowZero?: boolean } = {}): HostPort {
  let host: string | undefined;
  let portText: string;
  const v6 = /^\[([^\]]+)\]:(\d+)$/.exec(text);
  if (v6) {
    host = v6[1]!;
    portText = v6[2]!;
  } else if (/^\d+$/.test(text) && opts.defaultHost !== undefined) {
    host = opts.defaultHost;
    portText = text;
  } else {
    const i = text.lastIndexOf(':');
    if (i <= 0 || text.indexOf(':') !== i) throw new UsageError(`${what}: expected HOST:PORT, got "${text}"`);
    host = text.slice(0, i);
    portText = text.slice(i + 1);
  }
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= (opts.allowZero ? 0 : 1) && port <= 65535)) throw new UsageError(`${what}: "${portText}" is not a port number`);
  return { host, port };
}

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
