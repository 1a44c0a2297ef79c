/**
 * SealClient: one user's connection to a sealchat server, with rooms decrypted and verified.
 *
 * irc-framework carries the IRC; a CompanionSession (core/session.ts) holds the rules: what every
 * PRIVMSG/NOTICE means, keybot's key, membership, held text. This class is the adapter: it hands
 * the session what irc-framework reports, carries out what the session answers, and reports it
 * as events. It also talks to keybot (seal-client/commands.ts) and logs in (seal-client/login.ts).
 *
 * Everything the server sends goes through the session's one queue, so a key envelope is applied
 * before the message after it, and a PART after the messages before it. Room keys live in this
 * process's memory only and are wiped when the connection closes.
 *
 * Faults (docs/PROTOCOL.md "Faults"): a lost connection is re-established with exponential
 * backoff and jitter (option `reconnect`); the keys go with the old connection, keybot's pin
 * stays (a keybot that offers another key on the new connection is reported and refused), and
 * the rooms come back when keybot puts us in them again with a new epoch. Room text that cannot
 * be encrypted right now but soon can is held for a short while and sent under the next key, or
 * reported as not sent (core/outbox.ts).
 */
import { EventEmitter } from 'node:events';
import IRC, { type Client as IrcClient, type WhoisResult } from 'irc-framework';
import type { PrivateKeyHandle } from '../crypto/index.js';
import { backoffDelay } from '../protocol/backoff.js';
import { formatAction, parseAction } from '../protocol/ctcp.js';
import { KEYBOT_NICK, casefold } from '../protocol/names.js';
import {
  CompanionSession,
  MemoryBook,
  carryOut,
  memoryFileFor,
  type BotNoticeResult,
  type CompanionAction,
  type CompanionSessionOptions,
  type EnvelopeRejectedResult,
  type IncomingResult,
  type KeyResult,
  type KeybotOptions,
  type LineTags,
  type KeybotState,
  type MembershipChange,
  type PlaintextInRoomResult,
  type RoomCryptoEngine,
  type RoomInfo,
  type TextCommand,
  type TrustSource,
  type UndecryptableResult,
} from './core/index.js';
import { SealClientError } from './errors.js';
import { KnownServers, knownServersFileFor, type ServerTrustDecision } from './server-trust.js';
import { loadPrivateKey } from './identity.js';
import { KeybotCommands, names } from './seal-client/commands.js';
import { login, type LoginOptions } from './seal-client/login.js';

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

/** Options of {@link SealClient.connect}: where and as whom, keybot's key (core/keybot.ts), tuning. */
export interface SealConnectOptions extends LoginOptions, Omit<KeybotOptions, 'keyFetchTimeoutMs'> {
  /** The user's key: an unlocked handle, or armored text / a file plus passphrase. */
  privateKey?: PrivateKeyHandle;
  privateKeyArmored?: string;
  privateKeyFile?: string;
  passphrase?: string;
  /** How long to wait for registration and for keybot's key (default 10 s each). */
  timeoutMs?: number;
  /** Engine tuning (grace period, hold time, clock). */
  engine?: CompanionSessionOptions['engine'];
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
  outbox?: boolean | CompanionSessionOptions['outbox'];
  /**
   * On a network without services where keybot keeps the accounts (ngIRCd): the user's keybot
   * password; `login` is sent to keybot at connect and after every reconnect (never logged).
   */
  keybotPassword?: string;
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

/** How keybot's key stands (core/keybot.ts's one union). */
export type KeybotTrust = KeybotState;

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
  /** Messages of this sender that never arrived before this one (the server dropped them). */
  missingBefore?: number;
  /** It was said while we were away: the history catch-up after our JOIN (docs/PROTOCOL.md "Rooms that outlive a connection"). */
  history?: true;
  /** When the server received it (ms since the Unix epoch; server-time), if it said. */
  time?: number;
  /** Its IRCv3 msgid, if the server gave one. */
  msgid?: string;
}

/** What irc-framework says of a PRIVMSG, NOTICE or ACTION. */
interface IrcTextEvent {
  nick?: string;
  target: string;
  message: string;
  tags?: Record<string, string>;
  batch?: { id: string };
}

/** The tags the core reads (msgid, server-time, batch), from an irc-framework event. */
function lineTags(e: IrcTextEvent): LineTags | undefined {
  const t = e.tags ?? {};
  const batch = e.batch?.id ?? t.batch;
  const out: LineTags = {
    ...(typeof t.msgid === 'string' ? { msgid: t.msgid } : {}),
    ...(typeof t.time === 'string' ? { time: t.time } : {}),
    ...(typeof batch === 'string' ? { batch } : {}),
  };
  return Object.keys(out).length > 0 ? out : undefined;
}

/** Events of {@link SealClient}, with their arguments. */
export interface SealClientEvents {
  registered: [{ nick: string }];
  /** How the server's TLS certificate was judged; 'first-use' means pinned now: tell the user to check it. */
  'server-certificate': [{ server: string; decision: ServerTrustDecision }];
  /** keybot's key was pinned (source 'first-use' means: trusted on first use, check it). */
  'keybot-pinned': [{ fingerprint: string; source: TrustSource | 'option-key'; server: string }];
  /** LOUD: keybot's key differs from the pinned one. It was refused; no envelope will be accepted. */
  'keybot-key-changed': [{ server: string; expected: string; got: string; source: 'configured' | 'known' }];
  /** keybot's key could not be obtained (yet). */
  'keybot-unavailable': [{ reason: string }];
  /**
   * Something the user should know that changes nothing: keybot asked us to sign an invite the
   * user did not type (refused: someone else may be using the account's password), or the
   * known-keybots file could not be written.
   */
  warning: [{ text: string; about?: 'register' }];
  /** A new room key was accepted. */
  key: [Omit<KeyResult, 'released' | 'kind'>];
  message: [RoomMessageEvent];
  /**
   * A history catch-up of `room` is shown: its messages came just before as `message` events
   * with `history: true`, in order; `summary` is the one line for the user
   * (`12 messages while you were away`; what could not be read is counted there, once).
   */
  history: [{ room: string; count: number; unreadable: number; summary: string }];
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
type Phase = 'idle' | 'connecting' | 'online' | 'reconnecting' | 'closed';

const DEFAULT_TIMEOUT_MS = 10_000;

/** One user's connection to a sealchat server; see the file comment. */
export class SealClient extends EventEmitter {
  // `irc` keeps its name: bench/lib/members-proc.ts reads it to watch raw lines.
  private irc: IrcClient | undefined;
  private core: CompanionSession | undefined;
  private book: MemoryBook | undefined;
  private options: SealConnectOptions | undefined;
  /** The user's unlocked key (register() proves possession of it). */
  private key: PrivateKeyHandle | undefined;
  private phase: Phase = 'idle';
  private registered = false;
  private quitting = false;
  private holding = true;
  private reconnectOptions: ReconnectOptions | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private attempts = 0;
  private sweepTimer: NodeJS.Timeout | undefined;
  /** Callers of send() whose text is held, by outbox id. */
  private readonly waiting = new Map<number, { resolve: (r: SendResult) => void; reject: (err: Error) => void }>();
  private readonly commands = new KeybotCommands((text) => {
    const irc = this.connected();
    // An invite is noted first, so keybot's proposal for it is signed (docs/PROTOCOL.md "Room operations").
    this.core?.typedToKeybot(text);
    irc.say(KEYBOT_NICK, text);
  });

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
    return this.core?.keybot ?? { status: 'unavailable', reason: 'not connected' };
  }

  /** The crypto session (for layers that want to look at room state). */
  get crypto(): RoomCryptoEngine | undefined {
    return this.core?.engine;
  }

  /** True while the connection is lost and a new one is being attempted. */
  get reconnecting(): boolean {
    return this.phase === 'reconnecting';
  }

  /**
   * Unlock the key, connect, register, and pin keybot's key. Resolves once registered and the
   * keybot key is settled one way or the other (see `keybot` in the result); rejects with a
   * SealClientError if the key cannot be used or the server refuses the login.
   */
  async connect(options: SealConnectOptions): Promise<ConnectResult> {
    if (this.phase !== 'idle') throw new Error('SealClient.connect: already connected (use a new SealClient)');
    this.phase = 'connecting';
    // A self-signed server's certificate is pinned on first use next to the known keybots
    // (server-trust.ts); the user hears of every first use and every refusal.
    const serversFile = knownServersFileFor(options.knownKeybotsFile);
    this.options = {
      ...options,
      ...(options.tls && serversFile ? { knownServers: options.knownServers ?? new KnownServers(serversFile) } : {}),
      onServerCertificate: (decision, server) => {
        options.onServerCertificate?.(decision, server);
        this.emit('server-certificate', { server, decision });
      },
    };
    this.reconnectOptions = options.reconnect === false ? undefined : options.reconnect === true || options.reconnect === undefined ? {} : options.reconnect;
    const privateKey = options.privateKey ?? (await loadPrivateKey(options));
    this.key = privateKey;
    const server = `${options.host}:${options.port}`;
    // Pins and epochs from earlier runs (core/memory.ts); the session lives across reconnects.
    this.book = new MemoryBook(memoryFileFor(options.knownKeybotsFile));
    let memory;
    try {
      memory = await this.book.memory(options.nick, server);
    } catch (err) {
      this.phase = 'closed';
      throw new SealClientError('key', `cannot read the sealchat memory file: ${(err as Error).message}`);
    }
    const { engine, outbox, keybotFingerprint, keybotPublicKey, knownKeybotsFile, keyRetryMs } = options;
    const core = new CompanionSession({
      account: options.nick,
      server,
      privateKey,
      memory,
      keyFetchTimeoutMs: this.timeoutMs(),
      ...(keybotFingerprint !== undefined ? { keybotFingerprint } : {}),
      ...(keybotPublicKey !== undefined ? { keybotPublicKey } : {}),
      ...(knownKeybotsFile !== undefined ? { knownKeybotsFile } : {}),
      ...(keyRetryMs !== undefined ? { keyRetryMs } : {}),
      ...(options.keybotPassword !== undefined ? { keybotPassword: options.keybotPassword } : {}),
      ...(engine ? { engine } : {}),
      ...(typeof outbox === 'object' ? { outbox } : {}),
    });
    this.core = core;
    this.holding = outbox !== false;
    const irc = new IRC.Client();
    this.irc = irc;
    this.wire(irc);
    await this.login(irc);
    this.phase = 'online';
    this.sweepTimer = setInterval(() => this.enqueue(() => this.act(core.sweep())), 1000);
    this.sweepTimer.unref();
    // Learn when keybot comes (back) online, to fetch its key if we still lack it.
    irc.raw('MONITOR', '+', KEYBOT_NICK);
    // Where keybot keeps the accounts, the core logs in to keybot first: wait for keybot's
    // answer, so that commands after connect() are a logged-in user's, and a refused password
    // ends here, in words, like a refused server login.
    const keybotLogin = options.keybotPassword !== undefined ? this.keybotLoginAnswer(this.timeoutMs() * 2) : undefined;
    await core.serial(async () => this.act(await core.start()));
    const answer = await keybotLogin;
    if (answer !== undefined && /^login refused/.test(answer)) {
      await this.quit('keybot refused the login');
      throw new SealClientError('auth', `keybot refused the login: ${answer.replace(/^login refused: /, '')}`);
    }
    if (keybotLogin !== undefined && answer === undefined) this.emit('warning', { text: 'keybot did not answer the login (is it running on this network, with --accounts keybot?)' });
    return { nick: options.nick, keybot: await core.keybotSettled() };
  }

  /** keybot's answer to our `login` (`login: …` or `login refused: …`), or undefined after `ms`. */
  private keybotLoginAnswer(ms: number): Promise<string | undefined> {
    return new Promise((resolve) => {
      const done = (text: string | undefined): void => {
        clearTimeout(t);
        this.off('bot-notice', heard);
        resolve(text);
      };
      const heard = (n: { text: string }): void => {
        if (/^login( refused)?:/.test(n.text)) done(n.text);
      };
      const t = setTimeout(() => done(undefined), ms);
      t.unref();
      this.on('bot-notice', heard);
    });
  }

  /** WHOIS: `{ nick, error: 'not_found' }` when the user is offline or unknown. */
  whois(nick: string): Promise<WhoisResult> {
    const irc = this.connected();
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

  // ---- keybot's commands -------------------------------------------------------------------

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

  /**
   * Register our key with keybot on an ordinary IRC network (docs/NETWORKS.md "Registering a
   * key"): keybot's nonce, signed with our key (and with `oldKey`, the key registered so far, to
   * change keys without the cool-down). Resolves with keybot's answer; rejects with
   * SealClientError 'keybot-refused' when keybot offers no nonce or names another network or account.
   */
  async register(opts: { oldKey?: PrivateKeyHandle } = {}): Promise<string[]> {
    const core = this.core;
    this.connected();
    // The core answers keybot's nonce (core/key-registration.ts); the reply is keybot's verdict.
    core!.endorseNextRegistration(opts.oldKey);
    let refusal: string | undefined;
    const refused = (w: { text: string; about?: 'register' }): void => {
      if (w.about !== 'register') return;
      refusal = w.text;
      this.commands.fail(new SealClientError('keybot-refused', w.text));
    };
    this.on('warning', refused);
    try {
      const reply = await this.command('register', 15_000);
      if (refusal === undefined && reply.length === 0) throw new SealClientError('keybot-refused', 'keybot did not offer a nonce: no answer');
      return reply;
    } finally {
      this.off('warning', refused);
    }
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
    this.connected();
    return this.commands.run(text, timeoutMs);
  }

  // ---- room text ---------------------------------------------------------------------------

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
    const core = this.core;
    const online = this.phase === 'online' && this.registered && this.irc !== undefined;
    if (!core || (!online && this.phase !== 'reconnecting')) throw new SealClientError('not-connected', 'not connected to the sealchat server');
    const r = core.send({ target: room, text, hold: this.holding && opts.hold !== false });
    if (r.status === 'refused') {
      if (!online) throw new SealClientError('not-connected', 'not connected to the sealchat server (reconnecting); nothing was sent');
      throw new SealClientError(r.code, r.reason);
    }
    if (r.status === 'send') {
      // Only an online connection holds keys, so 'send' implies one.
      for (const line of r.lines) this.irc!.raw('PRIVMSG', room, line);
      return { epoch: r.epoch, lines: r.lines.length };
    }
    const settled = new Promise<SendResult>((resolve, reject) => this.waiting.set(r.id, { resolve, reject }));
    this.emit('message-held', { id: r.id, room: r.room, reason: r.reason });
    return settled;
  }

  /** Send a `/me` action to a room, encrypted like any text. */
  action(room: string, text: string, opts: { hold?: boolean } = {}): Promise<SendResult> {
    return this.send(room, formatAction(text), opts);
  }

  /** Room texts waiting for a key (see {@link send}). */
  heldMessages(room?: string): number {
    return this.core?.outbox.size(room) ?? 0;
  }

  /** Rooms we hold or held a key for, with epoch and members (local state, no network). */
  localRooms(): RoomInfo[] {
    return this.core?.listRooms() ?? [];
  }

  /** Channels the server has us in. */
  joinedRooms(): string[] {
    return this.core?.joinedRooms() ?? [];
  }

  // ---- the connection ----------------------------------------------------------------------

  private connected(): IrcClient {
    if (!this.irc || !this.core || !this.registered || this.phase !== 'online') {
      throw new SealClientError('not-connected', 'not connected to the sealchat server');
    }
    return this.irc;
  }

  private timeoutMs(): number {
    return this.options?.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  private server(): string {
    return `${this.options!.host}:${this.options!.port}`;
  }

  private login(irc: IrcClient): Promise<void> {
    const o = this.options!;
    return login(irc, o, this.timeoutMs(), () => {
      this.registered = true;
      this.emit('registered', { nick: o.nick });
    });
  }

  /** Run `fn` in the session's queue, after everything received before it (errors are reported, the queue goes on). */
  private enqueue(fn: () => Promise<void> | void): void {
    this.core!.serial(fn).catch((err: Error) => {
      this.emit('error', err);
    });
  }

  /** Listen to one IRC connection. */
  private wire(irc: IrcClient): void {
    const core = this.core!;
    // The history catch-up (core/history.ts) needs draft/chathistory; irc-framework asks for
    // batch, server-time and message-tags itself.
    irc.requestCap('draft/chathistory');
    const text = (command: TextCommand, e: IrcTextEvent, wrap = (m: string) => m): void => {
      const from = e.nick ?? '';
      const line = wrap(e.message);
      const tags = lineTags(e);
      this.enqueue(() => this.incoming(command, from, e.target, line, tags));
    };
    // irc-framework hands a batch over whole at its end: 'batch start', its lines, 'batch end'.
    irc.on('batch start', (b: { id: string; type: string; params: string[] }) =>
      this.enqueue(() => void core.batch({ ref: b.id, start: true, type: b.type, ...(b.params[0] !== undefined ? { target: b.params[0] } : {}) })),
    );
    irc.on('batch end', (b: { id: string }) => this.enqueue(() => this.act(core.batch({ ref: b.id, start: false }).actions)));
    // IRCv3 standard replies: irc-framework has no handler for FAIL and hands it over as an unknown
    // command. `FAIL CHATHISTORY <code> <subcommand> [<target> …] :<text>`: our history request was
    // refused, so that room's catch-up ends now with what it has (not at its page timeout) and its
    // summary says the rest could not be fetched. Without a target it is the oldest request out.
    irc.on('unknown command', (c: { command?: string; params?: string[] }) => {
      const params = c.params ?? [];
      if ((c.command ?? '').toUpperCase() !== 'FAIL' || (params[0] ?? '').toUpperCase() !== 'CHATHISTORY') return;
      this.enqueue(() => this.act(core.historyFailed(params.slice(2, -1).find((p) => p.startsWith('#')))));
    });
    irc.on('privmsg', (e: IrcTextEvent) => text('PRIVMSG', e));
    irc.on('notice', (e: IrcTextEvent) => text('NOTICE', e));
    irc.on('action', (e: IrcTextEvent) => text('PRIVMSG', e, formatAction));
    irc.on('join', (e: { nick: string; channel: string }) => {
      // What the server enabled is known before any JOIN (CAP ACK, then ISUPPORT): our own JOIN asks for history with it.
      const limit = irc.network.supports('CHATHISTORY');
      const caps = irc.network.cap.enabled;
      this.enqueue(() => {
        this.act(core.capabilities(caps, typeof limit === 'string' ? limit : undefined));
        this.membership({ kind: 'join', room: e.channel, nick: e.nick });
      });
    });
    irc.on('part', (e: { nick: string; channel: string; message: string }) =>
      this.enqueue(() => this.membership({ kind: 'part', room: e.channel, nick: e.nick }, e.message)),
    );
    irc.on('kick', (e: { nick: string; kicked: string; channel: string; message: string }) =>
      // keybot removes members server-side: then the KICK comes from the server (no nick).
      this.enqueue(() => this.membership({ kind: e.nick ? 'kick' : 'part', room: e.channel, nick: e.kicked }, e.message, e.nick || undefined)),
    );
    irc.on('quit', (e: { nick: string; message: string }) =>
      this.enqueue(() => {
        // A member of a keyed room quit: that key may no longer be sent under.
        this.act(core.membership({ kind: 'quit', nick: e.nick }).actions);
        this.emit('quit', { nick: e.nick, reason: e.message });
      }),
    );
    // On an ordinary IRC network keybot places members by INVITE (docs/NETWORKS.md): the core
    // decides which INVITE is joined (core/session.ts `invited`).
    irc.on('invite', (e: { nick: string; invited: string; channel: string }) => {
      if (irc !== this.irc) return;
      this.enqueue(() => this.act(core.invited({ from: e.nick ?? '', invited: e.invited, channel: e.channel })));
    });
    // The network's name (ISUPPORT NETWORK): a key registration binds it.
    irc.on('server options', () => {
      if (irc === this.irc && irc.network.name) core.isupport([`NETWORK=${irc.network.name}`]);
    });
    irc.on('users online', (e: { nicks: string[] }) => {
      if (irc !== this.irc || !e.nicks.some((n) => casefold(n) === KEYBOT_NICK)) return;
      this.enqueue(() => this.act(core.keybotHeard(true)));
    });
    irc.on('irc error', (e: { error?: string; nick?: string; reason?: string }) => {
      // keybot is offline: a key fetch or a command in progress cannot succeed.
      if (e.error !== 'no_such_nick' || casefold(e.nick ?? '') !== KEYBOT_NICK) return;
      this.enqueue(() => this.act(core.keybotOffline().actions));
      this.commands.offline();
    });
    irc.on('close', () => this.onClose(irc));
  }

  private async incoming(command: TextCommand, from: string, target: string, text: string, tags?: LineTags): Promise<void> {
    if (!from) {
      this.emit('notice', { from: '', target, text });
      return;
    }
    const { result, actions } = await this.core!.received({ from, target, command, text, ...(tags ? { tags } : {}) });
    if (result.kind === 'passthrough') {
      // Not sealchat's business (a private message, a user's notice, an ordinary channel): the
      // result carries no line, so report it from here, as received.
      this.emit(command === 'NOTICE' ? 'notice' : 'privmsg', { from, target, text });
    } else {
      this.report(result);
    }
    this.act(actions);
  }

  private membership(change: MembershipChange, reason = '', kickedBy?: string): void {
    const { self, actions } = this.core!.membership(change);
    this.act(actions);
    const room = change.room!;
    if (change.kind === 'join') this.emit('join', { room, nick: change.nick, self });
    else this.emit('part', { room, nick: change.nick, self, reason, ...(kickedBy !== undefined ? { kickedBy } : {}) });
  }

  /** Carry out what the session asked, as events. */
  private act(actions: CompanionAction[]): void {
    carryOut(actions, {
      send: (a) => {
        if (this.phase === 'online' && this.registered) this.irc?.raw(a.command, a.target, a.text);
      },
      result: (r) => this.report(r),
      keybot: (k) => {
        if (k.status === 'pinned') this.emit('keybot-pinned', { fingerprint: k.fingerprint, source: k.source, server: this.server() });
        else if (k.status === 'mismatch') this.emit('keybot-key-changed', { server: this.server(), expected: k.expected, got: k.got, source: k.source });
        else if (k.status === 'unavailable') this.emit('keybot-unavailable', { reason: k.reason });
      },
      // A proposal we refused to sign (someone else using the password?), a pin file not written, a registration nonce not answered.
      warning: (text, about) => this.emit('warning', { text, ...(about !== undefined ? { about } : {}) }),
      released: (a) => {
        this.emit('message-released', { id: a.id, room: a.room, epoch: a.epoch, lines: a.lines, heldMs: a.heldMs });
        this.settle(a.id)?.resolve({ epoch: a.epoch, lines: a.lines, held: { id: a.id, ms: a.heldMs } });
      },
      unsent: (a) => {
        this.emit('message-unsent', { id: a.id, room: a.room, reason: a.reason, heldMs: a.heldMs });
        this.settle(a.id)?.reject(new SealClientError('no-key', a.reason));
      },
      // The catch-up's CHATHISTORY, for this connection (it may come while the login completes: the daemon places us in our rooms then).
      raw: (line) => {
        if (this.registered) this.irc?.raw(line);
      },
      history: (shown) => {
        for (const r of shown.results) this.report(r);
        if (shown.summary !== '') this.emit('history', { room: shown.room, count: shown.count, unreadable: shown.unreadable, summary: shown.summary });
      },
    });
  }

  /** The send() waiting for held text `id`, if any (taken). */
  private settle(id: number): { resolve: (r: SendResult) => void; reject: (err: Error) => void } | undefined {
    const w = this.waiting.get(id);
    this.waiting.delete(id);
    return w;
  }

  /** One engine result as an event. */
  private report(r: IncomingResult): void {
    switch (r.kind) {
      case 'key': {
        const { kind: _k, released: _r, ...key } = r;
        this.emit('key', key);
        break;
      }
      case 'message': {
        const action = parseAction(r.text);
        this.emit('message', {
          room: r.room,
          from: r.from,
          text: action ?? r.text,
          epoch: r.epoch,
          command: r.command,
          action: action !== undefined,
          ...(r.missingBefore ? { missingBefore: r.missingBefore } : {}),
          ...(r.history ? { history: true as const } : {}),
          ...(r.time !== undefined ? { time: r.time } : {}),
          ...(r.msgid !== undefined ? { msgid: r.msgid } : {}),
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
      case 'bot-notice': {
        const { kind: _k, ...rest } = r;
        this.emit('bot-notice', rest);
        if (casefold(r.target) === casefold(this.options!.nick)) this.commands.reply(r.text);
        break;
      }
      case 'passthrough':
      case 'hidden':
      case 'held':
        break;
    }
  }

  /** One connection is gone: wipe its keys, then reconnect or finish. */
  private onClose(irc: IrcClient): void {
    if (irc !== this.irc || this.phase === 'closed') return;
    const wasOnline = this.phase === 'online';
    this.registered = false;
    this.commands.closed();
    // A reconnect attempt that fails is handled where it was started.
    if (this.phase === 'reconnecting') return;
    // Keys live in memory only: they go with the connection (the rooms may get text held for them).
    this.act(this.core!.connectionLost());
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
    // Companions spread their returns (jitter 0.5 unless configured): a daemon restart drops everyone at once.
    const delayMs = backoffDelay(this.attempts, { jitter: 0.5, ...o });
    this.attempts++;
    const attempt = this.attempts;
    this.enqueue(() => void this.emit('reconnecting', { attempt, delayMs }));
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => void this.reconnectNow(), delayMs);
  }

  private async reconnectNow(): Promise<void> {
    if (this.phase !== 'reconnecting') return;
    const irc = new IRC.Client();
    this.irc = irc;
    this.wire(irc);
    try {
      await this.login(irc);
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
    // The pin stays; the session checks that keybot still offers it once it is online (MONITOR).
    // Where keybot keeps the accounts, this connection logs in to keybot again.
    this.act(this.core!.reconnected());
    irc.raw('MONITOR', '+', KEYBOT_NICK);
    this.enqueue(() => void this.emit('reconnected', { nick: this.options!.nick, attempts }));
  }

  /** The client is done: no more reconnects, held text reported unsent, keys wiped. */
  private finish(why: string): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    this.registered = false;
    clearInterval(this.sweepTimer);
    clearTimeout(this.reconnectTimer);
    this.act(this.core!.close(why));
    const book = this.book;
    this.enqueue(async () => {
      // What outlives the connection is on disk before the client says it is done.
      await book?.flush();
      this.emit('close');
    });
  }
}
