/**
 * `sealchat proxy`: run the local encrypting proxy in the foreground until SIGINT/SIGTERM.
 */
import { CliError, UsageError, readSmallTextFile } from './util.js';
import { createLogger } from '../util/log.js';
import { LocalProxy } from '../client/proxy/proxy.js';
import { isLoopback } from '../protocol/address.js';
import { formatFingerprint, normalizeFingerprint } from '../protocol/fingerprint.js';
import { KnownServers, knownServersFileFor } from '../client/index.js';
import { parseHostPort, serverCertificateNote, tlsOptions } from './format.js';
import { defaultKeyFile, type Values } from './keygen.js';
import { PASSPHRASE, keybotAccount, secretSource, unlockKeyFile } from './secrets.js';

const DEFAULT_LISTEN = '127.0.0.1:6680';

export async function runProxy(values: Values, _args: string[], out: NodeJS.WritableStream = process.stdout): Promise<number> {
  if (typeof values.server !== 'string') throw new UsageError('--server HOST:PORT is required (the sealchat server)');
  const server = parseHostPort(values.server, '--server');
  const tls = tlsOptions(values);
  const listen = parseHostPort(typeof values.listen === 'string' ? values.listen : DEFAULT_LISTEN, '--listen', {
    defaultHost: '127.0.0.1',
    allowZero: true,
  });
  if (!isLoopback(listen.host) && values['allow-remote'] !== true) {
    throw new UsageError(
      `--listen ${listen.host} is reachable from other machines, and the proxy uses your private key for whoever connects; ` +
        'listen on 127.0.0.1 (or pass --allow-remote if you really mean it)',
    );
  }
  const user = typeof values.user === 'string' ? values.user : undefined;
  const keyFile = typeof values.key === 'string' ? values.key : user !== undefined ? defaultKeyFile(user) : undefined;
  if (keyFile === undefined) throw new UsageError('--key FILE is required (your private key; or --user NAME for ~/.sealchat/NAME.key.asc)');
  let keybotFingerprint: string | undefined;
  if (typeof values['keybot-fingerprint'] === 'string') {
    keybotFingerprint = normalizeFingerprint(values['keybot-fingerprint']);
    if (!keybotFingerprint) throw new UsageError(`--keybot-fingerprint: "${values['keybot-fingerprint']}" is not a key fingerprint (40 or 64 hex digits)`);
  }
  const keybotPublicKey = typeof values['keybot-key'] === 'string' ? await readSmallTextFile(values['keybot-key']) : undefined;

  const keybotLogin = keybotAccount(values);
  if (keybotLogin && user === undefined) throw new UsageError('--keybot-account needs --user NAME (the keybot account every connection logs in to)');
  const serversFile = knownServersFileFor(undefined);
  const privateKey = await unlockKeyFile(keyFile, secretSource(values, PASSPHRASE));
  // A network without services (ngIRCd): every connection logs in to keybot (never logged, never shown).
  const keybotPassword = await keybotLogin?.(`keybot password for ${user} on ${server.host}:${server.port}: `);
  const log = createLogger('proxy');
  let proxy: LocalProxy;
  try {
    proxy = await LocalProxy.start({
      listen,
      upstream: {
        host: server.host,
        port: server.port,
        ...tls,
        rejectUnauthorized: values.insecure !== true,
        ...(tls.tls && serversFile ? { knownServers: new KnownServers(serversFile) } : {}),
        onServerCertificate: (decision, at) => {
          const note = serverCertificateNote(decision as { status: string; fingerprint?: string }, at, serversFile || undefined);
          if (note) out.write(`sealchat proxy: ${note}\n`);
        },
      },
      privateKey,
      ...(user !== undefined ? { account: user } : {}),
      ...(keybotFingerprint !== undefined ? { keybotFingerprint } : {}),
      ...(keybotPublicKey !== undefined ? { keybotPublicKey } : {}),
      ...(keybotPassword !== undefined ? { keybotPassword } : {}),
      allowPlaintext: values['allow-plaintext'] === true,
      log,
    });
  } catch (err) {
    throw new CliError(`cannot listen on ${listen.host}:${listen.port}: ${(err as Error).message}`);
  }
  const a = proxy.address;
  const shown = a.host.includes(':') ? `[${a.host}]` : a.host;
  out.write(
    `sealchat proxy: listening on ${shown}:${a.port}, relaying to ${server.host}:${server.port}${tls.tls ? ' (TLS)' : ' (no TLS)'}\n` +
      `your key: ${formatFingerprint(privateKey.fingerprint)}\n` +
      `connect your IRC client to ${shown} port ${a.port} (no TLS) with your usual account name and password\n`,
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await proxy.close('the proxy was stopped');
  return 0;
}
