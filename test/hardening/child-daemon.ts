/**
 * The daemon as a separate process (`sealchatd ircd`), for tests that kill it or that must not
 * share an event loop with the test runner. Reads the port and control socket from its banner.
 */
import type { ChildProcess } from 'node:child_process';
import { spawnSealchatd, type Exit } from '../helpers/child.js';

export interface ChildDaemon {
  child: ChildProcess;
  port: number;
  controlPath: string;
  /** Everything it wrote to stderr (for failure messages). */
  stderr(): string;
  /** Resolves with the exit code or signal once the process is gone. */
  exited: Promise<Exit>;
  kill(signal: NodeJS.Signals): Promise<Exit>;
}

export async function spawnDaemon(dataDir: string, opts: { configFile?: string; timeoutMs?: number } = {}): Promise<ChildDaemon> {
  const args = ['ircd', '--data', dataDir, '--listen', '127.0.0.1:0'];
  if (opts.configFile) args.push('--config', opts.configFile);
  const { child, stdout, stderr, exited } = spawnSealchatd(args);
  const ready = await new Promise<{ port: number; controlPath: string }>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      child.kill('SIGKILL');
      reject(new Error(`sealchatd did not start within ${opts.timeoutMs ?? 20_000} ms\nstdout:\n${stdout()}\nstderr:\n${stderr()}`));
    }, opts.timeoutMs ?? 20_000);
    const check = (): void => {
      const port = /listening on 127\.0\.0\.1:(\d+)\n/.exec(stdout())?.[1];
      const control = /control socket (.+)\n/.exec(stdout())?.[1];
      if (port && control) {
        cleanup();
        resolve({ port: Number(port), controlPath: control });
      }
    };
    const onExit = (code: number | null): void => {
      cleanup();
      reject(new Error(`sealchatd exited (${code}) before it was ready\nstdout:\n${stdout()}\nstderr:\n${stderr()}`));
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
    stderr,
    exited,
    async kill(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
