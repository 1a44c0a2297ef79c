/**
 * Keeps keybot running as a child process of `sealchatd serve`: restart it with exponential
 * backoff when it dies, stop it (SIGTERM, then SIGKILL) on shutdown.
 *
 * keybot is a separate process on purpose (docs/DESIGN.md "Processes and trust"): room keys never sit
 * in the daemon's memory. The child gets an IPC channel only so it notices when the parent
 * disappears without a chance to stop it (it exits on 'disconnect'). keybot sends nothing over it;
 * whatever a child does send is re-emitted as 'message' (tests use it for a child's "ready").
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { backoffDelay } from '../protocol/backoff.js';
import { createLogger } from '../util/log.js';

const log = createLogger('supervisor');

export interface SupervisorOptions {
  /** Shown in log lines. */
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  /** First restart delay (default 1 s); doubles per quick death up to maxBackoffMs. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** A child that ran this long was healthy: the next restart is quick again (default 60 s). */
  stableAfterMs?: number;
  /** SIGTERM, then SIGKILL after this long (default 5 s). */
  stopTimeoutMs?: number;
  /** Default: stdout and stderr shared with the parent. */
  stdio?: 'inherit' | 'ignore' | 'pipe';
}

export interface SupervisorEvents {
  spawn: [pid: number];
  exit: [info: { code: number | null; signal: NodeJS.Signals | null; restartInMs: number | null }];
  /** A message the child sent over the IPC channel (process.send). */
  message: [msg: unknown];
}

export class ChildSupervisor extends EventEmitter<SupervisorEvents> {
  private child: ChildProcess | undefined;
  private startedAt = 0;
  private quickDeaths = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  private readonly o: Required<Omit<SupervisorOptions, 'env'>> & { env?: NodeJS.ProcessEnv };

  constructor(opts: SupervisorOptions) {
    super();
    this.o = {
      initialBackoffMs: 1000,
      maxBackoffMs: 60_000,
      stableAfterMs: 60_000,
      stopTimeoutMs: 5000,
      stdio: 'inherit',
      ...opts,
    };
  }

  /** The running child's pid, if any. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): void {
    this.stopping = false;
    if (!this.child && !this.restartTimer) this.launch();
  }

  /** Stop the child and do not restart it. Resolves once it has exited. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const killer = setTimeout(() => {
      log.warn(`${this.o.name} did not stop within ${this.o.stopTimeoutMs} ms; killing it`);
      child.kill('SIGKILL');
    }, this.o.stopTimeoutMs);
    await exited;
    clearTimeout(killer);
  }

  private launch(): void {
    this.restartTimer = undefined;
    const std = this.o.stdio;
    const child = spawn(this.o.command, this.o.args, {
      stdio: [std === 'inherit' ? 'ignore' : std, std, std, 'ipc'],
      env: this.o.env ?? process.env,
      // Its own process group: a terminal's Ctrl-C reaches the parent only, which then stops
      // keybot before the daemon, in that order.
      detached: true,
    });
    this.child = child;
    this.startedAt = Date.now();
    child.on('error', (err) => log.error(`${this.o.name}: ${err.message}`));
    child.once('spawn', () => {
      log.info(`${this.o.name} started (pid ${child.pid})`);
      this.emit('spawn', child.pid!);
    });
    child.on('message', (msg) => this.emit('message', msg));
    child.once('exit', (code, signal) => this.exited(child, code, signal));
  }

  private exited(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.child !== child) return;
    this.child = undefined;
    const how = signal ? `signal ${signal}` : `code ${code}`;
    if (this.stopping) {
      log.info(`${this.o.name} stopped (${how})`);
      this.emit('exit', { code, signal, restartInMs: null });
      return;
    }
    if (Date.now() - this.startedAt >= this.o.stableAfterMs) this.quickDeaths = 0;
    const delay = backoffDelay(this.quickDeaths, { initialMs: this.o.initialBackoffMs, maxMs: this.o.maxBackoffMs });
    this.quickDeaths++;
    log.warn(`${this.o.name} exited (${how}); restarting in ${delay} ms`);
    this.emit('exit', { code, signal, restartInMs: delay });
    this.restartTimer = setTimeout(() => {
      if (!this.stopping) this.launch();
    }, delay);
  }
}
