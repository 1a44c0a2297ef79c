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
 */
import { EventEmitter } from 'node:events';
import IRC, { type Client as IrcClient, type WhoisResult } from 'irc-framework';
import { readPublicKey, type PrivateKeyHandle, type PublicKeyHandle } from '../crypto/index.js';
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
import { ArmorCollector } from './keybot-key.js';
import { KnownKeybots, decideKeybotTrust, normalizeFingerprint, type TrustSource } from './pinning.js';

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

const DEFAULT_TIMEOUT_MS = 10_000;
/** keybot's reply to one command is one burst of NOTICEs: it is over after this much silence. */
const REPLY_QUIET_MS = 300;

export class SealClient extends EventEmitter {
  private irc: IrcClient | undefined;
  private engine: RoomCryptoEngine | undefined;
  private options: SealConnectOptions | undefined;
  private queue: Promise<void> = Promise.resolve();
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly joined = new Map<string, string>();
  private registered = false;
  private closed = false;
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
    if (this.irc) throw new Error('SealClient.connect: already connected (use a new SealClient)');
    this.options = options;
    const privateKey = options.privateKey ?? (await loadPrivateKey(options));
    this.engine = new RoomCryptoEngine({ ...options.engine, account: options.nick, privateKey });
    const irc = new IRC.Client();
    this.irc = irc;
    this.wire(irc);
    await this.register(irc, options);
    this.sweepTimer = setInterval(() => this.enqueue(() => this.emitResults(this.engine!.sweep())), 1000);
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
   */
  async send(room: string, text: string): Promise<{ epoch: number; lines: number }> {
    const { irc, engine } = this.connected();
    const r = engine.encryptOutgoing({ room, text });
    if (r.status !== 'ok') throw new SealClientError(r.status, r.reason);
    for (const line of r.lines) irc.raw('PRIVMSG', room, line);
    return { epoch: r.epoch, lines: r.lines.length };
  }

  /** Send a `/me` action to a room, encrypted like any text. */
  action(room: string, text: string): Promise<{ epoch: number; lines: number }> {
    return this.send(room, `\x01ACTION ${text}\x01`);
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
    return [...this.joined.values()];
  }

  /** Quit and wait for the connection to close. Keys are wiped. */
  quit(message = 'bye'): Promise<void> {
    const irc = this.irc;
    if (!irc || this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, 3000);
      t.unref();
      this.once('close', () => {
        clearTimeout(t);
        resolve();
      });
      irc.quit(message);
    });
  }

  // ---- internals ---------------------------------------------------------------------------

  private connected(): { irc: IrcClient; engine: RoomCryptoEngine } {
    if (!this.irc || !this.engine || !this.registered || this.closed) {
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
      const fail = (err: SealClientError): void => {
        clearTimeout(timer);
        irc.off('registered', ok);
        if (!this.closed) irc.quit();
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
      const earlyClose = (): void => fail(new SealClientError('connection', `the connection to ${o.host}:${o.port} closed during login`));
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
    irc.on('quit', (e: { nick: string; message: string }) => this.enqueue(() => void this.emit('quit', { nick: e.nick, reason: e.message })));
    irc.on('users online', (e: { nicks: string[] }) => {
      if (e.nicks.some((n) => casefold(n) === KEYBOT_NICK) && this.trust.status === 'unavailable') void this.settleKeybot();
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
    irc.on('close', () => this.onClose());
  }

  private async incoming(command: TextCommand, from: string, target: string, text: string): Promise<void> {
    if (!from) {
      this.emit('notice', { from: '', target, text });
      return;
    }
    const r = await this.engine!.handleIncoming({ from, target, command, text });
    this.emitResults([r]);
  }

  private emitResults(results: IncomingResult[]): void {
    for (const r of results) {
      switch (r.kind) {
        case 'key': {
          const { kind: _k, released, ...key } = r;
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
          break;
        }
        case 'bot-notice':
          this.botNotice(r);
          break;
        case 'passthrough':
        case 'hidden':
        case 'held':
          break;
      }
    }
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
    const self = casefold(nick) === casefold(this.options!.nick);
    if (self && kind === 'join') this.joined.set(casefold(room), room);
    if (self && kind === 'part') {
      this.joined.delete(casefold(room));
      // We are out: wipe our keys now; keybot rekeys the others.
      this.engine!.forgetRoom(room);
    }
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
    const known = o.knownKeybotsFile === false ? undefined : new KnownKeybots(o.knownKeybotsFile);
    const remembered = await known?.get(server);

    let armored = o.keybotPublicKey;
    let fromKeybot = false;
    // The remembered key saves asking keybot (and works while it is offline), unless it is not
    // the one the user configured now.
    if (armored === undefined && remembered?.publicKey) {
      const configured = o.keybotFingerprint === undefined ? undefined : normalizeFingerprint(o.keybotFingerprint);
      if (configured === undefined || configured === remembered.fingerprint) armored = remembered.publicKey;
    }
    if (armored === undefined) {
      try {
        armored = await this.fetchKeybotKey();
        fromKeybot = true;
      } catch (err) {
        const reason = `cannot get keybot's key: ${(err as Error).message}`;
        this.trust = { status: 'unavailable', reason };
        this.emit('keybot-unavailable', { reason });
        return this.trust;
      }
    }
    const read = await readPublicKey({ armored });
    if (!read.key) {
      const reason = `keybot's key is unusable: ${read.reason ?? read.status}`;
      this.trust = { status: 'unavailable', reason };
      this.emit('keybot-unavailable', { reason });
      return this.trust;
    }
    const key: PublicKeyHandle = read.key;

    // A key given in the options is the user's own decision, checked only against a given fingerprint.
    const decision =
      o.keybotPublicKey !== undefined && o.keybotFingerprint === undefined
        ? ({ status: 'trusted', fingerprint: key.fingerprint, source: 'option-key' } as const)
        : decideKeybotTrust({
            offered: key.fingerprint,
            ...(o.keybotFingerprint !== undefined ? { configured: o.keybotFingerprint } : {}),
            ...(remembered ? { known: remembered } : {}),
          });
    if (decision.status === 'mismatch') {
      const reason =
        `keybot's key changed! ${server} offered ${decision.got}, but ${decision.source === 'configured' ? 'you configured' : 'you pinned'} ` +
        `${decision.expected}. It is refused: no room key will be accepted until you verify the new key with the operator.`;
      engine.distrustKeybot(reason);
      this.trust = { status: 'mismatch', expected: decision.expected, got: decision.got, source: decision.source };
      this.emit('keybot-key-changed', { server, expected: decision.expected, got: decision.got, source: decision.source });
      return this.trust;
    }
    if (known && decision.source !== 'option-key' && (!remembered || (fromKeybot && !remembered.publicKey))) {
      await known.set(server, { fingerprint: key.fingerprint, publicKey: key.armored, firstSeen: new Date().toISOString() });
    }
    const results = await engine.setKeybotKey(key);
    this.trust = { status: 'pinned', fingerprint: key.fingerprint, source: decision.source };
    this.emit('keybot-pinned', { fingerprint: key.fingerprint, source: decision.source, server });
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

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweepTimer);
    this.keyFetch?.done(new Error('the connection closed'));
    if (this.pending) {
      clearTimeout(this.pending.quiet);
      clearTimeout(this.pending.deadline);
      this.pending.resolve(this.pending.lines);
      this.pending = undefined;
    }
    // Keys live in memory only: wipe them with the connection.
    for (const r of this.engine?.listRooms() ?? []) this.engine!.forgetRoom(r.room);
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
