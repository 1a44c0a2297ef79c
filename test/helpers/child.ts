/**
 * `sealchatd` as a child process of the test runner (through tsx), with its output collected.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const SEALCHATD_CLI = path.join(ROOT, 'src/cli/sealchatd.ts');

export type Exit = { code: number | null; signal: NodeJS.Signals | null };

export interface SealchatdChild {
  child: ChildProcess;
  /** Everything it wrote to stdout so far. */
  stdout(): string;
  /** Everything it wrote to stderr so far. */
  stderr(): string;
  /** Resolves with the exit code or signal once the process is gone. */
  exited: Promise<Exit>;
}

/**
 * `sealchatd ARGS`. Its status lines (listening, control socket, keybot pid and fingerprint) are
 * plain stdout whatever the log level; the logs go to stderr, at "warn".
 */
export function spawnSealchatd(args: string[]): SealchatdChild {
  const child = spawn(process.execPath, ['--import', 'tsx', SEALCHATD_CLI, ...args], {
    cwd: ROOT,
    env: { ...process.env, SEALCHAT_LOG: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<Exit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return { child, stdout: () => out, stderr: () => err, exited };
}
