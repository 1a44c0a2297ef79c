/**
 * The daemon's state: sessions, clients (identities), channels, presence, and delivery.
 * Handlers (src/ircd/commands) change state only through these methods, so the rules that
 * every path must keep (who sees a JOIN, when someone goes offline, who is told) live here once.
 *
 * The server does not know the commands: the line dispatcher (commands/dispatch.ts, built over
 * the command table) is passed in, so state sits below the handlers that change it
 * (docs/DESIGN.md "The daemon").
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { Accounts } from '../accounts.js';
import type { AccountRecord } from '../store/index.js';
import { makeIpMatcher, type Config } from '../config.js';
import { casefold, NICKLEN, CHANNELLEN, SERVICE_ROOM_PREFIX } from '../../protocol/names.js';
import { RPL_MONOFFLINE, RPL_MONONLINE } from '../protocol/numerics.js';
import { createLogger, type Logger } from '../../util/log.js';
import { VERSION } from '../../util/version.js';
import { Channel, Client, MAX_LIST_ENTRIES, type Peer } from './model.js';
import { Relay } from './relay.js';
import { RoomRegistry } from './rooms.js';
import { Session, type SessionHost } from './session.js';
import { addressKey, KeyedRateLimiter } from './throttle.js';

/** Parses one line and runs its command (commands/dispatch.ts); passed in by the daemon. */
export type LineDispatcher = (server: IrcServer, session: Session, line: string) => Promise<void> | undefined;

/** Most lines one CHATHISTORY request is answered with (ISUPPORT CHATHISTORY). */
export const CHATHISTORY_MAX = 1000;

/** How many WHOWAS entries are kept: a bounded memory of recent nicks, not a log. */
const NICK_HISTORY_MAX = 200;

/** One nick no longer in use, as WHOWAS shows it. */
export interface WhowasEntry {
  nick: string;
  folded: string;
  username: string;
  hostname: string;
  realname: string;
  /** Seconds since the epoch when the nick stopped being used. */
  at: number;
}

export interface ServerEvents {
  presence: [{ name: string; online: boolean }];
}

export class IrcServer extends EventEmitter<ServerEvents> implements SessionHost {
  readonly name: string;
  /** The software version in 002, 004 and VERSION (one source: package.json). */
  readonly version = `sealchat-${VERSION}`;
  readonly log: Logger = createLogger('ircd');
  readonly sessions = new Set<Session>();
  /** Registered identities by casefolded nick. */
  readonly clients = new Map<string, Client>();
  readonly channels = new Map<string, Channel>();
  /** Clients that have user modes (Client.modeIndex): LUSERS counts them, not every client. */
  readonly clientsWithModes = new Set<Client>();
  /** Sessions in `sessions` that completed registration (LUSERS: the others are unknown connections). */
  private registeredSessions = 0;
  /** Casefolded nick → sessions that MONITOR it (IRCv3 monitor). */
  readonly monitoredBy = new Map<string, Set<Session>>();
  readonly loginsPerIp: KeyedRateLimiter;
  readonly loginsPerAccount: KeyedRateLimiter;
  readonly createdAt = new Date();
  /** The most users online at once since start (LUSERS 265/266, modern.ircdocs.horse). */
  maxUsersSeen = 0;
  /** Guest nicks that were in use, newest last, for WHOWAS (RFC 2812 §3.6.3); bounded. */
  readonly nickHistory: WhowasEntry[] = [];
  /** Open TCP connections (TLS ones counted from before their handshake), in all and per IP. */
  private connections = 0;
  private readonly perIp = new Map<string, number>();
  private readonly isExempt: (ip: string) => boolean;
  private flushQueue: Session[] = [];
  private flushPending = false;
  private sweepTimer: NodeJS.Timeout;
  readonly isupport: string[];
  /** Rooms that outlive a connection: membership by account, history, mailboxes. */
  readonly rooms: RoomRegistry;
  /** Most lines one CHATHISTORY request gets. */
  readonly chathistoryMax: number;

  constructor(readonly config: Config, readonly accounts: Accounts, private readonly dispatchLine: LineDispatcher, rooms?: RoomRegistry) {
    super();
    this.rooms = rooms ?? new RoomRegistry(config.history, null, this.log);
    this.chathistoryMax = Math.min(CHATHISTORY_MAX, config.history.maxMessages);
    // A room exists as a channel also while none of its members is online (not destroyed when
    // empty), so that keybot and the companions find it after a restart of the daemon.
    for (const room of this.rooms.all()) this.roomChannel(room.name);
    this.name = config.serverName;
    const l = config.limits;
    this.loginsPerIp = new KeyedRateLimiter(l.loginAttemptsPerIpPerMinute);
    this.loginsPerAccount = new KeyedRateLimiter(l.loginAttemptsPerAccountPerMinute);
    this.isExempt = makeIpMatcher(l.exemptIps);
    // ISUPPORT (modern.ircdocs.horse "RPL_ISUPPORT"): only what the server really enforces.
    this.isupport = [
      'AWAYLEN=390', 'CASEMAPPING=ascii', `CHANLIMIT=#:${l.channelsPerUser}`, 'CHANMODES=beI,k,l,Cimnst',
      `CHANNELLEN=${CHANNELLEN}`, 'CHANTYPES=#', 'ELIST=CMNTU', 'KICKLEN=390', `MONITOR=${l.monitorLimit}`,
      `NETWORK=${config.networkName}`, `NICKLEN=${NICKLEN}`, 'PREFIX=(ov)@+', 'STATUSMSG=@+', 'TOPICLEN=390', `USERLEN=${NICKLEN}`,
      'MODES=4', `EXCEPTS=e`, 'INVEX=I', 'EXTBAN=,am', 'ACCOUNTEXTBAN=a', `MAXLIST=b:${MAX_LIST_ENTRIES},e:${MAX_LIST_ENTRIES},I:${MAX_LIST_ENTRIES}`, 'WHOX', `CHATHISTORY=${this.chathistoryMax}`, 'MSGREFTYPES=msgid,timestamp', `TARGMAX=PRIVMSG:${l.maxTargets},NOTICE:${l.maxTargets},TAGMSG:${l.maxTargets},JOIN:,PART:,WHOIS:1,NAMES:${l.maxTargets},KICK:${l.maxTargets},MONITOR:`,
    ];
    if (config.utf8Only) this.isupport.push('UTF8ONLY');
    this.sweepTimer = setInterval(() => this.sweep(), 1000);
    this.sweepTimer.unref();
  }

  // ---- connections --------------------------------------------------------------------------

  /**
   * A TCP connection arrived, before any TLS handshake: count it against maxClients and
   * clonesPerIp, or refuse it. Counting here, not after the handshake, means connections that
   * stall in TLS cannot slip past the limits. The count drops when the socket closes.
   */
  admitConnection(socket: Socket, tls: boolean): boolean {
    const ip = normaliseIp(socket.remoteAddress ?? 'unknown');
    const l = this.config.limits;
    const reject = (why: string): false => {
      socket.on('error', () => undefined);
      // On the TLS port a plaintext ERROR would be noise to a TLS client: just close.
      if (tls) socket.destroy();
      else {
        socket.end(`ERROR :Closing link: ${ip} (${why})\r\n`);
        setTimeout(() => socket.destroy(), 1000).unref();
      }
      return false;
    };
    if (this.connections >= l.maxClients) return reject('Server is full; try again later');
    const key = addressKey(ip, l.ipv6PrefixLength);
    const count = this.perIp.get(key) ?? 0;
    if (l.clonesPerIp > 0 && count >= l.clonesPerIp && !this.isExempt(ip)) {
      return reject(`Too many connections from your address (limit ${l.clonesPerIp})`);
    }
    this.perIp.set(key, count + 1);
    this.connections++;
    // 'close' is emitted once; `on` spares the per-connection wrapper that `once` makes.
    socket.on('close', () => {
      this.connections--;
      const n = (this.perIp.get(key) ?? 1) - 1;
      if (n <= 0) this.perIp.delete(key);
      else this.perIp.set(key, n);
    });
    return true;
  }

  /** Start a session on an admitted connection (for TLS: once the handshake is done). */
  accept(socket: Socket, tls: boolean): void {
    const session = new Session(this, socket, normaliseIp(socket.remoteAddress ?? 'unknown'), tls);
    this.sessions.add(session);
  }

  /** Parse and run one line; returns a promise only when the handler is asynchronous. */
  dispatch(session: Session, line: string): Promise<void> | undefined {
    return this.dispatchLine(this, session, line);
  }

  scheduleFlush(session: Session): void {
    session.flushScheduled = true;
    this.flushQueue.push(session);
    if (!this.flushPending) {
      this.flushPending = true;
      setImmediate(() => this.flushAll());
    }
  }

  private flushAll(): void {
    const queue = this.flushQueue;
    this.flushQueue = [];
    this.flushPending = false;
    for (const s of queue) s.flush();
  }

  /** Connections that have not completed registration (LUSERS 253). */
  get unregisteredSessions(): number {
    return this.sessions.size - this.registeredSessions;
  }

  onSessionClosed(session: Session, reason: string): void {
    if (!this.sessions.delete(session)) return;
    this.unmonitorAll(session);
    const client = session.client;
    if (client) {
      this.registeredSessions--;
      client.sessions.delete(session);
      for (const ch of client.channels.values()) ch.membersChanged();
      if (client.sessions.size === 0) this.removeClient(client, reason);
    }
  }

  /** Forget a session's MONITOR list, dropping index entries nobody watches any more. */
  unmonitorAll(session: Session): void {
    if (!session.monitoring) return;
    for (const folded of session.monitors) this.unmonitor(session, folded);
    session.monitors.clear();
  }

  unmonitor(session: Session, folded: string): void {
    session.monitors.delete(folded);
    const set = this.monitoredBy.get(folded);
    if (!set) return;
    set.delete(session);
    if (set.size === 0) this.monitoredBy.delete(folded);
  }

  /** Registration timeout, idle PING and ping timeout, throttle housekeeping. */
  private sweep(): void {
    const now = Date.now();
    const l = this.config.limits;
    for (const s of this.sessions) {
      if (!s.client) {
        if (now - s.connectedAt > l.registrationTimeoutMs) s.close('Registration timed out', true);
        continue;
      }
      if (s.pingSentAt) {
        if (now - s.pingSentAt > l.pingTimeoutMs) s.close(`Ping timeout: ${Math.round((now - s.lastInputAt) / 1000)} seconds`, true);
      } else if (now - s.lastInputAt > l.pingIntervalMs) {
        s.pingSentAt = now;
        s.sendFrom(null, 'PING', [this.name]);
      }
    }
    if (now % 60_000 < 1000) {
      this.loginsPerIp.sweep(now);
      this.loginsPerAccount.sweep(now);
      this.rooms.sweep();
    }
  }

  /**
   * One password check for PASS and SASL alike: a token per IP and per account name is taken up
   * front (so parallel guesses cannot race past the limit) and given back on success (so only
   * failures count). 'throttled' when either limit is spent; null for a wrong password or an
   * unknown account, which are indistinguishable.
   */
  /** The key an address's login attempts are counted under (an IPv6 /64 by default; throttle.ts). */
  throttleKey(ip: string): string {
    return addressKey(ip, this.config.limits.ipv6PrefixLength);
  }

  async attemptLogin(session: Session, name: string, password: string): Promise<AccountRecord | null | 'throttled'> {
    const folded = casefold(name);
    const from = this.throttleKey(session.ip);
    if (!this.loginsPerIp.take(from)) return 'throttled';
    if (!this.loginsPerAccount.take(folded)) return 'throttled';
    const record = await this.accounts.authenticate(name, password);
    if (record) {
      this.loginsPerIp.refund(from);
      this.loginsPerAccount.refund(folded);
    }
    return record;
  }

  // ---- identities and presence --------------------------------------------------------------

  findClient(nick: string): Client | undefined {
    return this.clients.get(casefold(nick));
  }

  /**
   * The identity logged in to account `name`. Its nick is the account name, unless config
   * forceNickEqualsAccount is off: then it may hold another nick, and only then is the registry
   * walked (at logins and control calls, never per message).
   */
  clientOfAccount(name: string): Client | undefined {
    const folded = casefold(name);
    const byNick = this.clients.get(folded);
    if (byNick?.account != null && casefold(byNick.account) === folded) return byNick;
    if (this.config.forceNickEqualsAccount) return undefined;
    for (const c of this.clients.values()) if (c.account !== null && casefold(c.account) === folded) return c;
    return undefined;
  }

  /** Whether account `name` has a session (docs/DESIGN.md "Presence"). */
  isOnline(name: string): boolean {
    return this.clientOfAccount(name) !== undefined;
  }

  onlineAccounts(): string[] {
    const out: string[] = [];
    for (const c of this.clients.values()) if (c.account) out.push(c.account);
    return out;
  }

  /**
   * Add a registered session's identity, or attach the session to the identity it shares (the
   * same account). Null when the nick belongs to another identity: two connections that
   * registered the same guest nick at once, say; the later one gets 433 (RFC 2812 §3.1.2).
   */
  attach(session: Session, identity: { nick: string; account: string | null; isService: boolean }): { client: Client; isNew: boolean } | null {
    const folded = casefold(identity.nick);
    let client = this.clients.get(folded);
    let isNew = false;
    if (client && (client.account === null || identity.account === null || casefold(client.account) !== casefold(identity.account))) {
      return null;
    }
    if (!client) {
      const username = identity.account ? identity.account : `~${(session.username ?? 'user').slice(0, NICKLEN - 1)}`;
      client = new Client(identity.nick, folded, identity.account, username, session.ip, session.realname || identity.nick, identity.isService);
      client.modeIndex = this.clientsWithModes;
      this.clients.set(folded, client);
      isNew = true;
      if (this.clients.size > this.maxUsersSeen) this.maxUsersSeen = this.clients.size;
    }
    client.sessions.add(session);
    for (const ch of client.channels.values()) ch.membersChanged();
    if (session.client === null && this.sessions.has(session)) this.registeredSessions++;
    session.client = client;
    if (identity.isService) session.exemptFromFakelag = true;
    if (isNew) {
      if (identity.account) this.emit('presence', { name: identity.account, online: true });
      this.notifyMonitors(client, true);
    }
    return { client, isNew };
  }

  /** Whoever holds `nick` (which an account now owns) is disconnected, unless it is that account's own client. */
  releaseGuestNick(nick: string, reason: string): void {
    const client = this.findClient(nick);
    // With forceNickEqualsAccount off another account's identity may hold the nick too.
    if (client && (client.account === null || casefold(client.account) !== casefold(nick))) this.disconnect(client, reason);
  }

  /** Disconnect every session of an account (account deleted, KILL). */
  disconnectAccount(name: string, reason: string): void {
    const client = this.clientOfAccount(name);
    if (client) this.disconnect(client, reason);
  }

  /** Close every session of a client; co-members see QUIT with `reason`. */
  disconnect(client: Client, reason: string): void {
    for (const s of [...client.sessions]) s.close(reason, true);
  }

  /**
   * Change a client's nick (also only its case): tell the client and everyone sharing a channel
   * once, move the registry entry and pending invitations, remember the old nick for WHOWAS, and
   * tell MONITOR watchers the old nick went offline and the new one came online (IRCv3 monitor).
   */
  rename(client: Client, nick: string): void {
    const folded = casefold(nick);
    const relay = new Relay(client.prefix, 'NICK', [nick], Date.now(), client.account);
    const told = new Set([client]);
    this.deliverToClient(client, relay);
    for (const ch of client.channels.values()) {
      for (const m of ch.members.keys()) {
        if (told.has(m)) continue;
        told.add(m);
        this.deliverToClient(m, relay);
      }
    }
    if (folded === client.folded) {
      client.nick = nick;
      return;
    }
    this.remember(client);
    this.notifyMonitors(client, false);
    this.clients.delete(client.folded);
    for (const ch of client.channels.values()) ch.invited.delete(client.folded);
    client.nick = nick;
    client.folded = folded;
    this.clients.set(folded, client);
    this.notifyMonitors(client, true);
  }

  /** WHOWAS entries for a casefolded nick, newest first; `count` ≤ 0 means all. */
  whowas(folded: string, count: number): WhowasEntry[] {
    const out: WhowasEntry[] = [];
    for (let i = this.nickHistory.length - 1; i >= 0; i--) {
      const e = this.nickHistory[i]!;
      if (e.folded !== folded) continue;
      out.push(e);
      if (count > 0 && out.length >= count) break;
    }
    return out;
  }

  /**
   * Keep a guest's nick for WHOWAS. Account holders are not kept: their name is in the directory
   * and WHOIS already says "<name> is offline" (401), and the daemon should not tell anyone where
   * a member last connected from once they are gone. (irssi follows a 401 with WHOWAS and shows
   * its 406 as "There is no such nick".)
   */
  private remember(client: Client): void {
    if (client.account !== null) return;
    const { nick, folded, username, hostname, realname } = client;
    this.nickHistory.push({ nick, folded, username, hostname, realname, at: Math.floor(Date.now() / 1000) });
    if (this.nickHistory.length > NICK_HISTORY_MAX) this.nickHistory.shift();
  }

  private removeClient(client: Client, reason: string): void {
    if (this.clients.get(client.folded) !== client) return;
    this.clients.delete(client.folded);
    this.clientsWithModes.delete(client);
    this.remember(client);
    // Every co-member hears the QUIT exactly once, however many channels they share.
    const relay = new Relay(client.prefix, 'QUIT', [reason], Date.now(), client.account);
    const told = new Set<Client>();
    for (const ch of client.channels.values()) {
      ch.members.delete(client);
      ch.membersChanged();
      for (const m of ch.members.keys()) {
        if (told.has(m)) continue;
        told.add(m);
        this.deliverToClient(m, relay);
      }
      // QUIT keeps a room's membership (docs/PROTOCOL.md "Rooms that outlive a connection").
      if (ch.members.size === 0 && !this.rooms.isRoom(ch.folded)) this.channels.delete(ch.folded);
    }
    client.channels.clear();
    this.notifyMonitors(client, false);
    if (client.account) this.emit('presence', { name: client.account, online: false });
  }

  private notifyMonitors(client: Client, online: boolean): void {
    const watchers = this.monitoredBy.get(client.folded);
    if (!watchers) return;
    for (const s of watchers) {
      if (online) s.reply(RPL_MONONLINE, client.prefix);
      else s.reply(RPL_MONOFFLINE, client.nick);
    }
  }

  // ---- delivery -----------------------------------------------------------------------------

  /** Send to every session of a client, except `except` (the sender's own connection). */
  deliverToClient(client: Client, relay: Relay, except?: Peer): void {
    for (const s of client.sessions) if (s !== except) s.relay(relay);
  }

  /**
   * Send to every member of a channel. `exceptClient`'s sessions are skipped except its
   * other sessions when `echoTo` says so; see PRIVMSG for echo-message handling.
   */
  deliverToChannel(channel: Channel, relay: Relay, except?: Client): void {
    for (const s of channel.sessions()) if (s.client !== except) s.relay(relay);
  }

  // ---- channels -----------------------------------------------------------------------------

  getOrCreateChannel(name: string): { channel: Channel; created: boolean } {
    const folded = casefold(name);
    let channel = this.channels.get(folded);
    if (channel) return { channel, created: false };
    channel = new Channel(name);
    // keybot's rooms are invite-only and secret from their first instant, not one round trip
    // after keybot's MODE (a LIST in between would show the name).
    if (folded.startsWith(SERVICE_ROOM_PREFIX)) {
      channel.flags.add('i');
      channel.flags.add('s');
    }
    this.channels.set(folded, channel);
    return { channel, created: true };
  }

  /** A room's channel, made (invite-only and secret, as keybot keeps its rooms) if it does not exist. */
  roomChannel(name: string): Channel {
    const { channel, created } = this.getOrCreateChannel(name);
    if (created) {
      channel.flags.add('i');
      channel.flags.add('s');
    }
    return channel;
  }

  /** Add a member and tell everyone (JOIN, then topic and NAMES to the joiner's sessions). */
  join(client: Client, channel: Channel, asOp: boolean, sendBurst: (s: Peer) => void): void {
    channel.members.set(client, { op: asOp, voice: false });
    channel.membersChanged();
    client.channels.set(channel.folded, channel);
    channel.invited.delete(client.folded);
    const plain = new Relay(client.prefix, 'JOIN', [channel.name], Date.now(), client.account);
    // extended-join (IRCv3): JOIN <channel> <account> :<realname>
    const extended = new Relay(client.prefix, 'JOIN', [channel.name, client.account ?? '*', client.realname], Date.now(), client.account);
    for (const m of channel.members.keys()) {
      for (const s of m.sessions) s.relay(s.caps.has('extended-join') ? extended : plain);
    }
    for (const s of client.sessions) sendBurst(s);
  }

  /**
   * Remove a member; `relay` (PART or KICK) goes to all members including the one leaving. In a
   * room this ends the account's membership (a QUIT, in removeClient, does not).
   */
  leave(client: Client, channel: Channel, relay: Relay): void {
    this.deliverToChannel(channel, relay);
    channel.members.delete(client);
    channel.membersChanged();
    client.channels.delete(channel.folded);
    const isRoom = this.rooms.isRoom(channel.folded);
    if (isRoom && client.account !== null) this.rooms.endMembership(channel.folded, casefold(client.account));
    if (channel.members.size === 0 && !isRoom) this.channels.delete(channel.folded);
  }

  async close(): Promise<void> {
    clearInterval(this.sweepTimer);
    for (const s of [...this.sessions]) s.close('Server shutting down', true);
    await this.rooms.close();
  }
}

/** '::ffff:127.0.0.1' → '127.0.0.1': IPv4 peers on a dual-stack socket count as IPv4. */
export function normaliseIp(addr: string): string {
  return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr;
}
