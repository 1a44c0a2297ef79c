/**
 * Drives generated lines through a real socket and checks each line's replies against the oracle.
 *
 * Every line is followed by `PING :<marker>`. Lines of one connection run in order (the session
 * awaits async handlers), so everything the daemon sends between two marker PONGs answers the
 * line in between. Lines go out pipelined in batches; a batch must finish within `hangMs` or the
 * run fails as a hang. When the daemon closes the link, the line after the last marker is the
 * cause: the close must be one the line explains (QUIT, or a refused registration before login),
 * announced by `ERROR :Closing link`; the rest of the batch is sent again on a new connection.
 */
import { randomBytes } from 'node:crypto';
import { bodyBytes, LineConn, tagBytes } from './harness.js';
import { expectReply, MAX_RAW_LINE, satisfies, type Outcome } from './oracle.js';

export type FuzzMode = 'pre' | 'reg';

export interface FuzzStats {
  lines: number;
  /** Lines whose expected reply was a specific numeric, and that numeric came. */
  numericChecks: number;
  reconnects: number;
  /** Close reasons the daemon gave (ERROR :Closing link ... (reason)). */
  closes: Record<string, number>;
  /** Reply lines carrying a bare CR (see the BUG test in handlers.test.ts). */
  repliesWithCr: number;
  /** Reply lines over 512 bytes (tags excluded) or with tags over 8191 bytes. */
  overlongReplies: number;
  longestReplyBody: number;
  /** Which replies were over 512 bytes: the reply's command (numeric) → count. */
  overlongByCommand: Record<string, number>;
  /** Wall time spent in run(). */
  ms: number;
}

export interface FuzzRunnerOptions {
  port: number;
  mode: FuzzMode;
  /** Account to log in with in 'reg' mode. */
  account?: { name: string; password: string };
  /** Runs after each (re)login, e.g. to join the channel a witness sits in. */
  afterLogin?: (conn: LineConn) => Promise<void>;
  batchSize?: number;
  hangMs?: number;
}

const CRLF = Buffer.from('\r\n');
const PONG_RE = /^(?:@[^ ]+ )?:[^ ]+ PONG [^ ]+ :?([^ ]+)$/;
/** Lines of a refused registration, which may land after a later line (CAP END runs it detached). */
const ASYNC_REGISTRATION = /^(?:@[^ ]+ )?(?::[^ ]+ 464 |ERROR :Closing link)/;
const PRE_REG_CLOSES = /^(?:Quit|Bad password|Too many login attempts|Too many failed SASL attempts)/;

function show(raw: Buffer): string {
  const s = JSON.stringify(raw.toString('utf8'));
  return s.length > 400 ? `${s.slice(0, 400)}... (${raw.length} bytes)` : s;
}

function showOutcomes(outcomes: Outcome[]): string {
  return outcomes.map((o) => (typeof o === 'string' ? o : o.command ? `${o.numeric} ${o.command}` : o.numeric)).join(' | ');
}

export class FuzzRunner {
  readonly stats: FuzzStats = {
    lines: 0, numericChecks: 0, reconnects: 0, closes: {}, repliesWithCr: 0, overlongReplies: 0, longestReplyBody: 0, overlongByCommand: {}, ms: 0,
  };
  conn: LineConn | null = null;
  private readonly tag = `mk${randomBytes(4).toString('hex')}`;
  private seq = 0;
  private readonly batchSize: number;
  private readonly hangMs: number;

  constructor(private readonly opts: FuzzRunnerOptions) {
    this.batchSize = opts.batchSize ?? 200;
    this.hangMs = opts.hangMs ?? 20_000;
  }

  private async connection(): Promise<LineConn> {
    if (this.conn && !this.conn.closed) return this.conn;
    if (this.conn) this.stats.reconnects++;
    const conn = await LineConn.connect(this.opts.port);
    if (this.opts.mode === 'reg') {
      const a = this.opts.account!;
      await conn.login(a.name, a.password);
      await this.opts.afterLogin?.(conn);
    }
    conn.lines.length = 0;
    this.conn = conn;
    return conn;
  }

  /** Send `lines` (no LF inside any of them) and check every reply; throws on the first problem. */
  async run(lines: readonly Buffer[]): Promise<void> {
    const t0 = performance.now();
    let i = 0;
    while (i < lines.length) {
      const conn = await this.connection();
      // A line longer than the daemon buffers may be answered (417) as soon as it overflows,
      // ahead of queued lines: send it first in its batch, when nothing is queued.
      let j = i + 1;
      while (j < lines.length && j - i < this.batchSize && lines[j]!.length <= MAX_RAW_LINE) j++;
      const batch = lines.slice(i, j);
      const markers = batch.map(() => `${this.tag}.${++this.seq}`);
      const parts: Buffer[] = [];
      for (let k = 0; k < batch.length; k++) parts.push(batch[k]!, CRLF, Buffer.from(`PING :${markers[k]}\r\n`));
      conn.write(Buffer.concat(parts));

      // Wait for the last marker or for the link to close.
      const last = markers[markers.length - 1]!;
      const deadline = Date.now() + this.hangMs;
      let scanned = 0;
      let done = false;
      while (!done) {
        for (; scanned < conn.lines.length; scanned++) {
          const m = PONG_RE.exec(conn.lines[scanned]!);
          if (m && m[1] === last) done = true;
        }
        if (done || conn.closed) break;
        const left = deadline - Date.now();
        if (left <= 0) {
          const k = conn.lines.filter((l) => PONG_RE.test(l)).length;
          throw new Error(
            `daemon hang: no reply within ${this.hangMs} ms after line ${k + 1} of a batch of ${batch.length} ` +
              `(${this.opts.mode}); that line was ${show(batch[k] ?? Buffer.alloc(0))}\nlast replies:\n${conn.tail()}`,
          );
        }
        await conn.nextEvent(left);
      }

      // Cut the replies into one segment per line.
      const segments: string[][] = batch.map(() => []);
      let k = 0;
      for (const l of conn.lines) {
        const m = PONG_RE.exec(l);
        if (m && k < markers.length && m[1] === markers[k]) {
          k++;
          continue;
        }
        if (k < segments.length) segments[k]!.push(l);
      }
      conn.lines.length = 0;
      for (let q = 0; q < k; q++) this.check(batch[q]!, segments[q]!);
      if (k < batch.length) {
        this.checkClose(batch[k]!, segments[k]!);
        i += k + 1;
        this.conn = null;
        conn.close();
      } else {
        i = j;
      }
    }
    this.stats.ms += performance.now() - t0;
  }

  private observe(segment: readonly string[], raw: Buffer): void {
    for (const l of segment) {
      if (l.includes('\n') || l.includes('\0')) {
        throw new Error(`the daemon sent a line with a bare LF or a NUL after ${show(raw)}: ${JSON.stringify(l.slice(0, 300))}`);
      }
      if (l.includes('\r')) this.stats.repliesWithCr++;
      const body = bodyBytes(l);
      if (body > this.stats.longestReplyBody) this.stats.longestReplyBody = body;
      if (body > 512 || tagBytes(l) > 8191) {
        this.stats.overlongReplies++;
        const cmd = /^(?:@[^ ]+ )?(?::[^ ]+ )?([^ ]+)/.exec(l)?.[1] ?? '?';
        this.stats.overlongByCommand[cmd] = (this.stats.overlongByCommand[cmd] ?? 0) + 1;
      }
    }
  }

  private check(raw: Buffer, segment: string[]): void {
    this.stats.lines++;
    this.observe(segment, raw);
    const exp = expectReply(raw, this.opts.mode === 'reg');
    const seen = this.opts.mode === 'pre' ? segment.filter((l) => !ASYNC_REGISTRATION.test(l)) : segment;
    if (!satisfies(exp, seen)) {
      throw new Error(
        `wrong answer (${this.opts.mode === 'pre' ? 'before' : 'after'} registration) to ${show(raw)}:\n` +
          `  expected ${showOutcomes(exp.outcomes)} (${exp.why})\n  got:\n    ${seen.join('\n    ') || '(nothing)'}`,
      );
    }
    if (exp.outcomes.every((o) => typeof o !== 'string')) this.stats.numericChecks++;
  }

  private checkClose(raw: Buffer, segment: string[]): void {
    this.stats.lines++;
    this.observe(segment, raw);
    const error = segment.find((l) => l.startsWith('ERROR :Closing link'));
    if (!error) {
      throw new Error(`the daemon dropped the connection without an ERROR line after ${show(raw)}; got:\n  ${segment.join('\n  ') || '(nothing)'}`);
    }
    const reason = /\(([^]*)\)$/.exec(error)?.[1] ?? error;
    const key = reason.startsWith('Quit') ? 'Quit' : reason;
    this.stats.closes[key] = (this.stats.closes[key] ?? 0) + 1;
    const exp = expectReply(raw, this.opts.mode === 'reg');
    const quit = exp.command === 'QUIT' && reason.startsWith('Quit');
    if (this.opts.mode === 'reg' && !quit) {
      throw new Error(`the daemon closed a registered connection (${reason}) after ${show(raw)}, which is not a QUIT`);
    }
    if (this.opts.mode === 'pre' && !PRE_REG_CLOSES.test(reason)) {
      throw new Error(`the daemon closed an unregistered connection for an unexpected reason (${reason}) after ${show(raw)}`);
    }
    if (reason.startsWith('Quit') && exp.command !== 'QUIT') {
      throw new Error(`the daemon treated ${show(raw)} as QUIT`);
    }
  }

  close(): void {
    this.conn?.close();
    this.conn = null;
  }
}
