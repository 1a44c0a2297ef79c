/**
 * Helpers for the fault tests: `sealchatd serve` as a child process (the daemon plus its
 * supervised keybot child, whose pid serve prints), a daemon restarted in this process on the
 * same port and data dir, SealClient companions with small reconnect backoff, and polling with
 * deadlines.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SealClient, type SealConnectOptions } from '../../src/client/client.js';
import { startDaemon, type Daemon } from '../../src/ircd/daemon.js';
import type { TestDaemon } from '../helpers/daemon.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = path.join(ROOT, 'src/bin/sealchatd.ts');

export const ROOM_RE = /#sc-[a-z2-7]{10}/;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll `check` every 20 ms until it returns something truthy; throw after `ms`. */
export async function until<T>(check: () => T | undefined | false | null, what: string | (() => string), ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await sleep(20);
  }
}

/** A TCP port that was free a moment ago (the kernel's pick for port 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
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
 * `sealchatd serve --data DIR --listen 127.0.0.1:PORT` as a child process (PORT free, unless
 * given): resolves once the daemon listens and the first keybot child has printed its
 * fingerprint (keybot prints it once it has recovered its rooms).
 */
export async function spawnServe(dataDir: string, opts: { timeoutMs?: number; port?: number } = {}): Promise<ServeProcess> {
  // A given port: a restarted serve where the companions reconnect to.
  const port = opts.port ?? (await freePort());
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'serve', '--data', dataDir, '--listen', `127.0.0.1:${port}`], {
    cwd: ROOT,
    // serve's status lines (listening, keybot pid, keybot's fingerprint) are plain stdout,
    // whatever the log level; the logs themselves go to stderr.
    env: { ...process.env, SEALCHAT_LOG: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const pids = (): number[] => [...out.matchAll(/keybot started \(pid (\d+)\)/g)].map((m) => Number(m[1]));
  const fingerprint = (): string | undefined => {
    const m = /key fingerprint ([0-9A-Fa-f ]+)\n/.exec(out);
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
      () => child.exitCode !== null || (/listening on 127\.0\.0\.1:\d+\n/.test(out) && /control socket .+\n/.test(out) && fingerprint() !== undefined),
      () => `sealchatd serve to start\nstdout:\n${out}\nstderr:\n${err}`,
      opts.timeoutMs ?? 30_000,
    );
    if (child.exitCode !== null) throw new Error(`sealchatd serve exited (${child.exitCode})\nstdout:\n${out}\nstderr:\n${err}`);
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    child,
    port,
    controlPath: /control socket (.+)\n/.exec(out)![1]!,
    stdout: () => out,
    stderr: () => err,
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
