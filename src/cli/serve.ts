/**
 * Running the daemon in the foreground: `sealchatd ircd` and `sealchatd serve`.
 *
 * `serve` (what `npm start` runs) starts the ircd, then keybot as a supervised child process:
 * the same node binary and entry script with the `keybot` subcommand, the same --config/--data,
 * and `--irc` naming the listener the daemon actually bound (the config may say port 0). keybot
 * is restarted with backoff when it dies and stopped before the daemon on shutdown.
 */

import type { Config } from '../ircd/config.js';
import type { Daemon } from '../ircd/daemon.js';
import { isLoopback } from '../protocol/address.js';
import { createLogger } from '../util/log.js';
import { colonHex, type DefaultTls } from './tls-default.js';
import { VERSION } from '../util/version.js';

const log = createLogger('sealchatd');

/** How long a graceful shutdown may take before the process exits anyway. */
const SHUTDOWN_GRACE_MS = 10_000;

export interface RunOptions {
  /** Shown in the "add the first user" hint, so it names the same data. */
  adminArgs: string[];
  /** Where human-readable status goes (default stdout). */
  out?: NodeJS.WritableStream;
  /** The self-signed TLS listener `serve` added (tls-default.ts), to announce its fingerprint. */
  defaultTls?: DefaultTls;
}

/** Start the IRC daemon and run until SIGINT/SIGTERM; resolves with the exit code. */
export async function runIrcd(config: Config, opts: RunOptions): Promise<number> {
  const daemon = await startAndAnnounce(config, opts);
  await waitForShutdownSignal();
  log.info('shutting down');
  await closeWithGrace(() => daemon.close());
  return 0;
}

/** Start the daemon and print where it listens (and how to add the first user). */
async function startAndAnnounce(config: Config, opts: RunOptions): Promise<Daemon> {
  const out = opts.out ?? process.stdout;
  const { startDaemon } = await import('../ircd/daemon.js');
  const daemon = await startDaemon(config);
  out.write(`sealchatd ${VERSION}: ${config.serverName} (network ${config.networkName})\n`);
  for (const l of daemon.listeners) {
    const host = l.host.includes(':') ? `[${l.host}]` : l.host;
    if (l.websocket) {
      // IRC over WebSocket, and the web companion's page on the same port (docs/COMPANIONS.md "In the browser").
      const web = `${l.tls ? 'https' : 'http'}://${host}:${l.port}/`;
      out.write(`listening on ${host}:${l.port} (WebSocket${l.tls ? ', TLS' : ''}: ${l.tls ? 'wss' : 'ws'}://${host}:${l.port}/; the web companion at ${web})\n`);
    } else {
      out.write(`listening on ${host}:${l.port}${l.tls ? ' (TLS)' : ''}\n`);
    }
    if (!l.tls && !isLoopback(l.host)) {
      // Account passwords (PASS, SASL PLAIN) cross this listener in clear.
      out.write(`warning: ${host}:${l.port} is a plain listener other machines can reach: passwords cross it in clear; give people a TLS listener (docs/OPERATIONS.md "TLS")\n`);
    }
  }
  const t = opts.defaultTls;
  if (t) {
    out.write(
      `TLS certificate (self-signed, ${t.created ? 'made now' : 'made at the first start'}): ${t.certFile}\n` +
        `  SHA-256 fingerprint ${colonHex(t.fingerprint)}\n` +
        `  irssi: /connect -tls -tls_cafile ${t.certFile} 127.0.0.1 ${daemon.listeners.find((l) => l.tls)?.port ?? ''} PASSWORD NAME\n`,
    );
  }
  out.write(`control socket ${daemon.controlPath}\n`);
  const users = (await daemon.accounts.list()).filter((a) => !a.service);
  if (users.length === 0) {
    const extra = opts.adminArgs.length ? ' ' + opts.adminArgs.join(' ') : '';
    out.write(
      `no user accounts yet; add the first one (while the daemon runs) with:\n` +
        `  sealchatd user add NAME --key NAME.pub.asc${extra}\n` +
        `(make a key pair with \`sealchat keygen\`, or export one with \`gpg --export --armor NAME\`)\n`,
    );
  }
  return daemon;
}

/** Run a shutdown step; exit(1) if it takes longer than the grace period. */
async function closeWithGrace(step: () => Promise<void>): Promise<void> {
  const forced = setTimeout(() => {
    log.error(`shutdown took longer than ${SHUTDOWN_GRACE_MS} ms; exiting anyway`);
    process.exit(1);
  }, SHUTDOWN_GRACE_MS);
  forced.unref();
  await step();
  clearTimeout(forced);
}

/** ircd + keybot together (`npm start`): keybot runs as a supervised child process. */
export async function runServe(config: Config, opts: RunOptions): Promise<number> {
  const out = opts.out ?? process.stdout;
  const daemon = await startAndAnnounce(config, opts);
  const { ChildSupervisor } = await import('../bot/supervisor.js');
  const entry = process.argv[1];
  if (!entry) throw new Error('cannot tell which script to run keybot with (process.argv[1] is empty)');
  const args = [...process.execArgv, entry, 'keybot', ...opts.adminArgs];
  // keybot speaks IRC over TCP: never a WebSocket listener.
  const plain = daemon.listeners.find((l) => !l.tls && !l.websocket);
  if (plain) args.push('--irc', ircAddress(plain.host, plain.port));
  const keybot = new ChildSupervisor({ name: 'keybot', command: process.execPath, args });
  // Operators (and the fault tests) can tell which process holds the room keys.
  keybot.on('spawn', (pid) => out.write(`keybot started (pid ${pid})\n`));
  keybot.start();
  out.write('keybot runs as a child process and is restarted if it dies\n');
  await waitForShutdownSignal();
  log.info('shutting down');
  // keybot first: it QUITs cleanly while the daemon is still there to hear it.
  await closeWithGrace(async () => {
    await keybot.stop();
    await daemon.close();
  });
  return 0;
}

/** HOST:PORT that reaches a listener from this host (a wildcard bind means loopback). */
function ircAddress(host: string, port: number): string {
  const h = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return h.includes(':') ? `[${h}]:${port}` : `${h}:${port}`;
}

/** Resolve on the first SIGINT or SIGTERM; a second one exits at once. */
function waitForShutdownSignal(): Promise<void> {
  return new Promise((resolve) => {
    let seen = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (seen) {
        log.warn(`${signal} again: exiting without a clean shutdown`);
        process.exit(1);
      }
      seen = true;
      resolve();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}
