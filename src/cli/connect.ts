/**
 * Logging a companion in from the command line: what a failed SealClient.connect means, in words
 * a user can act on (wrong password, a certificate that changed, nothing listening there).
 */
import net from 'node:net';
import { SealClientError } from '../client/errors.js';
import type { HostPort } from '../protocol/address.js';
import { CliError } from './util.js';

/** Why a connection could not be made, in words (asked only after SealClient failed). */
export function probe(server: HostPort, ms = 3000): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = net.connect({ host: server.host, port: server.port });
    const done = (why: string | undefined): void => {
      clearTimeout(t);
      s.destroy();
      resolve(why);
    };
    const t = setTimeout(() => done('no answer (a firewall, or the wrong address?)'), ms);
    s.once('connect', () => done(undefined));
    s.once('error', (err: NodeJS.ErrnoException) => {
      const why: Record<string, string> = {
        ECONNREFUSED: 'connection refused (is the server running, on that port?)',
        ENOTFOUND: 'no such host',
        EHOSTUNREACH: 'host unreachable',
        ENETUNREACH: 'network unreachable',
      };
      done(why[err.code ?? ''] ?? err.message);
    });
  });
}

/** The error to end a command with when logging in as `user` at `server` failed with `err`. */
export async function loginFailure(err: unknown, server: HostPort, user: string): Promise<unknown> {
  if (!(err instanceof SealClientError)) return err;
  const where = `${server.host}:${server.port}`;
  if (err.code === 'tls') return new CliError(`${err.message} (check the fingerprint with your administrator; if the server really has a new certificate, remove its line from known_servers.json or pass --tls-fingerprint)`);
  if (err.code === 'auth') return new CliError(`cannot log in to ${where} as ${user}: wrong account name or password (${err.message})`);
  if (err.code === 'connection' || err.code === 'timeout') {
    const why = await probe(server);
    return new CliError(why ? `cannot connect to ${where}: ${why}` : `cannot log in to ${where}: ${err.message}`);
  }
  return new CliError(err.message);
}
