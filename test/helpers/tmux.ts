/**
 * A small tmux driver for real-client tests: one private tmux server per instance
 * (`tmux -L <unique> -f /dev/null`), one session with one tall window running a command.
 * Input goes in with `send-keys -l` (literal) and a separate `Enter`; output is read with
 * `capture-pane -p -J`. Waiting is always polling with a bounded deadline.
 * `kill()` stops only this instance's tmux server (and so only the processes it started).
 */
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

let counter = 0;

/** Quote one argument for sh. */
export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Is `cmd` on PATH? (Used to skip a suite cleanly where a client is not installed.) */
export async function haveCommand(cmd: string): Promise<boolean> {
  try {
    await run('sh', ['-c', `command -v ${shQuote(cmd)}`]);
    return true;
  } catch {
    return false;
  }
}

export interface TmuxStartOptions {
  /** argv of the program to run; wrapped as `prog; echo exited; sleep 900` so a crash stays visible. */
  argv: string[];
  cwd?: string;
  /** Extra environment for the program. */
  env?: Record<string, string>;
  width?: number;
  height?: number;
}

export class Tmux {
  private killed = false;
  private readonly session = 'main';

  private constructor(readonly socketName: string) {}

  /** Start a private tmux server with one detached session running `argv`. */
  static async start(opts: TmuxStartOptions): Promise<Tmux> {
    const name = `sealchat-${process.pid}-${++counter}-${Math.random().toString(36).slice(2, 8)}`;
    const t = new Tmux(name);
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== 'TMUX' && k !== 'TMUX_PANE') env[k] = v;
    Object.assign(env, { TERM: 'xterm-256color', LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8' }, opts.env);
    const prog = opts.argv.map(shQuote).join(' ');
    const wrapped = `${prog}; echo exited; sleep 900`;
    try {
      await t.tmux(
        ['new-session', '-d', '-s', t.session, '-x', String(opts.width ?? 200), '-y', String(opts.height ?? 60),
          ...(opts.cwd ? ['-c', opts.cwd] : []), wrapped],
        env,
      );
      // No tmux status line: the program gets the whole height.
      await t.tmux(['set-option', '-t', t.target, 'status', 'off']);
    } catch (err) {
      await t.kill();
      throw err;
    }
    return t;
  }

  /** Exact target: session `main`, its active window and pane. */
  get target(): string {
    return `=${this.session}:`;
  }

  private async tmux(args: string[], env?: Record<string, string>): Promise<string> {
    const { stdout } = await run('tmux', ['-L', this.socketName, '-f', '/dev/null', ...args], {
      env: env ?? process.env,
      timeout: 10_000,
      maxBuffer: 4 * 1024 * 1024,
    });
    return stdout;
  }

  /** Type `text` literally (no key-name interpretation), without pressing Enter. */
  async typeText(text: string): Promise<void> {
    await this.tmux(['send-keys', '-t', this.target, '-l', text]);
  }

  async pressEnter(): Promise<void> {
    await this.tmux(['send-keys', '-t', this.target, 'Enter']);
  }

  /** Type a line and press Enter. */
  async sendKeys(text: string): Promise<void> {
    await this.typeText(text);
    await this.pressEnter();
  }

  /** The visible pane (wrapped lines joined). */
  async capture(): Promise<string> {
    return this.tmux(['capture-pane', '-p', '-J', '-t', this.target]);
  }

  /**
   * Poll the pane until `re` matches; returns the capture. Throws with the last screen on timeout,
   * or early if the wrapped program has exited (unless waiting for that).
   */
  async waitForText(re: RegExp, ms = 10_000, intervalMs = 50): Promise<string> {
    const deadline = Date.now() + ms;
    let last = '';
    for (;;) {
      last = await this.capture();
      if (re.test(last)) return last;
      if (Date.now() >= deadline) {
        throw new Error(`timed out after ${ms} ms waiting for ${re} on the screen:\n${last.replace(/\s+$/, '')}`);
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }

  /** Poll the pane until `pred(screen)` holds; `what` names it in the timeout error. */
  async waitUntil(pred: (screen: string) => boolean, what: string, ms = 10_000, intervalMs = 50): Promise<string> {
    const deadline = Date.now() + ms;
    let last = '';
    for (;;) {
      last = await this.capture();
      if (pred(last)) return last;
      if (Date.now() >= deadline) {
        throw new Error(`timed out after ${ms} ms waiting for ${what} on the screen:\n${last.replace(/\s+$/, '')}`);
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }

  /** Kill this instance's tmux server only, and remove its socket. Safe to call twice. */
  async kill(): Promise<void> {
    if (this.killed) return;
    this.killed = true;
    try {
      await this.tmux(['kill-server']);
    } catch {
      // already gone
    }
    const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
    const dir = process.env.TMUX_TMPDIR || '/tmp';
    await rm(path.join(dir, `tmux-${uid}`, this.socketName), { force: true }).catch(() => undefined);
  }
}
