/**
 * The daemon as a separate process (`sealchatd ircd`), for tests that kill it or that must not
 * share an event loop with the test runner. Reads the port and control socket from its banner.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = path.join(ROOT, 'src/bin/sealchatd.ts');

export interface ChildDaemon {
  child: ChildProcess;
  port: number;
  controlPath: string;
  /** Everything it wrote to stderr (for failure messages). */
  stderr(): string;
  /** Resolves with the exit code or signal once the process is gone. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export async function spawnDaemon(dataDir: string, opts: { configFile?: string; timeoutMs?: number } = {}): Promise<ChildDaemon> {
  const args = ['--import', 'tsx', CLI, 'ircd', '--data', dataDir, '--listen', '127.0.0.1:0'];
  if (opts.configFile) args.push('--config', opts.configFile);
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, SEALCHAT_LOG: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const ready = await new Promise<{ port: number; controlPath: string }>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      child.kill('SIGKILL');
      reject(new Error(`sealchatd did not start within ${opts.timeoutMs ?? 20_000} ms\nstdout:\n${out}\nstderr:\n${err}`));
    }, opts.timeoutMs ?? 20_000);
    const check = (): void => {
      const port = /listening on 127\.0\.0\.1:(\d+)\n/.exec(out)?.[1];
      const control = /control socket (.+)\n/.exec(out)?.[1];
      if (port && control) {
        cleanup();
        resolve({ port: Number(port), controlPath: control });
      }
    };
    const onExit = (code: number | null): void => {
      cleanup();
      reject(new Error(`sealchatd exited (${code}) before it was ready\nstdout:\n${out}\nstderr:\n${err}`));
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      child.stdout!.off('data', check);
      child.off('exit', onExit);
    };
    child.stdout!.on('data', check);
    child.once('exit', onExit);
  });
  return {
    child,
    ...ready,
    stderr: () => err,
    exited,
    async kill(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
