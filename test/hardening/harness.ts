/**
 * Shared pieces of the hardening tests: a byte-exact line client (plain or TLS), waiting
 * helpers, crash guards and the figures the tests print for docs/SECURITY.md.
 *
 * The client splits only on CRLF and keeps everything else, so a bare CR, a bare LF or a NUL
 * that the daemon lets through stays visible inside a line instead of being hidden by framing.
 */
import net from 'node:net';
import tls from 'node:tls';
import v8 from 'node:v8';
import vm from 'node:vm';

/** `SEALCHAT_STRESS=1` (npm run test:stress) runs the full-size versions. */
export const STRESS = process.env.SEALCHAT_STRESS === '1';

/** Pick the normal-run or the stress-run size. */
export function size(normal: number, stress: number): number {
  return STRESS ? stress : normal;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Print a measured figure so it shows in the test output (and can be copied into the docs). */
export function figure(name: string, value: string | number): void {
  console.log(`      [figure] ${name}: ${value}`);
}

export function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

export interface MemSnapshot {
  rss: number;
  heapUsed: number;
}

/** A full GC on demand, so memory figures measure live data rather than garbage. */
const gc: () => void = (() => {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
})();

/** Process memory after a full GC. */
export function memory(): MemSnapshot {
  gc();
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed };
}

/** Poll until `pred` holds; throws with `what` after `ms`. */
export async function waitUntil(pred: () => boolean, ms: number, what: string, everyMs = 20): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/**
 * For the enclosing mocha suite: record unhandled rejections and uncaught exceptions while it
 * runs, and fail the test during which any happened. (mocha fails the running test on an uncaught
 * exception itself, but an unhandled rejection from a daemon promise would only print a warning.)
 * The listeners exist only between the suite's first and last hook, so other files' tests, run in
 * the same process, are not charged to these.
 */
export function useCrashGuard(): void {
  const seen: string[] = [];
  const onRejection = (reason: unknown): void => {
    seen.push(`unhandledRejection: ${(reason as Error)?.stack ?? String(reason)}`);
  };
  const onException = (err: Error): void => {
    seen.push(`uncaughtException: ${err.stack ?? String(err)}`);
  };
  before(() => {
    process.on('unhandledRejection', onRejection);
    process.on('uncaughtExceptionMonitor', onException);
  });
  afterEach(() => {
    if (seen.length === 0) return;
    const report = seen.splice(0).join('\n');
    throw new Error(`the daemon process had crash event(s) during this test:\n${report}`);
  });
  after(() => {
    process.off('unhandledRejection', onRejection);
    process.off('uncaughtExceptionMonitor', onException);
  });
}

const CRLF = Buffer.from('\r\n');

/** A raw IRC peer that frames only on CRLF and records every line and how the link ended. */
export class LineConn {
  readonly lines: string[] = [];
  closed = false;
  /** Bytes received in total. */
  received = 0;
  /** Answer server PINGs (the daemon sends them after pingIntervalMs of silence). */
  autoPong = true;
  /** Keep received lines in `lines` (off for long-running observers; use onLine). */
  keepLines = true;
  onLine: ((line: string) => void) | null = null;
  private buf: Buffer = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  private readonly closedPromise: Promise<void>;

  constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => this.onData(d));
    this.closedPromise = new Promise((resolve) => {
      socket.on('close', () => {
        this.closed = true;
        this.wake();
        resolve();
      });
    });
    socket.on('error', () => undefined);
  }

  static connect(port: number, host = '127.0.0.1'): Promise<LineConn> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host, port }, () => {
        s.off('error', reject);
        resolve(new LineConn(s));
      });
      s.once('error', reject);
    });
  }

  /** TLS with certificate verification against `ca` (the test's self-signed certificate). */
  static connectTls(port: number, opts: { ca: Buffer | string; servername?: string }): Promise<LineConn> {
    return new Promise((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, ca: opts.ca, servername: opts.servername ?? 'localhost' }, () => {
        s.off('error', reject);
        resolve(new LineConn(s));
      });
      s.once('error', reject);
    });
  }

  private onData(d: Buffer): void {
    this.received += d.length;
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    let start = 0;
    for (;;) {
      const i = this.buf.indexOf(CRLF, start);
      if (i === -1) break;
      const line = this.buf.toString('utf8', start, i);
      if (this.keepLines) this.lines.push(line);
      this.onLine?.(line);
      if (this.autoPong && line.startsWith('PING ')) this.socket.write(`PONG ${line.slice(5)}\r\n`);
      start = i + 2;
    }
    this.buf = start === 0 ? this.buf : this.buf.subarray(start);
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolve on the next data or close (or after `ms`). */
  nextEvent(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  send(...lines: string[]): void {
    this.socket.write(lines.map((l) => l + '\r\n').join(''));
  }

  write(data: Buffer | string): void {
    this.socket.write(data);
  }

  /** The first line at index >= `from` that matches; throws on timeout or close. */
  async waitLine(re: RegExp, ms = 5000, from = 0): Promise<string> {
    const deadline = Date.now() + ms;
    let scanned = from;
    for (;;) {
      for (; scanned < this.lines.length; scanned++) if (re.test(this.lines[scanned]!)) return this.lines[scanned]!;
      if (this.closed) throw new Error(`connection closed while waiting for ${re}; last lines:\n${this.tail()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${re}; last lines:\n${this.tail()}`);
      await this.nextEvent(left);
    }
  }

  async waitClose(ms = 5000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out waiting for the server to close; last lines:\n${this.tail()}`)), ms);
    });
    try {
      await Promise.race([this.closedPromise, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Register with PASS account:password and wait for 001. */
  async login(name: string, password: string, ms = 8000): Promise<void> {
    const from = this.lines.length;
    this.send(`PASS ${name}:${password}`, `NICK ${name}`, `USER ${name} 0 * :${name}`);
    await this.waitLine(/^(?:@\S+ )?:\S+ 001 /, ms, from);
  }

  /** Round trip: PING with a token, resolve when its PONG is back. */
  async ping(token: string, ms = 5000): Promise<number> {
    const from = this.lines.length;
    const t0 = performance.now();
    this.send(`PING :${token}`);
    await this.waitLine(new RegExp(` PONG \\S+ :?${token}$`), ms, from);
    return performance.now() - t0;
  }

  tail(n = 8): string {
    return this.lines.slice(-n).map((l) => (l.length > 300 ? l.slice(0, 300) + `...(${l.length} chars)` : l)).join('\n');
  }

  close(): void {
    this.socket.destroy();
  }
}

/** The non-tag part of a line the daemon sent, in bytes, with the CRLF the framing removed. */
export function bodyBytes(line: string): number {
  const body = line.startsWith('@') ? line.slice(line.indexOf(' ') + 1) : line;
  return Buffer.byteLength(body) + 2;
}

/** A line's tag section in bytes including '@' and the space (0 if it has none). */
export function tagBytes(line: string): number {
  return line.startsWith('@') ? Buffer.byteLength(line.slice(0, line.indexOf(' ') + 1)) : 0;
}
