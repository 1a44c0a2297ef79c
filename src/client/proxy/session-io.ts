/**
 * The two sockets of one proxied connection (session.ts): reading lines from each side, writing
 * them with backpressure, the proxy's own NOTICEs, and closing. The layers above it
 * (session-keybot.ts, session-client.ts, session-server.ts, session.ts) decide what the lines mean.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { PrivateKeyHandle } from '../../crypto/index.js';
import { serializeBody } from '../../protocol/message.js';
import type { Logger } from '../../util/log.js';
import type { CompanionMemory, MemoryBook, Outbox, OutboxOptions, RoomCryptoEngine, RoomCryptoEngineOptions, Unsent } from '../core/index.js';
import type { ArmorCollector } from '../core/index.js';

import type { RoomMembership } from '../core/index.js';
import { LineSplitter } from './lines.js';

/** The proxy's own nick in NOTICEs it shows the client. */
export const PROXY_NICK = '*sealchat';
const PROXY_SOURCE = `${PROXY_NICK}!sealchat@proxy`;
/** Pause reading one side while the other has this much unsent. */
const HIGH_WATER = 1 << 20;

export interface UpstreamOptions {
  host: string;
  port: number;
  tls?: boolean;
  /** Verify the server's TLS certificate (default true). */
  rejectUnauthorized?: boolean;
}

/** Options of one session (the proxy passes the same to every session). */
export interface ProxySessionOptions {
  upstream: UpstreamOptions;
  /** The user's unlocked key. */
  privateKey: PrivateKeyHandle;
  /** Only this account may log in through the proxy (the key's owner). */
  account?: string;
  keybotFingerprint?: string;
  keybotPublicKey?: string;
  knownKeybotsFile?: string | false;
  /** Forward plaintext to ordinary channels and to nicks other than keybot (default false). */
  allowPlaintext?: boolean;
  /** How long keybot has to answer `pubkey` (default 10 s). */
  keybotTimeoutMs?: number;
  engine?: Omit<RoomCryptoEngineOptions, 'account' | 'privateKey' | 'keybotKey'>;
  /** How long and how much room text waits for a key it may be sent under (default 30 s). */
  outbox?: Omit<OutboxOptions, 'clock'>;
  /** Every line the proxy writes: 'up' to the server, 'down' to the client (debugging, tests). */
  tap?: (direction: 'up' | 'down', line: string) => void;
  log?: Logger;
}

/** How keybot's key stands for the session. */
export type KeybotState =
  | { status: 'waiting' }
  | { status: 'pinned'; fingerprint: string }
  | { status: 'unavailable'; reason: string; at: number }
  | { status: 'mismatch'; reason: string };

/** No CR, LF or NUL can reach the wire through a notice's text. */
export function oneLine(text: string): string {
  return text.replace(/[\r\n\0]+/g, ' ');
}

/** The sockets of one proxied connection; the base of ProxySession. */
export abstract class ProxySessionIO {
  protected readonly downSplit = new LineSplitter();
  protected readonly upSplit = new LineSplitter();
  protected up: net.Socket;
  protected engine: RoomCryptoEngine | undefined;
  /** What outlives this connection for (account, server), once logged in (core/memory.ts). */
  protected memory: CompanionMemory | undefined;
  protected outbox: Outbox | undefined;
  /** Held texts (id → text), to name them when they are given up. */
  protected readonly heldTexts = new Map<number, string>();
  /** The rooms the server has us in, and what JOIN/PART/KICK/QUIT mean for their keys. */
  protected rooms: RoomMembership | undefined;
  /** Our nick: what the client asked for, then what 001 says. */
  protected nick: string | undefined;
  protected queue: Promise<void> = Promise.resolve();
  protected closed = false;
  protected upConnected = false;
  protected sweepTimer: NodeJS.Timeout | undefined;
  protected keybot: KeybotState = { status: 'waiting' };
  protected pinning = false;
  protected keyFetch: { collector: ArmorCollector; started: boolean; done: (r: string | Error) => void } | undefined;
  /** The full `nick!user@host` last seen per folded nick: released messages need their sender's prefix. */
  protected readonly prefixes = new Map<string, string>();
  protected readonly closeListeners: Array<() => void> = [];

  constructor(
    protected readonly down: net.Socket,
    protected readonly o: ProxySessionOptions,
    protected readonly book: MemoryBook,
  ) {
    down.setNoDelay(true);
    const u = o.upstream;
    this.up = u.tls
      ? tls.connect({
          host: u.host,
          port: u.port,
          rejectUnauthorized: u.rejectUnauthorized ?? true,
          ...(net.isIP(u.host) ? {} : { servername: u.host }),
        })
      : net.connect({ host: u.host, port: u.port });
    this.up.setNoDelay(true);
    this.up.once(u.tls ? 'secureConnect' : 'connect', () => {
      this.upConnected = true;
    });
    this.up.on('data', (chunk: Buffer) => this.onUpData(chunk));
    this.up.on('error', (err: Error) => this.upstreamFailed(err));
    this.up.on('close', () => this.enqueue(() => this.close()));
    this.up.on('drain', () => this.down.resume());
    down.on('data', (chunk: Buffer) => this.onDownData(chunk));
    down.on('error', () => undefined);
    down.on('close', () => this.clientGone());
    down.on('drain', () => this.up.resume());
  }

  // ---- plumbing ----------------------------------------------------------------------------

  protected enqueue(fn: () => Promise<void> | void): void {
    this.queue = this.queue.then(fn).catch((err: Error) => {
      this.o.log?.error(`proxy session: ${err.message}`, err);
    });
  }

  protected onDownData(chunk: Buffer): void {
    const lines = this.downSplit.push(chunk);
    if (lines === null) {
      this.toClient(`ERROR :${PROXY_NICK}: line too long`);
      this.close();
      return;
    }
    for (const line of lines) {
      if (this.closed) return;
      this.fromClient(line);
    }
  }

  protected onUpData(chunk: Buffer): void {
    const lines = this.upSplit.push(chunk);
    if (lines === null) {
      this.enqueue(() => {
        this.toClient(`ERROR :${PROXY_NICK}: the server sent a line that is too long`);
        this.close();
      });
      return;
    }
    for (const line of lines) this.enqueue(() => this.fromServer(line));
  }

  protected toServer(line: string | Buffer): void {
    if (this.closed || this.up.destroyed) return;
    this.o.tap?.('up', line.toString());
    const ok = this.up.write(Buffer.concat([typeof line === 'string' ? Buffer.from(line) : line, Buffer.from('\r\n')]));
    if (!ok && this.up.writableLength > HIGH_WATER) this.down.pause();
  }

  protected toClient(line: string | Buffer): void {
    if (this.down.destroyed || !this.down.writable) return;
    this.o.tap?.('down', line.toString());
    const ok = this.down.write(Buffer.concat([typeof line === 'string' ? Buffer.from(line) : line, Buffer.from('\r\n')]));
    if (!ok && this.down.writableLength > HIGH_WATER) this.up.pause();
  }

  /** A NOTICE from the proxy to a room or to the user. */
  protected notice(target: string, text: string): void {
    this.toClient(serializeBody(PROXY_SOURCE, 'NOTICE', [target, oneLine(text)]));
  }

  protected upstreamFailed(err: Error): void {
    if (this.closed) return;
    const where = `${this.o.upstream.host}:${this.o.upstream.port}`;
    const why = this.upConnected ? `the connection to ${where} failed: ${err.message}` : `cannot reach ${where}: ${err.message}`;
    this.o.log?.warn(why);
    this.enqueue(() => {
      this.notice(this.nick ?? '*', why);
      this.toClient(`ERROR :Closing link: ${oneLine(why)}`);
      this.close();
    });
  }

  protected clientGone(): void {
    if (this.closed) return;
    // The client vanished without QUIT (or after it): make sure the server sees us go.
    if (!this.up.destroyed) {
      this.toServer('QUIT :client disconnected');
      this.up.end();
    }
    this.close();
  }

  protected close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweepTimer);
    this.keyFetch?.done(new Error('the connection closed'));
    if (this.outbox) this.unsent(this.outbox.drop('the connection to the server closed; nothing was sent'));
    this.rooms?.clear();
    // Keys live in memory only, for this connection only.
    for (const r of this.engine?.listRooms() ?? []) this.engine!.forgetRoom(r.room);
    this.down.end();
    this.up.end();
    setTimeout(() => {
      this.down.destroy();
      this.up.destroy();
    }, 2000).unref();
    for (const l of this.closeListeners.splice(0)) l();
  }

  /** One line the client sent (session-client.ts). */
  protected abstract fromClient(raw: Buffer): void;

  /** One line the server sent, in arrival order (session-server.ts). */
  protected abstract fromServer(raw: Buffer): Promise<void>;

  /** Held text given up: tell the user, with the text (session-client.ts). */
  protected abstract unsent(list: Unsent[]): void;
}
