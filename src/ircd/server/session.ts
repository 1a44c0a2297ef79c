/**
 * One client connection: line framing, input flow control (fakelag, recvq), output queue
 * (sendq) and the per-connection registration state. Handlers talk to the peer only through
 * `reply()` and `send()`; no handler builds wire text.
 *
 * Data flows one way: socket → framing here → host.dispatch (commands/dispatch.ts: parse, the
 * command table) → handler → state. The session knows its host only through `SessionHost`, so
 * it imports nothing above it.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { isUtf8 } from 'node:buffer';
import type { Socket } from 'node:net';
import { escapeTagValue, MAX_CLIENT_TAG_BYTES, MAX_LINE_BYTES, serializeBody, serializeTags } from '../../protocol/message.js';
import type { Logger } from '../../util/log.js';
import type { Limits } from '../config.js';
import type { Client, Peer } from './model.js';
import { Relay, TAG_ACCOUNT, TAG_MESSAGE_TAGS, TAG_SERVER_TIME } from './relay.js';
import { ERR_INPUTTOOLONG } from '../protocol/numerics.js';
import { truncateUtf8 } from '../protocol/text.js';

/** What a session needs of the server that owns it (server/server.ts implements it). */
export interface SessionHost {
  readonly name: string;
  readonly config: { readonly limits: Limits; readonly utf8Only: boolean };
  readonly log: Logger;
  /** Parse and run one line; a promise only when the handler is asynchronous. */
  dispatch(session: Session, line: string): Promise<void> | undefined;
  /** Flush this session's output once at the end of the event-loop turn. */
  scheduleFlush(session: Session): void;
  onSessionClosed(session: Session, reason: string): void;
}

const LF = 0x0a;
/** A line (tags + body + CRLF) can never legitimately be longer than this. */
const MAX_RAW_LINE = MAX_CLIENT_TAG_BYTES + 2 + MAX_LINE_BYTES;
/** PING and PONG skip fakelag: delaying a PONG could turn into a ping timeout. */
const KEEPALIVE_RE = /^(?:@\S* +)?(?::\S* +)?P[IO]NG(?: |$)/i;

/**
 * The session whose labeled command is running (IRCv3 labeled-response). Its replies are written
 * inside this scope, also after an await; lines that other sessions' commands send it meanwhile
 * are not, so they stay out of the labeled response.
 */
const labelScope = new AsyncLocalStorage<Session>();
let batchCounter = 0;

/** `line` (serialised, maybe with tags) with one more tag. */
function withTag(line: string, tag: string): string {
  return line.startsWith('@') ? `@${tag};${line.slice(1)}` : `@${tag} ${line}`;
}

/** Whether a serialised line carries a `batch` tag. */
function hasBatchTag(line: string): boolean {
  if (line.charCodeAt(0) !== 0x40 /* @ */) return false;
  const sp = line.indexOf(' ');
  return /[@;]batch=/.test(sp === -1 ? line : line.slice(0, sp));
}

/** The command word of a line that is not UTF-8 (read as latin1), for FAIL <command> INVALID_UTF8. */
const COMMAND_RE = /^(?:@\S* +)?(?::\S* +)?([A-Za-z]{1,20}|[0-9]{3})(?: |$)/;

/** PING or PONG (any case, maybe after tags or a source): only lines starting P, @ or : can be. */
function isKeepalive(line: string): boolean {
  const c = line.charCodeAt(0) | 0x20; // ASCII lower case; '@' (0x40) and ':' (0x3a) stay apart
  return (c === 0x70 /* p */ || c === 0x60 /* @ */ || c === 0x3a /* : */) && KEEPALIVE_RE.test(line);
}

export interface SaslState {
  mechanism: 'PLAIN';
  buffer: string;
}

let nextSessionId = 1;

/**
 * Shared by every session that has enabled no capability, and by every session before its first
 * MONITOR: most connections never do either, and an empty Set costs ~100 bytes each (issue 14:
 * memory per connection). `setCap` and `monitors` make a session's own Set on first use.
 */
const NO_CAPS: ReadonlySet<string> = new Set();

// The last multi-part flush: its parts and the text joined from them. Members of one room get
// the same relayed lines in the same order within a turn, and the server flushes them one after
// another, so in a busy room most flushes would join exactly the previous list again: write the
// same joined text instead (docs/DESIGN.md "Rules the code keeps": Fan-out).
// A flushed `out` array is never modified again (flush replaces it), so keeping it is safe.
let lastParts: string[] | null = null;
let lastJoined = '';
let lastBytes = 0;

function joinOutput(parts: string[], bytes: number): string {
  if (parts.length === 1) return parts[0]!;
  const prev = lastParts;
  if (prev !== null && prev.length === parts.length && lastBytes === bytes) {
    let i = 0;
    while (i < parts.length && prev[i] === parts[i]) i++;
    if (i === parts.length) return lastJoined;
  }
  const joined = parts.join('');
  lastParts = parts;
  lastJoined = joined;
  lastBytes = bytes;
  return joined;
}

export class Session implements Peer {
  readonly id = nextSessionId++;
  /** IRCv3 capabilities this connection enabled (changed only through setCap). */
  caps: ReadonlySet<string> = NO_CAPS;
  /** Bitmask of tag caps (relay.ts), kept in step with `caps`. */
  tagMask = 0;
  capVersion = 0;
  /** True between CAP LS/REQ and CAP END: registration waits (IRCv3 capability negotiation). */
  capNegotiating = false;

  // Registration state (before `client` is set).
  nick: string | null = null;
  username: string | null = null;
  realname = '';
  password: string | null = null;
  sasl: SaslState | null = null;
  saslAccount: string | null = null;
  saslAttempts = 0;
  registering = false;
  /** Set once registration completes; the identity this session belongs to. */
  client: Client | null = null;
  private monitorSet: Set<string> | null = null;

  readonly connectedAt: number;
  lastInputAt: number;
  /**
   * When the line being handled now was taken from the queue (read once per batch of lines, not
   * per line: Date.now() costs about as much as parsing a short line). Handlers use it for
   * server-time and idle times.
   */
  now: number;
  pingSentAt = 0;
  closed = false;

  // Input flow control.
  private inbuf: Buffer | null = null;
  private discarding = false;
  /** Lines waiting under fakelag, with their size on the wire (recvq counts raw bytes). */
  private readonly queue: Array<{ line: string | null; bytes: number; invalidUtf8?: true }> = [];
  private queuedBytes = 0;
  private tokens: number;
  private lastRefill: number;
  private pumping = false;
  private resumeTimer: NodeJS.Timeout | null = null;
  /** keybot and operators are exempt from fakelag. */
  exemptFromFakelag = false;

  // Output queue, flushed once per event-loop turn by the server: lines as strings, their UTF-8
  // bytes counted for the sendq, encoded once per flush by the socket (issue 14: no Buffer per line).
  private out: string[] = [];
  /** The response of a labeled command while it runs (labeled-response), sent when it is done. */
  private labeled: { label: string; lines: string[]; bytes: number } | null = null;
  private outBytes = 0;
  flushScheduled = false;
  /** limits.sendqBytes, read once: write() runs for every delivery. */
  private readonly sendqBytes: number;
  /** config utf8Only, read once: checked for every line. */
  private readonly utf8Only: boolean;

  constructor(
    readonly server: SessionHost,
    readonly socket: Socket,
    readonly ip: string,
    readonly tls: boolean,
  ) {
    this.connectedAt = this.lastInputAt = this.now = this.lastRefill = Date.now();
    this.tokens = server.config.limits.commandBurst;
    this.sendqBytes = server.config.limits.sendqBytes;
    this.utf8Only = server.config.utf8Only;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    // One listener for both ends of a connection ('error' comes first, with an Error; 'close'
    // follows with a boolean): close() is idempotent, so the first reason stays.
    const ended = (err: unknown): void => this.close(err instanceof Error ? 'Connection reset' : 'Connection closed');
    socket.on('error', ended);
    socket.on('close', ended);
  }

  /** Casefolded nicks this connection MONITORs (IRCv3 monitor); made on first use. */
  get monitors(): Set<string> {
    return (this.monitorSet ??= new Set());
  }

  /** Whether this connection MONITORs anyone, without making the Set. */
  get monitoring(): boolean {
    return this.monitorSet !== null && this.monitorSet.size > 0;
  }

  /** The nick to address numerics to: '*' before registration (modern.ircdocs.horse). */
  get target(): string {
    return this.client?.nick ?? this.nick ?? '*';
  }

  // ---- output -------------------------------------------------------------------------------

  /** Send a numeric reply from the server: `:server NUM <nick> params...`. */
  reply(numeric: string, ...params: string[]): void {
    this.sendFrom(this.server.name, numeric, [this.target, ...params]);
  }

  /** Send a message with the given source (null = no prefix). */
  sendFrom(source: string | null, command: string, params: readonly string[], extraTags?: Record<string, string>): void {
    if (this.closed) return;
    let tags = '';
    if (this.tagMask & TAG_SERVER_TIME || extraTags) {
      const t: Record<string, string> = { ...extraTags };
      // A replayed line (CHATHISTORY, the mailbox) brings its own time.
      if (this.tagMask & TAG_SERVER_TIME && t.time === undefined) t.time = new Date().toISOString();
      tags = serializeTags(t);
    }
    let body = serializeBody(source, command, params);
    let bodyBytes = Buffer.byteLength(body);
    if (bodyBytes + 2 > MAX_LINE_BYTES) {
      body = serializeBody(source, command, fitParams(source, command, params));
      bodyBytes = Buffer.byteLength(body);
    }
    this.write(tags + body + '\r\n', (tags === '' ? 0 : Buffer.byteLength(tags)) + bodyBytes + 2);
  }

  /** Send a relayed message (serialised once per tag variant across all recipients). */
  relay(r: Relay): void {
    if (this.closed) return;
    const mask = this.tagMask;
    this.write(r.lineFor(mask), r.lengthFor(mask));
  }

  /** Queue one line (CRLF included) of `bytes` UTF-8 bytes. */
  private write(line: string, bytes: number): void {
    if (this.labeled !== null && labelScope.getStore() === this) {
      this.labeled.lines.push(line);
      this.labeled.bytes += bytes;
      if (this.labeled.bytes + this.outBytes + this.socket.writableLength > this.sendqBytes) {
        this.labeled = null;
        this.close('SendQ exceeded', true);
      }
      return;
    }
    this.out.push(line);
    this.outBytes += bytes;
    if (this.outBytes + this.socket.writableLength > this.sendqBytes) {
      // Slow reader: drop it rather than let its queue grow without bound.
      this.out = [];
      this.outBytes = 0;
      this.close('SendQ exceeded', true);
      return;
    }
    if (!this.flushScheduled) this.server.scheduleFlush(this);
  }

  /** Called by the server once per event-loop turn. */
  flush(): void {
    this.flushScheduled = false;
    if (this.outBytes === 0 || this.socket.destroyed) return;
    const bytes = this.outBytes;
    const data = joinOutput(this.out, bytes);
    this.out = [];
    this.outBytes = 0;
    // As many bytes as UTF-16 units: all ASCII, written as one-byte text, which the socket encodes
    // straight into its write. Otherwise, or when the socket still holds earlier output (a slow
    // reader: this write would wait in its queue), the socket gets the UTF-8 bytes, so that its
    // writableLength (part of the sendq) counts bytes and a backlog stays outside the V8 heap, as
    // Buffers, instead of being copied by every young-generation GC while it waits.
    if (data.length === bytes && this.socket.writableLength === 0) this.socket.write(data, 'latin1');
    else this.socket.write(Buffer.from(data, data.length === bytes ? 'latin1' : 'utf8'));
  }

  /**
   * Run a command sent with a `label` tag (IRCv3 labeled-response): its replies go out once it is
   * done, as one line carrying the label, or as a `labeled-response` BATCH, or as ACK when there
   * are none. `run` is the dispatch of the parsed line; its promise (if any) is passed on.
   */
  runLabeled(label: string, run: () => Promise<void> | undefined): Promise<void> | undefined {
    this.labeled = { label, lines: [], bytes: 0 };
    let pending: Promise<void> | undefined;
    try {
      pending = labelScope.run(this, run);
    } finally {
      if (!pending) this.finishLabeled();
    }
    return pending?.finally(() => this.finishLabeled());
  }

  private finishLabeled(): void {
    const l = this.labeled;
    this.labeled = null;
    if (l === null || this.closed) return;
    const name = this.server.name;
    if (l.lines.length === 0) {
      this.sendFrom(name, 'ACK', [], { label: l.label });
    } else if (l.lines.length === 1) {
      this.writeText(withTag(l.lines[0]!, `label=${escapeTagValue(l.label)}`));
    } else {
      const id = `lr${(++batchCounter).toString(36)}`;
      this.sendFrom(name, 'BATCH', [`+${id}`, 'labeled-response'], { label: l.label });
      // A line inside a nested batch (a chathistory batch in a labeled response) keeps its own
      // batch tag; the nested BATCH lines themselves belong to the outer one (IRCv3 batch).
      for (const line of l.lines) this.writeText(hasBatchTag(line) ? line : withTag(line, `batch=${id}`));
      this.sendFrom(name, 'BATCH', [`-${id}`]);
    }
  }

  private writeText(line: string): void {
    this.write(line, Buffer.byteLength(line));
  }

  /** A fresh batch reference tag (IRCv3 batch), unique within this daemon run. */
  newBatchId(): string {
    return `b${(++batchCounter).toString(36)}`;
  }

  setCap(name: string, on: boolean): void {
    if (on) {
      if (this.caps === NO_CAPS) this.caps = new Set<string>();
      (this.caps as Set<string>).add(name);
    } else if (this.caps !== NO_CAPS) {
      (this.caps as Set<string>).delete(name);
    }
    const bit = name === 'server-time' ? TAG_SERVER_TIME : name === 'account-tag' ? TAG_ACCOUNT : name === 'message-tags' ? TAG_MESSAGE_TAGS : 0;
    if (bit) this.tagMask = on ? this.tagMask | bit : this.tagMask & ~bit;
  }

  // ---- input --------------------------------------------------------------------------------

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    const queued = this.queue.length;
    let buf = this.inbuf ? Buffer.concat([this.inbuf, chunk]) : chunk;
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(LF, start);
      if (nl === -1) break;
      if (this.discarding) {
        this.discarding = false; // the tail of an overlong line: drop it
      } else {
        let end = nl;
        if (end > start && buf[end - 1] === 0x0d) end--;
        if (end - start > MAX_RAW_LINE) {
          // A complete line longer than any legal one: drop it, keep the link, and answer 417 in
          // its turn (after the replies to the lines queued before it).
          this.enqueue(null, 0);
        } else if (end > start) {
          // UTF8ONLY (IRCv3 utf8-only, config utf8Only): a line that is not UTF-8 is refused whole,
          // never passed on with its bad bytes replaced by U+FFFD.
          const ok = !this.utf8Only || isUtf8(buf.subarray(start, end));
          this.enqueue(buf.toString(ok ? 'utf8' : 'latin1', start, end), end - start, !ok);
        }
      }
      start = nl + 1;
      if (this.closed) return;
    }
    // A complete line is a sign of life and resets the keepalive (RFC 2812 §3.7.2); bytes
    // trickling in without a newline are not.
    let now = 0;
    if (this.queue.length !== queued) {
      this.lastInputAt = now = Date.now();
      this.pingSentAt = 0;
    }
    const rest = buf.length - start;
    if (rest === 0) this.inbuf = null;
    else if (rest > MAX_RAW_LINE) {
      // No newline within the longest legal line: answer once and drop until the next LF.
      this.inbuf = null;
      if (!this.discarding) this.enqueue(null, 0);
      this.discarding = true;
    } else {
      this.inbuf = start === 0 ? buf : buf.subarray(start);
    }
    if (this.queue.length > 0) this.pump(now);
  }

  /**
   * Queue a line for the pump; `null` stands for a dropped overlong line (answered with 417), and
   * `invalidUtf8` for a line that is not UTF-8 (answered with FAIL … INVALID_UTF8).
   */
  private enqueue(line: string | null, bytes: number, invalidUtf8 = false): void {
    this.queue.push(invalidUtf8 ? { line, bytes, invalidUtf8 } : { line, bytes });
    this.queuedBytes += bytes;
    if (this.queuedBytes > this.server.config.limits.recvqBytes && !this.exemptFromFakelag) {
      this.close('Excess Flood', true);
    }
  }

  /** Process queued lines in order, one at a time (a handler may be async), under fakelag. */
  private pump(now = 0): void {
    if (this.pumping || this.closed) return;
    this.pumping = true;
    this.step(now || Date.now());
  }

  /**
   * The pump's loop, a method rather than a closure made per read (issue 14: per-line costs): it
   * runs until the queue is empty, fakelag holds it (resumed by a timer) or a handler is
   * asynchronous (resumed when it settles); `pumping` stays true while it is held.
   */
  private step(now: number): void {
    this.now = now;
    const limits = this.server.config.limits;
    while (!this.closed && this.queue.length > 0) {
      const head = this.queue[0]!.line;
      if (!this.exemptFromFakelag && head !== null && !isKeepalive(head)) {
        this.tokens = Math.min(limits.commandBurst, this.tokens + ((now - this.lastRefill) / 1000) * limits.commandsPerSecond);
        this.lastRefill = now;
        if (this.tokens < 1) {
          // Fakelag: hold the rest of the queue until a token is due (ergo, RFC 1459 §8.10).
          const wait = Math.ceil(((1 - this.tokens) / limits.commandsPerSecond) * 1000);
          this.resumeTimer = setTimeout(() => {
            this.resumeTimer = null;
            this.pumping = true;
            this.step(Date.now());
          }, wait);
          this.pumping = false;
          return;
        }
        this.tokens -= 1;
      }
      const { line, bytes, invalidUtf8 } = this.queue.shift()!;
      this.queuedBytes -= bytes;
      if (line === null) {
        this.reply(ERR_INPUTTOOLONG, 'Input line was too long');
        continue;
      }
      if (invalidUtf8) {
        const command = COMMAND_RE.exec(line)?.[1]?.toUpperCase() ?? '*';
        this.sendFrom(this.server.name, 'FAIL', [command, 'INVALID_UTF8', 'Line refused: it is not valid UTF-8 (UTF8ONLY)']);
        continue;
      }
      const pending = this.server.dispatch(this, line);
      if (pending) {
        pending.then(() => this.step(Date.now()), (err: unknown) => {
          this.server.log.error(`handler failed: ${(err as Error)?.stack ?? String(err)}`);
          this.step(Date.now());
        });
        return;
      }
    }
    this.pumping = false;
  }

  /**
   * Close the connection. `notify` sends `ERROR :Closing link` first (RFC 2812 §3.1.7).
   * Idempotent; the server removes the session from its registries.
   */
  close(reason: string, notify = false): void {
    if (this.closed) return;
    if (notify && !this.socket.destroyed) {
      const line = `ERROR :Closing link: ${this.ip} (${reason})\r\n`;
      this.flush();
      this.socket.end(line);
    }
    this.closed = true;
    if (this.resumeTimer) clearTimeout(this.resumeTimer);
    this.queue.length = 0;
    this.server.onSessionClosed(this, reason);
    if (!notify) this.socket.destroy();
    else setTimeout(() => this.socket.destroy(), 1000).unref();
  }
}

/**
 * Replies echo what the client sent (a bad nick, a PING token, a CAP list): cut the longest
 * parameter (never the first, the recipient) until the line fits 512 bytes, rather than send
 * a line that clients would truncate or drop.
 */
function fitParams(source: string | null, command: string, params: readonly string[]): string[] {
  const all = [...params];
  let excess = Buffer.byteLength(serializeBody(source, command, all)) + 2 - MAX_LINE_BYTES;
  while (excess > 0 && all.length > 1) {
    let longest = 1;
    for (let i = 2; i < all.length; i++) if (Buffer.byteLength(all[i]!) > Buffer.byteLength(all[longest]!)) longest = i;
    const before = Buffer.byteLength(all[longest]!);
    if (before === 0) break;
    all[longest] = truncateUtf8(all[longest]!, Math.max(0, before - excess));
    excess -= before - Buffer.byteLength(all[longest]!);
  }
  return all;
}
