/**
 * Helpers for the companion tests (sealchat chat, sealchat proxy): a world of a real daemon on
 * port 0 with a real keybot in this process, SealClient members, the `sealchat` command as a
 * child process, and polling with deadlines.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startKeybot, type Keybot } from '../../src/bot/main.js';
import { SealClient } from '../../src/client/client.js';
import { startTestDaemon, type ConfigOverrides, type TestDaemon, type TestUser } from './daemon.js';
import { loginAs, testKeybotOptions } from './keybot.js';
import { until } from './poll.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const SEALCHAT_CLI = path.join(ROOT, 'src/cli/sealchat.ts');

export { ROOM_RE, sleep, until } from './poll.js';

export interface World {
  t: TestDaemon;
  bot: Keybot;
  users: Record<string, TestUser>;
  /** A SealClient member, connected and with keybot's key pinned. */
  member(name: string): Promise<SealClient>;
  stop(): Promise<void>;
}

/** A daemon, keybot, and accounts for `names`. */
export async function startWorld(names: string[], overrides: ConfigOverrides = {}): Promise<World> {
  const t = await startTestDaemon(overrides);
  const users: Record<string, TestUser> = {};
  let bot: Keybot | undefined;
  const members: SealClient[] = [];
  try {
    for (const n of names) users[n] = await t.addUser(n);
    bot = await startKeybot(testKeybotOptions(t));
  } catch (err) {
    await t.stop();
    throw err;
  }
  const b = bot;
  return {
    t,
    bot: b,
    users,
    async member(name) {
      const c = new SealClient();
      members.push(c);
      const r = await c.connect({
        ...loginAs(t, users[name]!),
        keybotFingerprint: b.fingerprint,
        knownKeybotsFile: false,
      });
      if (r.keybot.status !== 'pinned') throw new Error(`${name}: keybot's key is not pinned: ${JSON.stringify(r.keybot)}`);
      return c;
    },
    async stop() {
      await Promise.all(members.map((m) => m.quit().catch(() => undefined)));
      await b.close();
      await t.stop();
    },
  };
}

/** `sealchat ARGS` as a child process (run through tsx), with its output collected. */
export class CliProcess {
  stdout = '';
  stderr = '';
  code: number | null | undefined;
  private readonly exited: Promise<number | null>;

  constructor(readonly child: ChildProcessWithoutNullStreams) {
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d: string) => (this.stdout += d));
    child.stderr.on('data', (d: string) => (this.stderr += d));
    this.exited = new Promise((resolve) => {
      child.on('close', (code) => {
        this.code = code;
        resolve(code);
      });
    });
  }

  static start(args: string[], opts: { env?: Record<string, string>; home?: string } = {}): CliProcess {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
    delete env.SEALCHAT_LOG;
    Object.assign(env, opts.home ? { SEALCHAT_HOME: opts.home } : {}, opts.env);
    const child = spawn(process.execPath, ['--import', 'tsx', SEALCHAT_CLI, ...args], { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
    return new CliProcess(child);
  }

  /** Run to the end, feeding `input` on stdin. */
  static async run(args: string[], opts: { env?: Record<string, string>; home?: string; input?: string; ms?: number } = {}): Promise<CliProcess> {
    const p = CliProcess.start(args, opts);
    p.child.stdin.end(opts.input ?? '');
    await p.exit(opts.ms ?? 20_000);
    return p;
  }

  /** Type one line. */
  send(line: string): void {
    this.child.stdin.write(line + '\n');
  }

  /** Wait until stdout (after `from` characters) matches; returns the match. */
  async waitOut(re: RegExp, ms = 10_000, from = 0): Promise<RegExpExecArray> {
    return until(
      () => re.exec(this.stdout.slice(from)) ?? (this.code !== undefined ? this.fail(re) : null),
      () => `${re} on stdout; got:\n${this.stdout}\nstderr:\n${this.stderr}`,
      ms,
    );
  }

  private fail(re: RegExp): never {
    throw new Error(`sealchat exited (${this.code}) before printing ${re}; stdout:\n${this.stdout}\nstderr:\n${this.stderr}`);
  }

  /** Wait for the process to end (killing it after `ms`). */
  async exit(ms = 10_000): Promise<number | null> {
    const timer = setTimeout(() => this.child.kill('SIGKILL'), ms);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  kill(): void {
    if (this.code === undefined) this.child.kill('SIGKILL');
  }
}

/** A temporary directory, removed by the returned function. */
export async function tempDir(prefix: string): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}
