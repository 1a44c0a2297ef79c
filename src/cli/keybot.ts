/**
 * `sealchatd keybot`: the key service as its own process, beside a sealchatd whose config it reads
 * to find the daemon's listener and its data directory (keybot's credentials, key and room memory);
 * or, with `--network irc(s)://host:port`, as an ordinary client of an existing IRC network
 * (docs/NETWORKS.md), logged in to its own services account, with its own key directory in the
 * data directory and no daemon or control socket.
 */
import { mkdir } from 'node:fs/promises';
import { startKeybot, type Keybot } from '../bot/main.js';
import type { IrcEndpoint } from '../bot/keybot.js';
import type { Pace } from '../bot/network/pacing.js';
import type { Config } from '../ircd/config.js';
import { parseHostPort } from '../protocol/address.js';
import { formatFingerprint } from '../protocol/fingerprint.js';
import { KEYBOT_NICK, ROOM_PREFIXES, type RoomPrefix } from '../protocol/names.js';
import { createLogger } from '../util/log.js';
import { VERSION } from '../util/version.js';
import { UsageError } from './util.js';

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
  return serveUntilStopped(bot);
}

/** Keep keybot running until SIGINT/SIGTERM (or a supervising parent goes away), then close it. */
async function serveUntilStopped(bot: Keybot): Promise<number> {
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

/**
 * `--network irc://host[:port]` (6667) or `ircs://host[:port]` (6697, TLS). Anything else is a
 * usage error that says what is expected.
 */
export function parseNetworkUrl(text: string): IrcEndpoint {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--network: "${text}" is not a URL; expected irc://HOST[:PORT] or ircs://HOST[:PORT]`);
  }
  const tls = url.protocol === 'ircs:';
  if (url.protocol !== 'irc:' && !tls) throw new UsageError(`--network: "${url.protocol}" is not irc: or ircs:`);
  if (url.username || url.password) throw new UsageError('--network: put no account or password in the URL (use --account and --password-file)');
  if ((url.pathname !== '' && url.pathname !== '/') || url.search || url.hash) throw new UsageError(`--network: "${text}" names more than a server`);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '') throw new UsageError(`--network: "${text}" names no host`);
  const port = url.port === '' ? (tls ? 6697 : 6667) : Number(url.port);
  return { host, port, ...(tls ? { tls: true } : {}) };
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `30s`, `15m`, `12h`, `7d`: a duration in ms, for `--key-change-cool-down`. */
export function parseDuration(text: string, option: string): number {
  const m = /^(\d{1,6})([smhd])$/.exec(text);
  if (!m) throw new UsageError(`${option}: "${text}" is not a duration (a number and s, m, h or d: 7d, 12h)`);
  return Number(m[1]) * UNITS[m[2]!]!;
}

/** `--pace 8,1` (8 lines at once, then 1 a second; fractions allowed) or `--pace off`. */
export function parsePace(text: string): Pace | false {
  if (text === 'off') return false;
  const m = /^(\d{1,5}),(\d{1,5}(?:\.\d{1,3})?)$/.exec(text);
  const burst = Number(m?.[1]);
  const perSecond = Number(m?.[2]);
  if (!m || burst < 1 || perSecond <= 0) throw new UsageError(`--pace: "${text}" is not BURST,PER_SECOND (e.g. 8,1) or off`);
  return { burst, perSecond };
}

/** `--room-prefix`: one of the prefixes companions know as sealchat rooms (src/protocol/names.ts). */
export function parseRoomPrefix(text: string): RoomPrefix {
  const prefix = ROOM_PREFIXES.find((p) => p === text);
  if (prefix === undefined) throw new UsageError(`--room-prefix: "${text}" is not one of ${ROOM_PREFIXES.join(', ')} (the prefixes every companion knows)`);
  return prefix;
}

export interface RunNetworkKeybotOptions {
  config: Config;
  endpoint: IrcEndpoint;
  /** keybot's services account on the network. */
  account: string;
  password: string;
  keyChangeCoolDownMs: number;
  /** `keybot`: a network without services; keybot keeps its own accounts (docs/NETWORKS.md "ngIRCd"). */
  accounts?: 'services' | 'keybot';
  /** OPER after login (ngIRCd's +F). */
  oper?: { name: string; password: string };
  /** Pacing of keybot's lines (default: src/bot/network/pacing.ts DEFAULT_PACE); false: none. */
  pace?: Pace | false;
  /** The prefix of keybot's rooms (default `#sc-`). */
  roomPrefix?: RoomPrefix;
  out?: NodeJS.WritableStream;
}

/** `sealchatd keybot --network …`: keybot as a client of an existing network, until stopped. */
export async function runNetworkKeybot(opts: RunNetworkKeybotOptions): Promise<number> {
  const { config, endpoint } = opts;
  const out = opts.out ?? process.stdout;
  // Without a daemon nobody else makes the data directory: keybot's key pair and its key
  // directory go there, so only its owner may read it.
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const bot = await startKeybot({
    dataDir: config.dataDir,
    irc: endpoint,
    rotateAfterMessages: config.keybot.rotateAfterMessages,
    rotateAfterMs: config.keybot.rotateAfterMs,
    network: {
      account: opts.account,
      password: opts.password,
      keyChangeCoolDownMs: opts.keyChangeCoolDownMs,
      ...(opts.accounts ? { accounts: opts.accounts } : {}),
      ...(opts.oper ? { oper: opts.oper } : {}),
      ...(opts.pace !== undefined ? { pace: opts.pace } : {}),
      ...(opts.roomPrefix !== undefined ? { roomPrefix: opts.roomPrefix } : {}),
    },
  });
  out.write(`keybot ${VERSION}: key fingerprint ${formatFingerprint(bot.fingerprint)}\n`);
  const as = opts.accounts === 'keybot' ? `${KEYBOT_NICK} with its own accounts` : opts.account;
  out.write(`keybot: logged in to ${endpoint.host}:${endpoint.port}${endpoint.tls ? ' (TLS)' : ''} as ${as}; key directory in ${config.dataDir}\n`);
  return serveUntilStopped(bot);
}
