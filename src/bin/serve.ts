/**
 * Running the daemon in the foreground: `sealchatd ircd` and `sealchatd serve`.
 *
 * runServe is the seam for `npm start`: today it runs the ircd alone; the keybot supervisor
 * (start keybot as a child process with the credentials from `<dataDir>/keybot.credentials`,
 * restart it when it dies) belongs in runServe, after the daemon is up.
 */

import type { Config } from '../ircd/config.js';
import { createLogger } from '../util/log.js';
import { VERSION } from '../util/version.js';

const log = createLogger('sealchatd');

/** How long a graceful shutdown may take before the process exits anyway. */
const SHUTDOWN_GRACE_MS = 10_000;

export interface RunOptions {
  /** Shown in the "add the first user" hint, so it names the same data. */
  adminArgs: string[];
  /** Where human-readable status goes (default stdout). */
  out?: NodeJS.WritableStream;
}

/** Start the IRC daemon and run until SIGINT/SIGTERM; resolves with the exit code. */
export async function runIrcd(config: Config, opts: RunOptions): Promise<number> {
  const out = opts.out ?? process.stdout;
  const { startDaemon } = await import('../ircd/daemon.js');
  const daemon = await startDaemon(config);
  out.write(`sealchatd ${VERSION}: ${config.serverName} (network ${config.networkName})\n`);
  for (const l of daemon.listeners) {
    const host = l.host.includes(':') ? `[${l.host}]` : l.host;
    out.write(`listening on ${host}:${l.port}${l.tls ? ' (TLS)' : ''}\n`);
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
  await waitForShutdownSignal();
  log.info('shutting down');
  const forced = setTimeout(() => {
    log.error(`shutdown took longer than ${SHUTDOWN_GRACE_MS} ms; exiting anyway`);
    process.exit(1);
  }, SHUTDOWN_GRACE_MS);
  forced.unref();
  await daemon.close();
  clearTimeout(forced);
  return 0;
}

/** ircd + keybot together (`npm start`). Keybot is not wired in yet: this runs the ircd. */
export async function runServe(config: Config, opts: RunOptions): Promise<number> {
  return runIrcd(config, opts);
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
