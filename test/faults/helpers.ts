/**
 * Helpers for the fault tests: `sealchatd serve` as a child process (the daemon plus its
 * supervised keybot child, whose pid serve prints), a daemon restarted in this process on the
 * same port and data dir, SealClient companions with small reconnect backoff, and polling with
 * deadlines.
 */
import type { ChildProcess } from 'node:child_process';
import { startKeybot, type Keybot, type KeybotOptions } from '../../src/bot/main.js';
import { SealClient, type SealConnectOptions } from '../../src/client/client.js';
import { startDaemon, type Daemon } from '../../src/ircd/daemon.js';
import { spawnSealchatd } from '../helpers/child.js';
import { startTestDaemon, type TestDaemon, type TestUser } from '../helpers/daemon.js';
import { loginAs, testKeybotOptions } from '../helpers/keybot.js';
import { ROOM_RE, until as pollUntil } from '../helpers/poll.js';

export { ROOM_RE, sleep } from '../helpers/poll.js';

/** Poll `check` every 20 ms until it returns something truthy; throw after `ms` (15 s by default). */
export function until<T>(check: () => T | undefined | false | null, what: string | (() => string), ms = 15_000): Promise<T> {
  return pollUntil(check, what, ms);
}

export interface ServeProcess {
  child: ChildProcess;
  port: number;
  controlPath: string;
  stdout(): string;
  stderr(): string;
  /** keybot pids in the order serve started them. */
  keybotPids(): number[];
  /** keybot's key fingerprint, as its child printed it (hex, no spaces, lowercase). */
  fingerprint(): string | undefined;
  /** Stop serve (SIGTERM, then SIGKILL) and its keybot child; resolves once both are gone. */
  stop(): Promise<void>;
}

/**
 * `sealchatd serve --data DIR --listen 127.0.0.1:PORT` as a child process (PORT 0 unless given:
 * the port is read back from its "listening on" line, so nothing can take it between a pick and
 * the bind): resolves once the daemon listens and the first keybot child has printed its
 * fingerprint (keybot prints it once it has recovered its rooms).
 */
export async function spawnServe(dataDir: string, opts: { timeoutMs?: number; port?: number } = {}): Promise<ServeProcess> {
  // A given port: a restarted serve where the companions reconnect to.
  const { child, stdout, stderr, exited } = spawnSealchatd(['serve', '--data', dataDir, '--listen', `127.0.0.1:${opts.port ?? 0}`]);
  const pids = (): number[] => [...stdout().matchAll(/keybot started \(pid (\d+)\)/g)].map((m) => Number(m[1]));
  const fingerprint = (): string | undefined => {
    const m = /key fingerprint ([0-9A-Fa-f ]+)\n/.exec(stdout());
    return m ? m[1]!.replace(/ /g, '').toLowerCase() : undefined;
  };
  const stop = async (): Promise<void> => {
    const keybots = pids();
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 8000);
      await exited;
      clearTimeout(t);
    }
    // serve stops keybot first; make sure no child of ours outlives the test.
    for (const pid of keybots) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };
  try {
    await until(
      () => child.exitCode !== null || (/listening on 127\.0\.0\.1:\d+\n/.test(stdout()) && /control socket .+\n/.test(stdout()) && fingerprint() !== undefined),
      () => `sealchatd serve to start\nstdout:\n${stdout()}\nstderr:\n${stderr()}`,
      opts.timeoutMs ?? 30_000,
    );
    if (child.exitCode !== null) throw new Error(`sealchatd serve exited (${child.exitCode})\nstdout:\n${stdout()}\nstderr:\n${stderr()}`);
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    child,
    port: Number(/listening on 127\.0\.0\.1:(\d+)\n/.exec(stdout())![1]),
    controlPath: /control socket (.+)\n/.exec(stdout())![1]!,
    stdout,
    stderr,
    keybotPids: pids,
    fingerprint,
    stop,
  };
}

/**
 * Stop the test daemon and start a new one on the same port and data dir (a daemon restart).
 * `t.daemon` is replaced, so `t.stop()` stops the new one.
 */
export async function restartDaemon(t: TestDaemon, between: () => Promise<void> = async () => undefined): Promise<Daemon> {
  await t.daemon.close();
  await between();
  const daemon = await startDaemon({ ...t.config, listen: [{ host: '127.0.0.1', port: t.port }] });
  t.daemon = daemon;
  return daemon;
}

/** A SealClient logged in, with keybot pinned by `fingerprint`; fails the test if it is not. */
export async function companion(
  over: Pick<SealConnectOptions, 'port' | 'nick' | 'password' | 'privateKeyArmored' | 'keybotFingerprint'> & Partial<SealConnectOptions>,
): Promise<SealClient> {
  const c = new SealClient();
  const r = await c.connect({ host: '127.0.0.1', knownKeybotsFile: false, timeoutMs: 8000, ...over });
  if (r.keybot.status !== 'pinned') throw new Error(`${over.nick}: keybot's key is not pinned: ${JSON.stringify(r.keybot)}`);
  return c;
}

/** A test daemon with keybot and some users, for one describe block (see {@link withKeybot}). */
export interface KeybotWorld {
  t: TestDaemon;
  bot: Keybot;
  users: Record<string, TestUser>;
  /** The companions `connect` made, in order. */
  clients: SealClient[];
  /** A SealClient companion logged in as `name` (not reconnecting), quit after the block. */
  connect(name: string): Promise<SealClient>;
}

/**
 * Start a test daemon with `names` as users and keybot (`keybot` adds or replaces its options)
 * before the surrounding describe block's tests, and stop them and every companion after it.
 * The fields are set once the block's `before` has run.
 */
export function withKeybot(names: string[], keybot: Partial<KeybotOptions> = {}): KeybotWorld {
  const clients: SealClient[] = [];
  const w = { users: {}, clients } as unknown as KeybotWorld;
  w.connect = async (name) => {
    const c = await companion({ ...loginAs(w.t, w.users[name]!), keybotFingerprint: w.bot.fingerprint, reconnect: false });
    clients.push(c);
    return c;
  };
  before(async () => {
    w.t = await startTestDaemon();
    for (const n of names) w.users[n] = await w.t.addUser(n);
    w.bot = await startKeybot(testKeybotOptions(w.t, keybot));
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.quit().catch(() => undefined)));
    await w.bot?.close();
    await w.t?.stop();
  });
  return w;
}

/** The room named in keybot's reply lines. */
export function roomIn(lines: string[]): string {
  for (const l of lines) {
    const m = ROOM_RE.exec(l);
    if (m) return m[0];
  }
  throw new Error(`no room in keybot's reply: ${JSON.stringify(lines)}`);
}

/** Every client's current epoch of `room`, if all hold the same one (above `after`) with exactly `members`. */
export function sameEpoch(clients: SealClient[], room: string, members: string[], after = 0): number | undefined {
  const want = [...members].sort().join();
  const infos = clients.map((c) => c.crypto?.roomInfo(room));
  const e = infos[0]?.epoch;
  if (e === undefined || e <= after) return undefined;
  return infos.every((i) => i?.hasKey && i.epoch === e && [...i.members].sort().join() === want) ? e : undefined;
}
