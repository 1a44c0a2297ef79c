/**
 * What changes in a keybot session on an ordinary IRC network (docs/NETWORKS.md), around the
 * session main.ts runs: the directory rides on keybot's own connection, keys come from keybot's
 * key store, `register` is answered here, and every IRC event that makes or uses a member is
 * checked against the network's accounts first:
 * - a command counts only from a nick logged in to the account of the same name (the key
 *   service keys rooms by nick, so a nick must not speak for another account);
 * - a JOIN whose account (extended-join) is not the nick's own is never a member: keybot drops
 *   any expectation it had for that nick, so the key service removes the joiner as an intruder;
 * - a member who logs out (account-notify) is removed from keybot's rooms: a departure.
 *
 * On a network without services (`accounts: 'keybot'`, ngIRCd) the accounts are keybot's own
 * (accounts.ts): `login <password>` is answered here, and the account behind every command is
 * keybot's login state for the sender's connection, never the nick (keybot.ts's Sender carries
 * the nick as the account where the server sends no account-tag; it is replaced here).
 */
import type { Client as IrcClient } from 'irc-framework';
import { casefold } from '../../protocol/names.js';
import { createLogger } from '../../util/log.js';
import type { IrcEventSink, Sender } from '../keybot.js';
import type { KeyService } from '../service.js';
import { KeybotAccounts, KeybotLogins } from './accounts.js';
import { NetworkDirectory } from './directory.js';
import { NetworkKeyStore } from './keystore.js';
import { DEFAULT_PACE, paceLines, type Pace } from './pacing.js';
import { KeyRegistrations } from './registration.js';

const log = createLogger('keybot');

export interface NetworkSessionOptions {
  dataDir: string;
  irc: IrcClient;
  serviceAccount: string;
  /** Cool-down of a key change the old key did not sign (keystore.ts; default 7 days). */
  keyChangeCoolDownMs?: number;
  /** Whose accounts say who someone is: the network's services (default) or keybot's own (accounts.ts). */
  accounts?: NetworkAccounts;
  /**
   * An IRC operator block keybot logs in to after registering (OPER), to set ngIRCd's user mode
   * +F (relaxed flood protection): without it ngIRCd reads about two lines a second from keybot,
   * and a rekey of a room of ten takes ten seconds or more (docs/NETWORKS.md "ngIRCd").
   */
  oper?: { name: string; password: string };
  /** Pacing of keybot's lines (pacing.ts; default DEFAULT_PACE, under InspIRCd's default class); false: none. */
  pace?: Pace | false;
}

/** `services`: the network's (SASL, account-tag; InspIRCd + Atheme). `keybot`: keybot's own (ngIRCd). */
export type NetworkAccounts = 'services' | 'keybot';

const LOGIN_RE = /^\s*login(?:\s+(\S.*?))?\s*$/i;

/** The network half of a session: the directory, and the key registrations it feeds. */
export class NetworkSession {
  private constructor(
    readonly directory: NetworkDirectory,
    readonly registrations: KeyRegistrations,
    private readonly irc: IrcClient,
    private readonly own: { accounts: KeybotAccounts; logins: KeybotLogins } | undefined,
    private readonly oper: { name: string; password: string } | undefined,
  ) {
    // RPL_MYINFO (004) `<me> <server> <version> <user modes> <channel modes>`: irc-framework keeps
    // no user modes, and +F is asked for only where the server has it.
    irc.on('raw', (e: { line: string; from_server: boolean }) => {
      const m = e.from_server ? /^(?:@\S+ )?:\S+ 004 \S+ \S+ \S+ (\S+)/.exec(e.line) : null;
      if (m) this.userModes = m[1]!;
    });
  }

  /** The server's user modes (RPL_MYINFO). */
  private userModes = '';

  static async open(o: NetworkSessionOptions): Promise<NetworkSession> {
    const store = await NetworkKeyStore.open(o.dataDir, o.keyChangeCoolDownMs !== undefined ? { coolDownMs: o.keyChangeCoolDownMs } : {});
    const own = o.accounts === 'keybot' ? { accounts: await KeybotAccounts.open(o.dataDir), logins: new KeybotLogins(o.irc) } : undefined;
    const directory = new NetworkDirectory({ irc: o.irc, store, serviceAccount: o.serviceAccount, ...(own ? { logins: own.logins } : {}) });
    const stopPacing = o.pace === false ? undefined : paceLines(o.irc, o.pace ?? DEFAULT_PACE);
    directory.onClose(() => {
      stopPacing?.();
      void own?.accounts.close();
    });
    const registrations = new KeyRegistrations({
      store,
      network: () => networkName(o.irc),
      onRegistered: (account) => directory.watch([account]),
      ...(own ? { notLoggedIn: 'log in to keybot first: login <password> (sealchat register --keybot-account does it)' } : {}),
    });
    return new NetworkSession(directory, registrations, o.irc, own, o.oper);
  }

  /** After login: keybot must hold its own nick (another keybot may be running), then watch presence. */
  async started(nick: string): Promise<void> {
    if (casefold(this.irc.user.nick) !== casefold(nick)) {
      throw new Error(`the nick ${nick} is taken on this network (keybot got ${this.irc.user.nick}): is another keybot running?`);
    }
    if (this.oper) await this.becomeOper(this.oper);
    await this.directory.start();
  }

  /**
   * OPER, then user mode +F where the server has it (ngIRCd's relaxed flood protection). A refused
   * OPER ends the start: the operator asked for it, and without it rekeys crawl.
   */
  private async becomeOper(oper: { name: string; password: string }): Promise<void> {
    const irc = this.irc;
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error): void => {
        clearTimeout(timer);
        irc.off('raw', onRaw);
        if (err) reject(err);
        else resolve();
      };
      // 381 RPL_YOUREOPER; 464 ERR_PASSWDMISMATCH, 491 ERR_NOOPERHOST (RFC 2812 §3.1.4).
      const onRaw = (e: { line: string; from_server: boolean }): void => {
        if (!e.from_server) return;
        const m = /^(?:@\S+ )?:\S+ (381|464|491) /.exec(e.line);
        if (m?.[1] === '381') done();
        else if (m) done(new Error(`the server refused OPER ${oper.name}: ${e.line.replace(/^.*? :/, '')}`));
      };
      const timer = setTimeout(() => done(new Error(`no answer to OPER ${oper.name}`)), 10_000);
      irc.on('raw', onRaw);
      irc.raw('OPER', oper.name, oper.password);
    });
    const userModes = this.userModes;
    if (userModes.includes('F')) irc.raw('MODE', irc.user.nick, '+F');
    log.info(`operator ${oper.name}${userModes.includes('F') ? ', with relaxed flood protection (+F)' : ''}`);
  }

  /** Wrap the session's sink with the network's checks (see the file comment). */
  wrap(sink: IrcEventSink, service: KeyService, notice: (target: string, text: string) => void): IrcEventSink {
    const dir = this.directory;
    dir.onLogout((nick) => {
      for (const room of service.rooms.roomsOf(nick)) {
        log.warn(`${room.name}: ${nick} logged out of their account; removing them`);
        void dir.removeFromRoom(room.name, nick, 'logged out of their account');
      }
    });
    const own = this.own;
    if (own) dir.onClose(() => own.logins.clear());
    return {
      ...sink,
      command: (from: Sender, text: string) => {
        if (!own) return this.command(sink, from, text, notice);
        const login = LOGIN_RE.exec(text);
        if (login) {
          void this.login(own, from.nick, login[1], (line) => notice(from.nick, line)).catch((err: unknown) => log.error(`login from ${from.nick} failed`, err));
          return;
        }
        // keybot's login state for this connection, never the nick (accounts.ts).
        void dir.verifyLogin(from.nick).then(
          (ok) => this.command(sink, { nick: from.nick, account: ok ? own.logins.accountOf(from.nick) : null }, text, notice),
          (err: unknown) => log.error(`cannot check the login of ${from.nick}`, err),
        );
      },
      memberJoined: (room: string, nick: string) => {
        if (!dir.isLoggedInAsSelf(nick)) {
          log.warn(`${room}: ${nick} joined without being logged in to the account ${nick}`);
          service.rooms.get(room)?.takeExpectedJoin(nick);
        }
        sink.memberJoined(room, nick);
        // keybot's own accounts: the login is checked afresh (the nick may be someone else's by
        // now); one that fails is a logout, which removes the nick from every room (onLogout).
        if (own && dir.isLoggedInAsSelf(nick)) void dir.verifyLogin(nick).catch(() => undefined);
      },
    };
  }

  /** `login <password>`: log the sender's connection in to the keybot account of its nick (accounts.ts). */
  private async login(own: { accounts: KeybotAccounts; logins: KeybotLogins }, nick: string, password: string | undefined, reply: (line: string) => void): Promise<void> {
    if (!password) return reply('usage: login <password> (logs you in to the keybot account of your nick, creating it the first time)');
    const r = await own.accounts.login(nick, password);
    if (!r.ok) return reply(`login refused: ${r.reason}`);
    if (!(await own.logins.bind(nick, nick))) return reply('login refused: keybot cannot see your connection (WHOIS); try again');
    this.directory.loggedIn(nick);
    log.info(`${nick} logged in to their keybot account${r.created ? ' (created)' : ''}`);
    reply(r.created ? `login: keybot account ${nick} created; you are logged in as ${nick}` : `login: you are logged in as ${nick}`);
  }

  /** A command from `from` whose account is known: `register`, or the key service's commands. */
  private command(sink: IrcEventSink, from: Sender, text: string, notice: (target: string, text: string) => void): void {
    if (KeyRegistrations.matches(text)) {
      void this.registrations
        .handle(from.account, text, (line) => notice(from.nick, line))
        .catch((err: unknown) => log.error(`register from ${from.nick} failed`, err));
      return;
    }
    if (from.account !== null && casefold(from.account) !== casefold(from.nick)) {
      notice(from.nick, `on this network keybot serves you only under your account's name: change your nick to ${from.account}`);
      return;
    }
    sink.command(from, text);
  }
}

/** The network's name as its server announces it (ISUPPORT NETWORK), else the server's host. */
export function networkName(irc: IrcClient): string {
  const n = irc.network.name || irc.network.supports('NETWORK');
  return typeof n === 'string' && n !== '' ? n : irc.options.host;
}
