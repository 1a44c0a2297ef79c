/**
 * Logging a companion in from the command line: what a failed SealClient.connect means, in words
 * a user can act on (wrong password, a certificate that changed, nothing listening there).
 */
import { stat } from 'node:fs/promises';
import net from 'node:net';
import { SealClientError } from '../client/errors.js';
import type { HostPort } from '../protocol/address.js';
import { normalizeFingerprint } from '../protocol/fingerprint.js';
import { isValidAccountName } from '../protocol/names.js';
import { parseHostPort, tlsOptions } from './format.js';
import { defaultKeyFile, type Values } from './keygen.js';
import { CliError, UsageError, readSmallTextFile } from './util.js';

/** What `--server`, `--user`, `--tls…`, `--keybot-…` and `--key` say, checked (chat, register). */
export interface CompanionLogin {
  server: HostPort;
  tls: { tls: boolean; tlsFingerprint?: string };
  user: string;
  keybotFingerprint?: string;
  keybotPublicKey?: string;
  /** The private key file (the default one checked to exist). */
  keyFile: string;
}

export async function companionLogin(values: Values, userIs = 'your account name'): Promise<CompanionLogin> {
  if (typeof values.server !== 'string') throw new UsageError('--server HOST:PORT is required');
  if (typeof values.user !== 'string') throw new UsageError(`--user NAME is required (${userIs})`);
  const server = parseHostPort(values.server, '--server');
  const tls = tlsOptions(values);
  const user = values.user;
  if (!isValidAccountName(user)) throw new UsageError(`--user: "${user}" is not a valid account name`);
  let keybotFingerprint: string | undefined;
  if (typeof values['keybot-fingerprint'] === 'string') {
    keybotFingerprint = normalizeFingerprint(values['keybot-fingerprint']);
    if (!keybotFingerprint) throw new UsageError(`--keybot-fingerprint: "${values['keybot-fingerprint']}" is not a key fingerprint (40 or 64 hex digits)`);
  }
  const keybotPublicKey = typeof values['keybot-key'] === 'string' ? await readSmallTextFile(values['keybot-key']) : undefined;
  const keyFile = typeof values.key === 'string' ? values.key : defaultKeyFile(user);
  if (typeof values.key !== 'string' && !(await stat(keyFile).then(() => true, () => false))) {
    throw new CliError(`no key at ${keyFile}: make one with 'sealchat keygen ${user}', or pass --key FILE`);
  }
  return {
    server, tls, user, keyFile,
    ...(keybotFingerprint !== undefined ? { keybotFingerprint } : {}),
    ...(keybotPublicKey !== undefined ? { keybotPublicKey } : {}),
  };
}

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
