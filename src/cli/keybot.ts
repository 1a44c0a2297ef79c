/**
 * `sealchatd keybot`: the key service as its own process, beside a sealchatd whose config it reads
 * to find the daemon's listener and its data directory (keybot's credentials, key and room memory).
 */
import { startKeybot } from '../bot/main.js';
import type { IrcEndpoint } from '../bot/keybot.js';
import type { Config } from '../ircd/config.js';
import { parseHostPort } from '../protocol/address.js';
import { formatFingerprint } from '../protocol/fingerprint.js';
import { createLogger } from '../util/log.js';
import { VERSION } from '../util/version.js';

const log = createLogger('keybot');

/**
 * Which ircd listener keybot uses: `--irc HOST:PORT` if given, else the config's first plain
 * listener (a wildcard address means this host's loopback), else its first TLS listener.
 */
export function ircEndpointFor(config: Config, irc?: string): IrcEndpoint {
  if (irc !== undefined) return parseHostPort(irc, { allowZero: true });
  const loopback = (host: string): string => (host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host);
  const plain = config.listen.find((l) => !l.tls);
  if (plain) return { host: loopback(plain.host), port: plain.port };
  const secure = config.listen[0];
  if (!secure) throw new Error('the config has no IRC listener for keybot to connect to');
  // keybot reaches its own daemon over loopback; the certificate names the public host name.
  return { host: loopback(secure.host), port: secure.port, tls: true, rejectUnauthorized: false };
}

export interface RunKeybotOptions {
  config: Config;
  /** `--irc HOST:PORT`: where the ircd listens, when the config cannot tell (port 0). */
  irc?: string;
  out?: NodeJS.WritableStream;
}

/** `sealchatd keybot`: run until SIGINT/SIGTERM (or until a supervising parent goes away). */
export async function runKeybot(opts: RunKeybotOptions): Promise<number> {
  const { config } = opts;
  const out = opts.out ?? process.stdout;
  const endpoint = ircEndpointFor(config, opts.irc);
  if (endpoint.port === 0) throw new Error('the ircd listens on port 0 (any free port): tell keybot where with --irc HOST:PORT');
  const bot = await startKeybot({
    dataDir: config.dataDir,
    irc: endpoint,
    rotateAfterMessages: config.keybot.rotateAfterMessages,
    rotateAfterMs: config.keybot.rotateAfterMs,
  });
  out.write(`keybot ${VERSION}: key fingerprint ${formatFingerprint(bot.fingerprint)}\n`);
  out.write(`keybot: logged in to ${endpoint.host}:${endpoint.port}${endpoint.tls ? ' (TLS)' : ''}\n`);
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    // Started by `sealchatd serve` with an IPC channel: if the parent dies, so do we. The
    // channel must not keep the process alive once keybot has stopped.
    if (process.send) {
      process.once('disconnect', stop);
      process.channel?.unref();
    }
  });
  log.info('shutting down');
  const forced = setTimeout(() => process.exit(1), 5000);
  forced.unref();
  await bot.close();
  clearTimeout(forced);
  return 0;
}
