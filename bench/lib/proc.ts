/** Reading another process's CPU time and memory from /proc (Linux), child-process IPC, and running the sealchatd CLI. */
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, type Dirent } from 'node:fs';
import net from 'node:net';
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let ticksPerSecond = 100;
try {
  ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  // getconf missing: 100 Hz is the Linux default.
}

/** utime + stime of every thread of `pid`, in milliseconds (/proc/<pid>/stat fields 14 and 15). */
export function cpuMsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  // The command name (field 2) may contain spaces; the fields after it follow the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1000) / ticksPerSecond;
}

/** Bytes a process has written (write syscalls: its sockets, pipes and files), from /proc/<pid>/io. */
export function writtenBytesOf(pid: number): number {
  const m = /^wchar: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
  if (!m) throw new Error(`no wchar in /proc/${pid}/io`);
  return Number(m[1]);
}

/** Resident set size of `pid` in bytes (/proc/<pid>/status VmRSS). */
export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'latin1');
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

export function machineInfo(): { cpu: string; cores: number; load: string } {
  const list = cpus();
  return {
    cpu: list[0]?.model ?? 'unknown',
    cores: list.length,
    load: loadavg().map((x) => x.toFixed(2)).join(' '),
  };
}

/**
 * A forked TypeScript child (run through tsx) that answers each request with exactly one
 * message, in order. Unsolicited 'error' messages reject the oldest pending request.
 */
export class IpcChild<Req, Res extends { ev: string }> {
  readonly proc: ChildProcess;
  private pending: Array<{ resolve: (m: Res) => void; reject: (e: Error) => void }> = [];
  private exited = false;

  constructor(script: string, args: string[], execArgv: string[] = [], env?: NodeJS.ProcessEnv) {
    this.proc = fork(script, args, { execArgv: ['--import', 'tsx', ...execArgv], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: env ?? process.env });
    this.proc.on('message', (m: Res) => {
      const p = this.pending.shift();
      if (!p) return;
      if (m.ev === 'error') p.reject(new Error(`${script}: ${(m as unknown as { message: string }).message}`));
      else p.resolve(m);
    });
    this.proc.on('exit', (code) => {
      this.exited = true;
      const err = new Error(`${script} exited (code ${code})`);
      for (const p of this.pending.splice(0)) p.reject(err);
    });
  }

  get pid(): number {
    return this.proc.pid!;
  }

  /** Wait for the next message (the child's greeting, say) without sending anything. */
  next(): Promise<Res> {
    return new Promise((resolve, reject) => {
      if (this.exited) return reject(new Error('child has exited'));
      this.pending.push({ resolve, reject });
    });
  }

  request(msg: Req): Promise<Res> {
    const p = this.next();
    this.proc.send(msg as object);
    return p;
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const done = new Promise<void>((r) => this.proc.once('exit', () => r()));
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 3000);
    await done;
    clearTimeout(t);
  }
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The repository's `sealchatd` CLI as TypeScript, run through tsx (bench:keys' `serve`, the admin commands of sealchatd() below). */
export const SEALCHATD_CLI = path.join(ROOT, 'src/cli/sealchatd.ts');

/** Set once shippedSealchatd() has checked dist/ in this process. */
let shippedChecked = false;

/**
 * The `sealchatd` that `npm start` runs: dist/cli/sealchatd.js, for plain node. Built first
 * (`tsc -p tsconfig.build.json`, as `npm run build` does) when missing or older than a file in
 * src/, so a benchmark never measures stale code.
 */
export function shippedSealchatd(): string {
  const cli = path.join(ROOT, 'dist/cli/sealchatd.js');
  if (shippedChecked) return cli; // once per bench process: src/ does not change during a run
  shippedChecked = true;
  const built = existsSync(cli) ? statSync(cli).mtimeMs : 0;
  const newest = (readdirSync(path.join(ROOT, 'src'), { recursive: true, withFileTypes: true }) as Dirent[])
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .reduce((t, e) => Math.max(t, statSync(path.join(e.parentPath ?? e.path, e.name)).mtimeMs), 0);
  if (newest > built) {
    console.log('building dist/ (src/ is newer): tsc -p tsconfig.build.json');
    execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', path.join(ROOT, 'tsconfig.build.json')], { stdio: 'inherit' });
  }
  return cli;
}

/** Run `sealchatd <args>` (e.g. `user add`) to its end, `input` on its stdin; rejects with its stderr on a non-zero exit. */
export function sealchatd(args: string[], input?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', SEALCHATD_CLI, ...args], { stdio: ['pipe', 'ignore', 'pipe'], env: { ...process.env, SEALCHAT_LOG: 'warn' } });
    let err = '';
    p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    p.stdin!.end(input ?? '');
    p.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`sealchatd ${args.join(' ')}: exit ${code}\n${err}`))));
  });
}

/** Poll `check` every 20 ms until it gives a value; rejects after `ms` naming `what`. */
export function until<T>(check: () => T | undefined, what: string, ms = 60_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const tick = (): void => {
      const v = check();
      if (v !== undefined) return resolve(v);
      if (Date.now() - t0 > ms) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 20);
    };
    tick();
  });
}

/** A TCP port free on 127.0.0.1 now, for a server that must be told its port (a peer server's config). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}
