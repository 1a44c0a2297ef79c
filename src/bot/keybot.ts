/**
 * keybot's IRC connection: an irc-framework client under the reserved nick `keybot`, logged in
 * with the service account (SASL PLAIN). It turns IRC events into calls on an IrcEventSink
 * (commands and the key service) and implements the Transport the service speaks through.
 *
 * auto_reconnect is off on purpose: a reconnect loses every room membership (the server QUITs
 * keybot out of its rooms) and keybot must then rebuild its rooms and rekey them from scratch.
 * irc-framework's own reconnect would resume silently with stale state, so the owner (main.ts)
 * sees `close` and starts a fresh session instead.
 */
import type { Socket } from 'node:net';
import IRC, { type Client as IrcClient } from 'irc-framework';
import { casefold, KEYBOT_NICK } from '../protocol/names.js';
import { createLogger } from '../util/log.js';
import type { Transport } from './delivery.js';

const log = createLogger('keybot');

/** A nick or channel that needs no quoting in a raw line. */
const PLAIN_TARGET = /^[\x21-\x39\x3b-\x7e][\x21-\x7e]*$/;

/** Short single-line printable ASCII: sent as it is, no splitting needed. */
function isPlainLine(text: string): boolean {
  return text.length <= 400 && /^[\x20-\x7e]+$/.test(text);
}

export interface IrcEndpoint {
  host: string;
  port: number;
  tls?: boolean;
  /** Verify the server's TLS certificate (default true). */
  rejectUnauthorized?: boolean;
}

/** Who sent a command. `account` is null for guests. */
export interface Sender {
  nick: string;
  account: string | null;
}

/** Where IRC events go. KeyService implements all but `command`. */
export interface IrcEventSink {
  command(from: Sender, text: string): void;
  selfJoined(room: string): void;
  namesReceived(room: string, nicks: string[]): void;
  memberJoined(room: string, nick: string): void;
  memberLeft(room: string, nick: string, kicked: boolean): void;
  memberQuit(nick: string): void;
  selfLeft(room: string): void;
  modesChanged(room: string, by: string, changes: Array<{ mode: string }>): void;
  roomMessage(room: string, nick: string): void;
}

export interface KeybotConnectionOptions {
  endpoint: IrcEndpoint;
  account: string;
  password: string;
  /** Give up registering after this long (default 15 s). */
  registrationTimeoutMs?: number;
  /** false: no SASL (a network without services, where keybot keeps its own accounts). Default true. */
  sasl?: boolean;
}

export class KeybotConnection implements Transport {
  readonly nick = KEYBOT_NICK;
  private readonly client: IrcClient;
  private sink: IrcEventSink | undefined;
  private closed = false;
  private quitting = false;
  private readonly closeListeners: Array<(reason: string) => void> = [];

  constructor(private readonly opts: KeybotConnectionOptions) {
    this.client = new IRC.Client();
    this.client.on('close', () => this.onClosed('connection closed'));
    // TCP_NODELAY (docs/DESIGN.md "Rules the code keeps": TCP_NODELAY). Without it, a small line written right
    // after another that the server does not answer (MODE +is on a room already +is, then the
    // MODE query) waits for the server's delayed ACK: ~40 ms on every room keybot opens.
    this.client.on('raw socket connected', (socket: Socket) => socket.setNoDelay(true));
  }

  /** Route events to `sink` (set before connect, so nothing is missed). */
  bind(sink: IrcEventSink): void {
    this.sink = sink;
    const c = this.client;
    const me = (nick: string | undefined): boolean => nick !== undefined && casefold(nick) === casefold(this.nick);
    const isChannel = (t: string): boolean => t.startsWith('#');

    c.on('privmsg', (e: { nick: string; target: string; message: string; account?: string }) => {
      if (!e.nick || me(e.nick)) return;
      if (isChannel(e.target)) return sink.roomMessage(e.target, e.nick);
      if (me(e.target)) sink.command({ nick: e.nick, account: this.accountOf(e) }, e.message);
    });
    // NOTICEs to keybot are never answered (RFC 2812 §3.3.2); in rooms they count as messages.
    c.on('notice', (e: { nick?: string; target: string }) => {
      if (e.nick && !me(e.nick) && isChannel(e.target)) sink.roomMessage(e.target, e.nick);
    });
    c.on('action', (e: { nick: string; target: string }) => {
      if (e.nick && !me(e.nick) && isChannel(e.target)) sink.roomMessage(e.target, e.nick);
    });
    c.on('join', (e: { nick: string; channel: string }) => {
      if (me(e.nick)) sink.selfJoined(e.channel);
      else sink.memberJoined(e.channel, e.nick);
    });
    c.on('userlist', (e: { channel: string; users: Array<{ nick: string }> }) => {
      sink.namesReceived(e.channel, e.users.map((u) => u.nick));
    });
    c.on('part', (e: { nick: string; channel: string }) => {
      if (me(e.nick)) sink.selfLeft(e.channel);
      else sink.memberLeft(e.channel, e.nick, false);
    });
    c.on('kick', (e: { kicked: string; channel: string }) => {
      if (me(e.kicked)) sink.selfLeft(e.channel);
      else sink.memberLeft(e.channel, e.kicked, true);
    });
    c.on('quit', (e: { nick: string }) => {
      if (!me(e.nick)) sink.memberQuit(e.nick);
    });
    // Nicks equal accounts and the ircd refuses changes; if a rename ever happens, treat it as a
    // quit: the old nick's account is offline (still a member where rooms outlive a connection,
    // gone elsewhere), and the new nick gets no key (it is in no roster).
    c.on('nick', (e: { nick: string; new_nick: string }) => {
      if (me(e.nick)) return;
      log.warn(`${e.nick} is now ${e.new_nick}; treating it as a quit`);
      sink.memberQuit(e.nick);
    });
    c.on('mode', (e: { target: string; nick: string; modes: Array<{ mode: string }> }) => {
      if (isChannel(e.target)) sink.modesChanged(e.target, e.nick, e.modes);
    });
    // RPL_CHANNELMODEIS (324), the answer to our own MODE query: the modes as they are. Needed
    // because a server that creates the room +is already (sealchatd does) echoes no change.
    c.on('channel info', (e: { channel: string; modes?: Array<{ mode: string }> }) => {
      if (e.modes && isChannel(e.channel)) sink.modesChanged(e.channel, this.opts.account, e.modes);
    });
  }

  /** Connect and log in; resolves once registered, rejects if that fails. */
  connect(): Promise<void> {
    const { endpoint, account, password } = this.opts;
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (why: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.client.quit();
        reject(new Error(`cannot log in to ${endpoint.host}:${endpoint.port} as ${account}: ${why}`));
      };
      const timer = setTimeout(() => fail('registration timed out'), this.opts.registrationTimeoutMs ?? 15_000);
      this.client.once('registered', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        log.info(`logged in to ${endpoint.host}:${endpoint.port} as ${this.client.user.nick}`);
        resolve();
      });
      this.client.on('sasl failed', (e: { reason?: string }) => fail(`SASL failed (${e.reason ?? 'unknown reason'})`));
      this.client.on('irc error', (e: { error?: string; reason?: string }) => {
        if (!settled) fail(`${e.error ?? 'error'}: ${e.reason ?? ''}`.trim());
        else if (!this.quitting) log.warn(`irc error: ${e.error ?? ''} ${e.reason ?? ''}`);
      });
      this.client.once('close', () => fail('connection closed (is the ircd listening there?)'));
      this.client.connect({
        host: endpoint.host,
        port: endpoint.port,
        tls: endpoint.tls ?? false,
        rejectUnauthorized: endpoint.rejectUnauthorized ?? true,
        nick: this.nick,
        username: this.nick,
        gecos: 'sealchat key service',
        ...(this.opts.sasl === false ? {} : { account: { account, password } }),
        sasl_disconnect_on_fail: true,
        auto_reconnect: false,
        version: 'sealchat keybot',
      });
    });
  }

  /** Called once when the connection is gone for good (it never reconnects by itself). */
  onClose(listener: (reason: string) => void): void {
    if (this.closed) queueMicrotask(() => listener('connection closed'));
    else this.closeListeners.push(listener);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * The IRC client itself, for a directory that works over keybot's own connection (an ordinary
   * IRC network, src/bot/network/directory.ts: WHOIS, MONITOR, INVITE and KICK must come from
   * the nick that holds op in the rooms). Listeners added before bind() run before the sink's.
   */
  get irc(): IrcClient {
    return this.client;
  }

  // ---- Transport ----

  notice(target: string, text: string): void {
    if (this.closed) return;
    // Envelope parts and most replies are short single-line ASCII: send them as they are.
    // irc-framework's notice() runs every line through a grapheme splitter to find break points,
    // which cost ~5 ms per 320-byte part and dominated keybot's CPU for a 50-member rekey.
    if (isPlainLine(text)) this.client.raw('NOTICE', target, text);
    else this.client.notice(target, text);
  }

  /**
   * Lines that are plain ASCII (envelope parts always are) go out in one socket write: one
   * write per line cost more CPU than sealing for a 50-member epoch (~1250 lines). The IRC
   * lines are the same; only the syscalls and buffers are fewer.
   */
  notices(lines: ReadonlyArray<{ target: string; text: string }>): void {
    if (this.closed || lines.length === 0) return;
    let batch = '';
    for (const { target, text } of lines) {
      if (!PLAIN_TARGET.test(target) || !isPlainLine(text)) {
        // Something that needs irc-framework's own splitting: keep the order, send it alone.
        if (batch) this.client.raw(batch);
        batch = '';
        this.notice(target, text);
        continue;
      }
      const line = `NOTICE ${target} :${text}`;
      batch = batch ? `${batch}\r\n${line}` : line;
    }
    if (batch) this.client.raw(batch);
  }

  setModes(room: string, modes: string): void {
    if (this.closed) return;
    this.client.raw('MODE', room, modes);
    this.client.raw('MODE', room);
  }

  requestNames(room: string): void {
    if (!this.closed) this.client.raw('NAMES', room);
  }

  part(room: string, reason: string): void {
    if (!this.closed) this.client.part(room, reason);
  }

  /** QUIT and wait (briefly) for the server to close the connection. */
  async quit(message = 'keybot shutting down'): Promise<void> {
    if (this.closed) return;
    const gone = new Promise<void>((resolve) => this.onClose(() => resolve()));
    this.quitting = true;
    this.client.quit(message);
    await Promise.race([gone, new Promise((r) => setTimeout(r, 2000).unref())]);
    this.onClosed('quit');
  }

  /** The account behind a message: the account-tag when the server sends it, else the nick. */
  private accountOf(e: { nick: string; account?: string }): string | null {
    const tagged = this.client.network.cap.enabled.includes('account-tag');
    if (tagged) return typeof e.account === 'string' && e.account !== '' ? e.account : null;
    return e.nick;
  }

  private onClosed(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    for (const l of this.closeListeners.splice(0)) l(reason);
  }
}
