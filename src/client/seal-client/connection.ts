/**
 * The connection of SealClient (client.ts): state, login, and re-establishing a lost connection
 * with backoff (docs/PROTOCOL.md "Faults"). The layers above it (keybot.ts, rooms.ts, client.ts)
 * add keybot's key and commands, room text, and the wiring of irc-framework's events.
 */
import { EventEmitter } from 'node:events';
import IRC, { type Client as IrcClient, type WhoisResult } from 'irc-framework';
import { backoffDelay } from '../../protocol/backoff.js';
import { KEYBOT_NICK, casefold } from '../../protocol/names.js';
import type { CompanionMemory, MemoryBook, RoomCryptoEngine } from '../core/index.js';
import { SealClientError } from '../errors.js';
import type { ArmorCollector } from '../core/index.js';
import type { RoomMembership } from '../core/index.js';
import type { Outbox, Unsent } from '../core/index.js';
import type { KeybotTrust, ReconnectOptions, SealClientEvents, SealConnectOptions, SendResult } from './types.js';

type Listener<K extends keyof SealClientEvents> = (...args: SealClientEvents[K]) => void;

/** A keybot command waiting for its reply lines. */
interface PendingCommand {
  lines: string[];
  resolve: (lines: string[]) => void;
  reject: (err: Error) => void;
  quiet?: NodeJS.Timeout;
  deadline: NodeJS.Timeout;
}

type Phase = 'idle' | 'connecting' | 'online' | 'reconnecting' | 'closed';

const DEFAULT_TIMEOUT_MS = 10_000;

/** One connection to a sealchat server and its reconnects; the base of SealClient. */
export abstract class SealClientConnection extends EventEmitter {
  protected irc: IrcClient | undefined;
  protected engine: RoomCryptoEngine | undefined;
  protected book: MemoryBook | undefined;
  protected memory: CompanionMemory | undefined;
  protected options: SealConnectOptions | undefined;
  protected queue: Promise<void> = Promise.resolve();
  protected sweepTimer: NodeJS.Timeout | undefined;
  /** The rooms we are in, and what JOIN/PART/KICK/QUIT mean for their keys (membership.ts). */
  protected membershipState: RoomMembership | undefined;
  /** Encrypted rooms we were in when the connection was lost: text for them may wait for a key. */
  protected readonly restoring = new Map<string, string>();
  protected registered = false;
  protected phase: Phase = 'idle';
  protected quitting = false;
  protected reconnectOptions: ReconnectOptions | undefined;
  protected reconnectTimer: NodeJS.Timeout | undefined;
  protected attempts = 0;
  protected reconnectedAt = 0;
  protected outbox: Outbox | undefined;
  protected holding = true;
  protected readonly waiting = new Map<number, { resolve: (r: SendResult) => void; reject: (err: Error) => void }>();
  /** After a reconnect: check that keybot still offers the pinned key. */
  protected keybotCheckDue = false;
  protected keybotChecking = false;
  protected trust: KeybotTrust = { status: 'unavailable', reason: 'not connected' };
  protected keyFetch: { collector: ArmorCollector; done: (armored: string | Error) => void } | undefined;
  protected fetching: Promise<KeybotTrust> | undefined;
  protected commandTail: Promise<unknown> = Promise.resolve();
  protected pending: PendingCommand | undefined;

  override on<K extends keyof SealClientEvents>(event: K, listener: Listener<K>): this {
    return super.on(event, listener as (...args: unknown[]) => void);
  }
  override once<K extends keyof SealClientEvents>(event: K, listener: Listener<K>): this {
    return super.once(event, listener as (...args: unknown[]) => void);
  }
  override off<K extends keyof SealClientEvents>(event: K, listener: Listener<K>): this {
    return super.off(event, listener as (...args: unknown[]) => void);
  }
  override emit<K extends keyof SealClientEvents>(event: K, ...args: SealClientEvents[K]): boolean {
    return super.emit(event, ...args);
  }

  /** Our nick (= account), once connected. */
  get nick(): string | undefined {
    return this.options?.nick;
  }

  /** How keybot's key stands. */
  get keybot(): KeybotTrust {
    return this.trust;
  }

  /** The crypto session (for layers that want to look at room state). */
  get crypto(): RoomCryptoEngine | undefined {
    return this.engine;
  }

  /** True while the connection is lost and a new one is being attempted. */
  get reconnecting(): boolean {
    return this.phase === 'reconnecting';
  }

  /** WHOIS: `{ nick, error: 'not_found' }` when the user is offline or unknown. */
  whois(nick: string): Promise<WhoisResult> {
    const { irc } = this.connected();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new SealClientError('timeout', `no WHOIS reply for ${nick}`)), this.timeoutMs());
      irc.whois(nick, (r) => {
        clearTimeout(t);
        resolve(r);
      });
    });
  }

  /** Quit (also stops reconnecting) and wait for the connection to close. Keys are wiped. */
  quit(message = 'bye'): Promise<void> {
    const irc = this.irc;
    if (!irc || this.phase === 'closed') return Promise.resolve();
    this.quitting = true;
    return new Promise((resolve) => {
      const t = setTimeout(resolve, 3000);
      t.unref();
      this.once('close', () => {
        clearTimeout(t);
        resolve();
      });
      if (this.phase === 'reconnecting') {
        // Between connections (or in the middle of an attempt): stop here.
        clearTimeout(this.reconnectTimer);
        irc.quit(message);
        this.finish('you quit');
        return;
      }
      irc.quit(message);
    });
  }

  // ---- internals ---------------------------------------------------------------------------

  protected connected(): { irc: IrcClient; engine: RoomCryptoEngine } {
    if (!this.irc || !this.engine || !this.registered || this.phase !== 'online') {
      throw new SealClientError('not-connected', 'not connected to the sealchat server');
    }
    return { irc: this.irc, engine: this.engine };
  }

  protected timeoutMs(): number {
    return this.options?.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  protected server(): string {
    return `${this.options!.host}:${this.options!.port}`;
  }

  /** Run `fn` after everything received before it (errors are reported, the queue goes on). */
  protected enqueue(fn: () => Promise<void> | void): void {
    this.queue = this.queue.then(fn).catch((err: Error) => {
      this.emit('error', err);
    });
  }

  protected register(irc: IrcClient, o: SealConnectOptions): Promise<void> {
    return new Promise((resolve, reject) => {
      let gone = false;
      const fail = (err: SealClientError): void => {
        clearTimeout(timer);
        irc.off('registered', ok);
        irc.off('irc error', early);
        irc.off('close', earlyClose);
        if (!gone) irc.quit();
        reject(err);
      };
      const timer = setTimeout(() => fail(new SealClientError('timeout', `${o.host}:${o.port} did not complete the login`)), this.timeoutMs());
      const ok = (): void => {
        clearTimeout(timer);
        this.registered = true;
        irc.off('irc error', early);
        irc.off('close', earlyClose);
        this.emit('registered', { nick: o.nick });
        resolve();
      };
      const early = (e: { error?: string; reason?: string }): void => {
        fail(new SealClientError('auth', `the server refused the login: ${e.reason ?? e.error ?? 'unknown reason'}`));
      };
      const earlyClose = (): void => {
        gone = true;
        fail(new SealClientError('connection', `the connection to ${o.host}:${o.port} closed during login`));
      };
      irc.once('registered', ok);
      irc.on('irc error', early);
      irc.once('close', earlyClose);
      irc.connect({
        host: o.host,
        port: o.port,
        nick: o.nick,
        username: o.nick,
        gecos: o.nick,
        tls: o.tls ?? false,
        rejectUnauthorized: o.rejectUnauthorized ?? true,
        auto_reconnect: false,
        ...(o.password !== undefined ? { password: o.password } : {}),
        ...(o.sasl ? { account: { account: o.sasl.account ?? o.nick, password: o.sasl.password } } : {}),
      });
    });
  }

  /** One connection is gone: wipe its keys, then reconnect or finish. */
  protected onClose(irc: IrcClient): void {
    if (irc !== this.irc || this.phase === 'closed') return;
    const wasOnline = this.phase === 'online';
    this.registered = false;
    this.keyFetch?.done(new Error('the connection closed'));
    if (this.pending) {
      clearTimeout(this.pending.quiet);
      clearTimeout(this.pending.deadline);
      this.pending.resolve(this.pending.lines);
      this.pending = undefined;
    }
    // A reconnect attempt that fails is handled where it was started.
    if (this.phase === 'reconnecting') return;
    // The rooms we were in: text for them may wait for the key keybot sends when we are back.
    for (const room of this.membershipState?.rooms() ?? []) if (this.engine?.isEncryptedRoom(room)) this.restoring.set(casefold(room), room);
    // Keys live in memory only: wipe them with the connection (and with them, any suspension).
    this.membershipState?.clear();
    for (const r of this.engine?.listRooms() ?? []) this.engine!.forgetRoom(r.room);
    if (!wasOnline || this.quitting || !this.reconnectOptions) {
      this.finish(this.quitting ? 'you quit' : 'the connection closed');
      return;
    }
    this.phase = 'reconnecting';
    this.enqueue(() => void this.emit('disconnected', { reason: 'the connection to the server was lost', reconnecting: true }));
    this.scheduleReconnect();
  }

  protected scheduleReconnect(): void {
    const o = this.reconnectOptions!;
    if (this.attempts >= (o.maxAttempts ?? Infinity)) {
      this.enqueue(() => void this.emit('disconnected', { reason: `gave up reconnecting after ${this.attempts} attempts`, reconnecting: false }));
      this.finish('the connection was lost');
      return;
    }
    // Companions spread their returns (jitter 0.5 unless configured): a daemon restart drops everyone at once.
    const delayMs = backoffDelay(this.attempts, { jitter: 0.5, ...o });
    this.attempts++;
    const attempt = this.attempts;
    this.enqueue(() => void this.emit('reconnecting', { attempt, delayMs }));
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => void this.reconnectNow(), delayMs);
  }

  protected async reconnectNow(): Promise<void> {
    if (this.phase !== 'reconnecting') return;
    const o = this.options!;
    const irc = new IRC.Client();
    this.irc = irc;
    this.wire(irc);
    try {
      await this.register(irc, o);
    } catch (err) {
      if (this.phase !== 'reconnecting') return;
      if (err instanceof SealClientError && err.code === 'auth') {
        // The server refuses this account now: trying again would not help.
        this.enqueue(() => void this.emit('disconnected', { reason: err.message, reconnecting: false }));
        this.finish('the login was refused');
        return;
      }
      this.scheduleReconnect();
      return;
    }
    if (this.phase !== 'reconnecting') {
      irc.quit();
      return;
    }
    this.phase = 'online';
    const attempts = this.attempts;
    this.attempts = 0;
    this.reconnectedAt = Date.now();
    // The pin stays; check that keybot still offers the same key once it is online (MONITOR).
    this.keybotCheckDue = this.engine?.keybotFingerprint !== undefined;
    irc.raw('MONITOR', '+', KEYBOT_NICK);
    this.enqueue(() => void this.emit('reconnected', { nick: o.nick, attempts }));
  }

  /** The client is done: no more reconnects, held text reported unsent, keys wiped. */
  protected finish(why: string): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    this.registered = false;
    clearInterval(this.sweepTimer);
    clearTimeout(this.reconnectTimer);
    this.restoring.clear();
    this.membershipState?.clear();
    for (const r of this.engine?.listRooms() ?? []) this.engine!.forgetRoom(r.room);
    if (this.outbox) this.unsent(this.outbox.drop(`${why}; nothing was sent`));
    const book = this.book;
    this.enqueue(async () => {
      // What outlives the connection is on disk before the client says it is done.
      await book?.flush();
      this.emit('close');
    });
  }

  /** Listen to one IRC connection (client.ts). */
  protected abstract wire(irc: IrcClient): void;

  /** Held text given up: tell the caller of send() and the listeners (rooms.ts). */
  protected abstract unsent(list: Unsent[]): void;
}
