/**
 * SealClient: one user's connection to a sealchat server, with rooms decrypted and verified.
 *
 * irc-framework carries the IRC; RoomCryptoEngine decides what every PRIVMSG/NOTICE means; this
 * class wires the two, pins keybot's key (pinning.ts), talks to keybot, and reports everything as
 * events. The terminal client, the local proxy and the plugin agent build on it (or on the engine
 * directly, when they already have an IRC connection of their own).
 *
 * Everything the server sends is handled in arrival order (one queue), so a key envelope is
 * applied before the message after it, and a PART is applied after the messages before it.
 * Room keys live in this process's memory only and are wiped when the connection closes.
 *
 * Faults (docs/PROTOCOL.md "Faults"): a lost connection is re-established with exponential
 * backoff and jitter (option `reconnect`); the keys go with the old connection, keybot's pin
 * stays (a keybot that offers another key on the new connection is reported and refused), and
 * the rooms come back when keybot puts us in them again with a new epoch. Room text that cannot
 * be encrypted right now but soon can (a membership change awaiting its new key, a reconnect)
 * is held for a short while and sent under the next key, or reported as not sent (outbox.ts).
 */
import { EventEmitter } from 'node:events';
import IRC, { type Client as IrcClient, type WhoisResult } from 'irc-framework';
import { readPublicKey, type PrivateKeyHandle } from '../crypto/index.js';
import { KEYBOT_NICK, casefold } from '../ircd/names.js';
import {
  RoomCryptoEngine,
  type BotNoticeResult,
  type EnvelopeRejectedResult,
  type IncomingResult,
  type KeyResult,
  type MessageResult,
  type PlaintextInRoomResult,
  type RoomCryptoEngineOptions,
  type RoomInfo,
  type TextCommand,
  type UndecryptableResult,
} from './engine.js';
import { SealClientError } from './errors.js';
import { loadPrivateKey } from './identity.js';
import { settleKeybotKey } from './keybot-trust.js';
import { ArmorCollector } from './keybot-key.js';
import { RoomMembership } from './membership.js';
import { Outbox, type OutboxOptions, type Unsent } from './outbox.js';
import type { TrustSource } from './pinning.js';

/** How SealClient re-establishes a lost connection. */
export interface ReconnectOptions {
  /** First delay (default 1000 ms); doubles with each failed attempt... */
  initialMs?: number;
  /** ...up to this (default 30 000 ms). */
  maxMs?: number;
  /** Up to this fraction of each delay is taken off at random, so clients spread out (default 0.5). */
  jitter?: number;
  /** Give up (and emit 'close') after this many failed attempts in a row (default: never). */
  maxAttempts?: number;
}

/** The delay before reconnect attempt `attempt` (0-based): capped exponential backoff with jitter. */
export function backoffDelay(attempt: number, o: ReconnectOptions = {}, random: () => number = Math.random): number {
  const initial = Math.max(0, o.initialMs ?? 1000);
  const max = Math.max(initial, o.maxMs ?? 30_000);
  const jitter = Math.min(1, Math.max(0, o.jitter ?? 0.5));
  const base = Math.min(max, initial * 2 ** Math.min(attempt, 30));
  return Math.round(base * (1 - jitter * random()));
}

/** Options of {@link SealClient.connect}. */
export interface SealConnectOptions {
  host: string;
  port: number;
  tls?: boolean;
  /** Default true; set false only for a self-signed test server. */
  rejectUnauthorized?: boolean;
  /** The account name; sealchat nicks are account names. */
  nick: string;
  /** Account password, sent as PASS (give this or `sasl`). */
  password?: string;
  /** SASL PLAIN instead of PASS. */
  sasl?: { account?: string; password: string };
  /** The user's key: an unlocked handle, or armored text / a file plus passphrase. */
  privateKey?: PrivateKeyHandle;
  privateKeyArmored?: string;
  privateKeyFile?: string;
  passphrase?: string;
  /** Pin keybot to this fingerprint (recommended: compare it with the operator out of band). */
  keybotFingerprint?: string;
  /** keybot's armored public key; otherwise it is taken from the known-keybots file or asked of keybot. */
  keybotPublicKey?: string;
  /** The trust-on-first-use file (default ~/.sealchat/known_keybots.json); false: remember nothing. */
  knownKeybotsFile?: string | false;
  /** How long to wait for registration and for keybot's key (default 10 s each). */
  timeoutMs?: number;
  /** Engine tuning (grace period, hold time, clock). */
  engine?: Omit<RoomCryptoEngineOptions, 'account' | 'privateKey' | 'keybotKey'>;
  /**
   * Reconnect when the connection is lost after login (default on: 1 s doubling to 30 s, half
   * of it jitter). false: a lost connection ends the client ('close'), as before.
   */
  reconnect?: boolean | ReconnectOptions;
  /**
   * Hold room text that cannot be encrypted now but will be soon (the room's key is being
   * replaced, or the connection is being re-established), and send it under the next key
   * (default on, at most 30 s). false: refuse such text at once with 'no-key'.
   */
  outbox?: boolean | Omit<OutboxOptions, 'clock'>;
}

/** What {@link SealClient.send} did. */
export interface SendResult {
  /** The epoch whose key encrypted the text. */
  epoch: number;
  /** How many PRIVMSG lines went out. */
  lines: number;
  /** Present when the text had to wait for a key: how long it was held. */
  held?: { id: number; ms: number };
}

/** How keybot's key stands after connecting. */
export type KeybotTrust =
  | { status: 'pinned'; fingerprint: string; source: TrustSource | 'option-key' }
  /** No key yet (keybot offline and none known): envelopes wait; retried when keybot comes online. */
  | { status: 'unavailable'; reason: string }
  /** keybot offered a key other than the pinned one: refused, envelopes are rejected. */
  | { status: 'mismatch'; expected: string; got: string; source: 'configured' | 'known' };

export interface ConnectResult {
  nick: string;
  keybot: KeybotTrust;
}

/** A decrypted, verified room message. */
export interface RoomMessageEvent {
  room: string;
  from: string;
  text: string;
  epoch: number;
  command: TextCommand;
  /** True for `/me` (text then holds the action without the CTCP framing). */
  action: boolean;
}

/** Events of {@link SealClient}, with their arguments. */
export interface SealClientEvents {
  registered: [{ nick: string }];
  /** keybot's key was pinned (source 'first-use' means: trusted on first use, check it). */
  'keybot-pinned': [{ fingerprint: string; source: TrustSource | 'option-key'; server: string }];
  /** LOUD: keybot's key differs from the pinned one. It was refused; no envelope will be accepted. */
  'keybot-key-changed': [{ server: string; expected: string; got: string; source: 'configured' | 'known' }];
  /** keybot's key could not be obtained (yet). */
  'keybot-unavailable': [{ reason: string }];
  /** A new room key was accepted. */
  key: [Omit<KeyResult, 'released' | 'kind'>];
  message: [RoomMessageEvent];
  undecryptable: [Omit<UndecryptableResult, 'kind'>];
  /** Someone wrote plaintext into an encrypted room: it is not confidential and not verified. */
  'plaintext-warning': [Omit<PlaintextInRoomResult, 'kind'>];
  'envelope-rejected': [Omit<EnvelopeRejectedResult, 'kind'>];
  /**
   * LOUD: an envelope listed `account` with another key than the one pinned for it (someone may
   * have replaced their registered key). It was refused and nothing is sent to `room` until the
   * user checks `offered` with `account` and calls `crypto.acceptMemberKey(account, offered)`
   * (then asks keybot for the key again), or restarts the companion. Also emitted as 'envelope-rejected'.
   */
  'member-key-changed': [{ room: string; account: string; pinned: string; offered: string; epoch?: number; reason: string }];
  /** keybot's human-readable replies and room announcements. */
  'bot-notice': [Omit<BotNoticeResult, 'kind'>];
  /** A NOTICE that is none of sealchat's business (server notices have `from` ''). */
  notice: [{ from: string; target: string; text: string }];
  /** A PRIVMSG that is none of sealchat's business (a private message, an ordinary channel). */
  privmsg: [{ from: string; target: string; text: string }];
  join: [{ room: string; nick: string; self: boolean }];
  part: [{ room: string; nick: string; self: boolean; reason: string; kickedBy?: string }];
  quit: [{ nick: string; reason: string }];
  error: [Error];
  /** The connection was lost; `reconnecting` tells whether a new one is being attempted. Keys are wiped. */
  disconnected: [{ reason: string; reconnecting: boolean }];
  /** A reconnect attempt is scheduled in `delayMs`. */
  reconnecting: [{ attempt: number; delayMs: number }];
  /** Logged in again after a lost connection (rooms come back as keybot re-keys them). */
  reconnected: [{ nick: string; attempts: number }];
  /** Room text could not be encrypted now and waits for the room's next key (tell the user). */
  'message-held': [{ id: number; room: string; reason: string }];
  /** Held room text was encrypted under the new key and sent. */
  'message-released': [{ id: number; room: string; epoch: number; lines: number; heldMs: number }];
  /** Held room text was given up: it was NOT sent (tell the user). */
  'message-unsent': [{ id: number; room: string; reason: string; heldMs: number }];
  /** The client is finished: quit, or the connection was lost for good. */
  close: [];
}

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
/** keybot's reply to one command is one burst of NOTICEs: it is over after this much silence. */
const REPLY_QUIET_MS = 300;

export class SealClient extends EventEmitter {
  private irc: IrcClient | undefined;
  private engine: RoomCryptoEngine | undefined;
  private options: SealConnectOptions | undefined;
  private queue: Promise<void> = Promise.resolve();
  private sweepTimer: NodeJS.Timeout | undefined;
  /** The rooms we are in, and what JOIN/PART/KICK/QUIT mean for their keys (membership.ts). */
  private membershipState: RoomMembership | undefined;
  /** Encrypted rooms we were in when the connection was lost: text for them may wait for a key. */
  private readonly restoring = new Map<string, string>();
  private registered = false;
  private phase: Phase = 'idle';
  private quitting = false;
  private reconnectOptions: ReconnectOptions | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private attempts = 0;
  private reconnectedAt = 0;
  private outbox: Outbox | undefined;
  private holding = true;
  private readonly waiting = new Map<number, { resolve: (r: SendResult) => void; reject: (err: Error) => void }>();
  /** After a reconnect: check that keybot still offers the pinned key. */
  private keybotCheckDue = false;
  private keybotChecking = false;
  private trust: KeybotTrust = { status: 'unavailable', reason: 'not connected' };
  private keyFetch: { collector: ArmorCollector; done: (armored: string | Error) => void } | undefined;
  private fetching: Promise<KeybotTrust> | undefined;
  private commandTail: Promise<unknown> = Promise.resolve();
  private pending: PendingCommand | undefined;

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

  /**
   * Unlock the key, connect, register, and pin keybot's key. Resolves once registered and the
   * keybot key is settled one way or the other (see `keybot` in the result); rejects with a
   * SealClientError if the key cannot be used or the server refuses the login.
   */
  async connect(options: SealConnectOptions): Promise<ConnectResult> {
    if (this.phase !== 'idle') throw new Error('SealClient.connect: already connected (use a new SealClient)');
    this.phase = 'connecting';
    this.options = options;
    this.reconnectOptions = options.reconnect === false ? undefined : options.reconnect === true || options.reconnect === undefined ? {} : options.reconnect;
    const privateKey = options.privateKey ?? (await loadPrivateKey(options));
    this.engine = new RoomCryptoEngine({ ...options.engine, account: options.nick, privateKey });
    this.holding = options.outbox !== false;
    this.outbox = new Outbox(this.engine, typeof options.outbox === 'object' ? options.outbox : {});
    this.membershipState = new RoomMembership(this.engine, this.outbox);
    const irc = new IRC.Client();
    this.irc = irc;
    this.wire(irc);
    await this.register(irc, options);
    this.phase = 'online';
    this.sweepTimer = setInterval(() => this.enqueue(() => this.sweep()), 1000);
    this.sweepTimer.unref();
    // Learn when keybot comes (back) online, to fetch its key if we still lack it.
    irc.raw('MONITOR', '+', KEYBOT_NICK);
    const keybot = await this.settleKeybot();
    return { nick: options.nick, keybot };
  }

  /**
   * Encrypt and send text to a room. Resolves with the epoch used; rejects (sending nothing) with
   * SealClientError 'no-key' when we hold no key for an encrypted room, 'not-encrypted' when the
   * target is not a sealchat room. Never sends plaintext.
   *
   * In a room we are in (or were in when the connection dropped) whose key cannot be used right
   * now — it is being replaced after a membership change, or went with a lost connection — the
   * text is held instead ('message-held' says so at once) and the promise settles when it is
   * sent under the next key (`held` in the result) or given up after the outbox's hold time
   * ('no-key', and 'message-unsent'). `{ hold: false }`, or the option `outbox: false`, refuses
   * at once instead.
   */
  async send(room: string, text: string, opts: { hold?: boolean } = {}): Promise<SendResult> {
    const engine = this.engine;
    const outbox = this.outbox;
    const online = this.phase === 'online' && this.registered && this.irc !== undefined;
    if (!engine || !outbox || (!online && this.phase !== 'reconnecting')) {
      throw new SealClientError('not-connected', 'not connected to the sealchat server');
    }
    const folded = casefold(room);
    const inRoom = this.membershipState?.has(room) ?? false;
    const mayHold = this.holding && opts.hold !== false && (inRoom || this.restoring.has(folded));
    if (!online && !mayHold) throw new SealClientError('not-connected', 'not connected to the sealchat server (reconnecting); nothing was sent');
    const why = !online || !inRoom ? `the connection to the server was lost and ${room}'s key with it` : `no key for ${room} yet`;
    const r = outbox.submit({ room, text, mayHold, why });
    if (r.status === 'refused') throw new SealClientError(r.code, r.reason);
    if (r.status === 'send') {
      // Only an online connection holds keys, so 'send' implies one.
      for (const line of r.lines) this.irc!.raw('PRIVMSG', room, line);
      return { epoch: r.epoch, lines: r.lines.length };
    }
    const settled = new Promise<SendResult>((resolve, reject) => this.waiting.set(r.id, { resolve, reject }));
    this.emit('message-held', { id: r.id, room: r.room, reason: r.reason });
    this.flushOutbox();
    return settled;
  }

  /** Send a `/me` action to a room, encrypted like any text. */
  action(room: string, text: string, opts: { hold?: boolean } = {}): Promise<SendResult> {
    return this.send(room, `\x01ACTION ${text}\x01`, opts);
  }

  /** Room texts waiting for a key (see {@link send}). */
  heldMessages(room?: string): number {
    return this.outbox?.size(room) ?? 0;
  }

  /** True while the connection is lost and a new one is being attempted. */
  get reconnecting(): boolean {
    return this.phase === 'reconnecting';
  }

  /** `invite <user>...`: ask keybot for a new room with these users. Resolves with keybot's reply. */
  invite(users: string[]): Promise<string[]> {
    return this.command(`invite ${names(users)}`);
  }

  /** `invite <#room> <user>...`: add users to a room we are in. */
  inviteTo(room: string, users: string[]): Promise<string[]> {
    return this.command(`invite ${room} ${names(users)}`);
  }

  /** Who is online (keybot's answer). */
  online(): Promise<string[]> {
    return this.command('online');
  }

  /** Whether `user` exists, is online and has a usable key (keybot's answer). */
  status(user: string): Promise<string[]> {
    return this.command(`status ${names([user])}`);
  }

  /** The rooms keybot has us in (keybot's answer). See {@link localRooms} for the keys we hold. */
  rooms(): Promise<string[]> {
    return this.command('rooms');
  }

  /** Leave a room (keybot removes us and rekeys the others); our keys for it are wiped. */
  leave(room: string): Promise<string[]> {
    return this.command(`leave ${room}`);
  }

  /** Ask keybot to re-send the current key of a room we are in. */
  requestKey(room: string): Promise<string[]> {
    return this.command(`key ${room}`);
  }

  /**
   * Send any keybot command; resolves with the NOTICE lines keybot sends back to us (they are
   * also emitted as 'bot-notice'), or [] if it says nothing within the timeout.
   */
  command(text: string, timeoutMs = 5000): Promise<string[]> {
    const { irc } = this.connected();
    const run = this.commandTail.then(
      () =>
        new Promise<string[]>((resolve, reject) => {
          const finish = (): void => {
            const p = this.pending!;
            clearTimeout(p.quiet);
            clearTimeout(p.deadline);
            this.pending = undefined;
            resolve(p.lines);
          };
          this.pending = { lines: [], resolve, reject, deadline: setTimeout(finish, timeoutMs) };
          this.pending.deadline.unref();
          irc.say(KEYBOT_NICK, text);
        }),
    );
    this.commandTail = run.catch(() => undefined);
    return run;
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

  /** Rooms we hold or held a key for, with epoch and members (local state, no network). */
  localRooms(): RoomInfo[] {
    return this.engine?.listRooms() ?? [];
  }

  /** Channels the server has us in. */
  joinedRooms(): string[] {
    return this.membershipState?.rooms() ?? [];
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

  private connected(): { irc: IrcClient; engine: RoomCryptoEngine } {
    if (!this.irc || !this.engine || !this.registered || this.phase !== 'online') {
      throw new SealClientError('not-connected', 'not connected to the sealchat server');
    }
    return { irc: this.irc, engine: this.engine };
  }

  private timeoutMs(): number {
    return this.options?.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  private server(): string {
    return `${this.options!.host}:${this.options!.port}`;
  }

  /** Run `fn` after everything received before it (errors are reported, the queue goes on). */
  private enqueue(fn: () => Promise<void> | void): void {
    this.queue = this.queue.then(fn).catch((err: Error) => {
      this.emit('error', err);
    });
  }

  private register(irc: IrcClient, o: SealConnectOptions): Promise<void> {
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

  private wire(irc: IrcClient): void {
    const text = (command: TextCommand, e: { nick?: string; target: string; message: string }, wrap = (m: string) => m): void => {
      const from = e.nick ?? '';
      const line = wrap(e.message);
      this.enqueue(() => this.incoming(command, from, e.target, line));
    };
    irc.on('privmsg', (e: { nick: string; target: string; message: string }) => text('PRIVMSG', e));
    irc.on('notice', (e: { nick?: string; target: string; message: string }) => text('NOTICE', e));
    irc.on('action', (e: { nick: string; target: string; message: string }) => text('PRIVMSG', e, (m) => `\x01ACTION ${m}\x01`));
    irc.on('join', (e: { nick: string; channel: string }) => this.enqueue(() => this.membership('join', e.channel, e.nick)));
    irc.on('part', (e: { nick: string; channel: string; message: string }) =>
      this.enqueue(() => this.membership('part', e.channel, e.nick, e.message)),
    );
    irc.on('kick', (e: { nick: string; kicked: string; channel: string; message: string }) =>
      // keybot removes members server-side: then the KICK comes from the server (no nick).
      this.enqueue(() => this.membership('part', e.channel, e.kicked, e.message, e.nick || undefined)),
    );
    irc.on('quit', (e: { nick: string; message: string }) =>
      this.enqueue(() => {
        // A member of a keyed room quit: that key may no longer be sent under.
        this.membershipState?.apply({ kind: 'quit', nick: e.nick });
        this.emit('quit', { nick: e.nick, reason: e.message });
      }),
    );
    irc.on('users online', (e: { nicks: string[] }) => {
      if (irc !== this.irc || !e.nicks.some((n) => casefold(n) === KEYBOT_NICK)) return;
      if (this.trust.status === 'unavailable') void this.settleKeybot();
      else if (this.keybotCheckDue) void this.recheckKeybot();
    });
    irc.on('irc error', (e: { error?: string; nick?: string; reason?: string }) => {
      // keybot is offline: a key fetch in progress cannot succeed.
      if (e.error !== 'no_such_nick' || casefold(e.nick ?? '') !== KEYBOT_NICK) return;
      this.keyFetch?.done(new Error('keybot is not online'));
      const p = this.pending;
      if (p) {
        clearTimeout(p.quiet);
        clearTimeout(p.deadline);
        this.pending = undefined;
        p.reject(new SealClientError('keybot-offline', 'keybot is not online; try again later'));
      }
    });
    irc.on('close', () => this.onClose(irc));
  }

  private async incoming(command: TextCommand, from: string, target: string, text: string): Promise<void> {
    if (!from) {
      this.emit('notice', { from: '', target, text });
      return;
    }
    const r = await this.engine!.handleIncoming({ from, target, command, text });
    if (r.kind === 'passthrough') {
      // Not sealchat's business (a private message, a user's notice, an ordinary channel): the
      // engine's result carries no line, so report it from here, as received.
      this.emit(command === 'NOTICE' ? 'notice' : 'privmsg', { from, target, text });
      return;
    }
    this.emitResults([r]);
  }

  private emitResults(results: IncomingResult[]): void {
    let keyed = false;
    for (const r of results) {
      switch (r.kind) {
        case 'key': {
          const { kind: _k, released, ...key } = r;
          // A new epoch: its member list is the room as it is now, so it may be sent under.
          this.outbox?.trust.keyInstalled(r.room);
          keyed = true;
          this.emit('key', key);
          this.emitResults(released);
          break;
        }
        case 'message': {
          const action = /^\x01ACTION ([\s\S]*)\x01$/.exec(r.text);
          this.emit('message', {
            room: r.room,
            from: r.from,
            text: action ? action[1]! : r.text,
            epoch: r.epoch,
            command: r.command,
            action: action !== null,
          });
          break;
        }
        case 'undecryptable': {
          const { kind: _k, ...rest } = r;
          this.emit('undecryptable', rest);
          break;
        }
        case 'plaintext-in-room': {
          const { kind: _k, ...rest } = r;
          this.emit('plaintext-warning', rest);
          break;
        }
        case 'envelope-rejected': {
          const { kind: _k, ...rest } = r;
          this.emit('envelope-rejected', rest);
          if (r.code === 'member-key-changed' && r.room !== undefined && r.account !== undefined && r.pinned !== undefined && r.offered !== undefined) {
            const { room, account, pinned, offered, epoch, reason } = r;
            this.emit('member-key-changed', { room, account, pinned, offered, ...(epoch !== undefined ? { epoch } : {}), reason });
          }
          break;
        }
        case 'bot-notice':
          this.botNotice(r);
          break;
        case 'passthrough': // emitted as 'privmsg'/'notice' by incoming(), which has the line
        case 'hidden':
        case 'held':
          break;
      }
    }
    if (keyed) this.flushOutbox();
  }

  /** Send what the outbox can encrypt now (after a new key). */
  private flushOutbox(): void {
    const irc = this.irc;
    if (!this.outbox || !irc || this.phase !== 'online' || !this.registered) return;
    for (const r of this.outbox.release()) {
      for (const line of r.lines) irc.raw('PRIVMSG', r.room, line);
      this.emit('message-released', { id: r.id, room: r.room, epoch: r.epoch, lines: r.lines.length, heldMs: r.heldMs });
      const w = this.waiting.get(r.id);
      this.waiting.delete(r.id);
      w?.resolve({ epoch: r.epoch, lines: r.lines.length, held: { id: r.id, ms: r.heldMs } });
    }
  }

  /** Held text given up: tell the caller of send() and the listeners. */
  private unsent(list: Unsent[]): void {
    for (const u of list) {
      this.emit('message-unsent', { id: u.id, room: u.room, reason: u.reason, heldMs: u.heldMs });
      const w = this.waiting.get(u.id);
      this.waiting.delete(u.id);
      w?.reject(new SealClientError('no-key', u.reason));
    }
  }

  /** Housekeeping, once a second. */
  private sweep(): void {
    this.emitResults(this.engine!.sweep());
    if (this.outbox) this.unsent(this.outbox.expire());
    // After a reconnect, rooms keybot did not give back within the hold time are not waited for.
    if (this.phase === 'online' && this.restoring.size > 0 && Date.now() - this.reconnectedAt > (this.outbox?.holdMs ?? 0)) this.restoring.clear();
  }

  /** keybot's text: a line of its key while we fetch it, else a reply or announcement. */
  private botNotice(r: BotNoticeResult): void {
    const toUs = casefold(r.target) === casefold(this.options!.nick);
    if (toUs && this.keyFetch) {
      const step = this.keyFetch.collector.push(r.text);
      if (step.status === 'done') this.keyFetch.done(step.armored);
      else if (step.status === 'not-armor') this.keyFetch.done(new Error(`keybot did not send its key (${step.reason}; it said: ${r.text})`));
      if (step.status !== 'not-armor') return;
    }
    const { kind: _k, ...rest } = r;
    this.emit('bot-notice', rest);
    if (toUs && this.pending) {
      const p = this.pending;
      p.lines.push(r.text);
      clearTimeout(p.quiet);
      p.quiet = setTimeout(() => {
        clearTimeout(p.deadline);
        if (this.pending === p) this.pending = undefined;
        p.resolve(p.lines);
      }, REPLY_QUIET_MS);
    }
  }

  private membership(kind: 'join' | 'part', room: string, nick: string, reason = '', kickedBy?: string): void {
    const change = kind === 'join' ? ({ kind: 'join', room, nick } as const) : ({ kind: kickedBy !== undefined ? 'kick' : 'part', room, nick } as const);
    const { self, unsent } = this.membershipState!.apply(change);
    if (self) this.restoring.delete(casefold(room));
    this.unsent(unsent);
    if (kind === 'join') this.emit('join', { room, nick, self });
    else this.emit('part', { room, nick, self, reason, ...(kickedBy !== undefined ? { kickedBy } : {}) });
  }

  /** Find keybot's key and decide whether to pin it; at most one attempt at a time. */
  private settleKeybot(): Promise<KeybotTrust> {
    this.fetching ??= this.pinKeybot()
      .catch((err: Error): KeybotTrust => ({ status: 'unavailable', reason: err.message }))
      .then((trust) => {
        this.fetching = undefined;
        this.trust = trust;
        return trust;
      });
    return this.fetching;
  }

  private async pinKeybot(): Promise<KeybotTrust> {
    const o = this.options!;
    const engine = this.engine!;
    const server = this.server();
    const outcome = await settleKeybotKey({
      server,
      ...(o.keybotFingerprint !== undefined ? { keybotFingerprint: o.keybotFingerprint } : {}),
      ...(o.keybotPublicKey !== undefined ? { keybotPublicKey: o.keybotPublicKey } : {}),
      ...(o.knownKeybotsFile !== undefined ? { knownKeybotsFile: o.knownKeybotsFile } : {}),
      fetch: () => this.fetchKeybotKey(),
    });
    if (outcome.status === 'unavailable') {
      this.trust = { status: 'unavailable', reason: outcome.reason };
      this.emit('keybot-unavailable', { reason: outcome.reason });
      return this.trust;
    }
    if (outcome.status === 'mismatch') {
      engine.distrustKeybot(outcome.reason);
      this.trust = { status: 'mismatch', expected: outcome.expected, got: outcome.got, source: outcome.source };
      this.emit('keybot-key-changed', { server, expected: outcome.expected, got: outcome.got, source: outcome.source });
      return this.trust;
    }
    const { key, source } = outcome;
    const results = await engine.setKeybotKey(key);
    this.trust = { status: 'pinned', fingerprint: key.fingerprint, source };
    this.emit('keybot-pinned', { fingerprint: key.fingerprint, source, server });
    this.enqueue(() => this.emitResults(results));
    return this.trust;
  }

  /** Ask keybot for its armored public key (`pubkey`). */
  private fetchKeybotKey(): Promise<string> {
    const irc = this.irc!;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new Error('keybot did not answer "pubkey"')), this.timeoutMs());
      const done = (r: string | Error): void => {
        clearTimeout(timer);
        this.keyFetch = undefined;
        if (r instanceof Error) reject(r);
        else resolve(r);
      };
      this.keyFetch = { collector: new ArmorCollector(), done };
      irc.say(KEYBOT_NICK, 'pubkey');
    });
  }

  /** Re-check keybot's key on a new connection: it must be the pinned one. */
  private async recheckKeybot(): Promise<void> {
    const expected = this.engine?.keybotFingerprint;
    if (!this.keybotCheckDue || this.keybotChecking || this.phase !== 'online' || !expected) return;
    this.keybotChecking = true;
    try {
      const read = await readPublicKey({ armored: await this.fetchKeybotKey() });
      if (!read.key) return; // not a key: asked again when keybot next comes online
      this.keybotCheckDue = false;
      if (read.key.fingerprint === expected) return;
      // The pinned key stays in force (envelopes signed by the other key are refused); say it loudly.
      const source = this.options!.keybotFingerprint !== undefined ? 'configured' : 'known';
      this.trust = { status: 'mismatch', expected, got: read.key.fingerprint, source };
      this.emit('keybot-key-changed', { server: this.server(), expected, got: read.key.fingerprint, source });
    } catch {
      // keybot is not online (yet): MONITOR tells us when it is.
    } finally {
      this.keybotChecking = false;
    }
  }

  /** One connection is gone: wipe its keys, then reconnect or finish. */
  private onClose(irc: IrcClient): void {
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

  private scheduleReconnect(): void {
    const o = this.reconnectOptions!;
    if (this.attempts >= (o.maxAttempts ?? Infinity)) {
      this.enqueue(() => void this.emit('disconnected', { reason: `gave up reconnecting after ${this.attempts} attempts`, reconnecting: false }));
      this.finish('the connection was lost');
      return;
    }
    const delayMs = backoffDelay(this.attempts, o);
    this.attempts++;
    const attempt = this.attempts;
    this.enqueue(() => void this.emit('reconnecting', { attempt, delayMs }));
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => void this.reconnectNow(), delayMs);
  }

  private async reconnectNow(): Promise<void> {
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
  private finish(why: string): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    this.registered = false;
    clearInterval(this.sweepTimer);
    clearTimeout(this.reconnectTimer);
    this.restoring.clear();
    this.membershipState?.clear();
    for (const r of this.engine?.listRooms() ?? []) this.engine!.forgetRoom(r.room);
    if (this.outbox) this.unsent(this.outbox.drop(`${why}; nothing was sent`));
    this.enqueue(() => void this.emit('close'));
  }
}

/** Nick lists for keybot commands: no spaces or control characters can smuggle another command. */
function names(users: string[]): string {
  for (const u of users) {
    if (!/^[^\s\x00-\x1f\x7f]+$/.test(u)) throw new TypeError(`not a user name: ${JSON.stringify(u)}`);
  }
  return users.join(' ');
}
