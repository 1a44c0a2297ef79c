/**
 * UserDirectory for an ordinary IRC network with services (InspIRCd + Atheme; docs/NETWORKS.md),
 * over keybot's own IRC connection (it must be the nick that holds op in the rooms).
 *
 * - **Who someone is** comes from the network's accounts, never from a nick alone: the account a
 *   nick is logged in to is learnt from extended-join, account-notify, the account-tag of their
 *   lines and WHOIS (RPL_WHOISACCOUNT, 330), and forgotten on QUIT, NICK and MONITOR offline.
 *   keybot treats someone as the user `name` only while the nick `name` is logged in to the
 *   account `name` (a sealchat user's nick is their account name, as with sealchatd: the key
 *   service keys rooms by nick).
 * - **Keys** come from keybot's own key directory (keystore.ts), filled by proofs of possession
 *   (registration.ts), never from the network.
 * - **Presence**: MONITOR (RPL_MONONLINE 730 / RPL_MONOFFLINE 731) for every account with a key,
 *   each coming online confirmed by WHOIS; ISON polling where the server offers no MONITOR.
 * - **Placing** someone is an INVITE from keybot (op in its `+is` rooms); their companion joins
 *   on an INVITE from keybot. **Removal** is a KICK.
 */
import type { Client as IrcClient, WhoisResult } from 'irc-framework';
import { readPublicKey } from '../../crypto/index.js';
import { casefold } from '../../protocol/names.js';
import { createLogger } from '../../util/log.js';
import {
  DirectoryError,
  type DirectoryRoom,
  type DirectoryUser,
  type Placement,
  type PresenceChange,
  type UserDirectory,
} from '../directory.js';
import { PRESENCE_TRUST_MS, type KeybotLogins } from './accounts.js';
import type { NetworkKeyStore } from './keystore.js';

const log = createLogger('keybot');

export interface NetworkDirectoryOptions {
  /** keybot's own connection (KeybotConnection.irc); listeners are added before the sink's. */
  irc: IrcClient;
  store: NetworkKeyStore;
  /** keybot's services account. */
  serviceAccount: string;
  /** How long WHOIS and INVITE answers may take (default 5 s). */
  replyTimeoutMs?: number;
  /** ISON polling interval where there is no MONITOR (default 30 s). */
  isonIntervalMs?: number;
  /**
   * keybot's own logins (accounts.ts), on a network without services: then who someone is comes
   * from these alone, never from the network's account replies or from a nick.
   */
  logins?: KeybotLogins;
}

/** What keybot knows of a nick: the account it is logged in to (null: none), and how it learnt it. */
interface Known {
  account: string | null;
  /** From WHOIS only (no event will tell us of a change): trusted for a short while. */
  until?: number;
}

/** A WHOIS-learnt account is trusted this long without a shared channel or MONITOR. */
const WHOIS_TRUST_MS = 30_000;
/** Nicks per MONITOR or ISON line (well under 512 bytes with 30-character nicks). */
const NICKS_PER_LINE = 12;

export class NetworkDirectory implements UserDirectory {
  /** On an ordinary network a QUIT is a departure: channels know nothing of accounts. */
  readonly persistentRooms = false;
  private readonly known = new Map<string, Known>();
  /** Accounts keybot has announced online (casefolded → display). */
  private readonly present = new Map<string, string>();
  /** Nicks being watched (MONITOR or ISON), casefolded → display. */
  private readonly watched = new Map<string, string>();
  private readonly whoisInFlight = new Map<string, Promise<string | null | 'offline'>>();
  private readonly presenceListeners: Array<(c: PresenceChange) => void> = [];
  private readonly closeListeners: Array<(err: Error) => void> = [];
  private readonly logoutListeners: Array<(nick: string) => void> = [];
  private readonly timeoutMs: number;
  private isonTimer: NodeJS.Timeout | undefined;
  private isonPending: string[] | undefined;
  private closed = false;

  constructor(private readonly o: NetworkDirectoryOptions) {
    this.timeoutMs = o.replyTimeoutMs ?? 5000;
    const irc = o.irc;
    irc.requestCap(['cap-notify', 'extended-monitor']);
    irc.on('join', (e: { nick: string; account?: string | false }) => {
      if (e.account !== undefined && this.capEnabled('extended-join')) this.learn(e.nick, e.account || null);
    });
    irc.on('account', (e: { nick: string; account: string | false }) => this.learn(e.nick, e.account || null));
    irc.on('privmsg', (e: { nick: string; account?: string }) => this.tagged(e));
    irc.on('notice', (e: { nick?: string; account?: string }) => this.tagged(e));
    irc.on('quit', (e: { nick: string }) => this.gone(e.nick));
    irc.on('nick', (e: { nick: string; new_nick: string }) => {
      this.gone(e.nick);
      if (this.watched.has(casefold(e.new_nick))) void this.confirm(e.new_nick);
    });
    irc.on('users online', (e: { nicks: string[] }) => this.onlineReport(e.nicks));
    irc.on('users offline', (e: { nicks: string[] }) => {
      for (const n of e.nicks) this.gone(n);
    });
    irc.on('close', () => this.onClosed(new Error('the IRC connection closed')));
  }

  /** Once logged in: watch every account that has a key. */
  async start(): Promise<void> {
    const accounts = await this.o.store.accounts();
    this.watch(accounts);
    if (!this.hasMonitor()) {
      this.isonTimer = setInterval(() => this.pollIson(), this.o.isonIntervalMs ?? 30_000);
      this.isonTimer.unref();
      this.pollIson();
    }
  }

  /** Watch these nicks' presence (a new account registered a key, or at start). */
  watch(names: string[]): void {
    const fresh = names.filter((n) => !this.watched.has(casefold(n)) && casefold(n) !== casefold(this.o.serviceAccount));
    for (const n of fresh) this.watched.set(casefold(n), n);
    if (fresh.length === 0 || !this.hasMonitor()) return;
    for (let i = 0; i < fresh.length; i += NICKS_PER_LINE) this.o.irc.raw('MONITOR', '+', fresh.slice(i, i + NICKS_PER_LINE).join(','));
  }

  /** A nick that was logged in as its own account is no longer (logout, another account). */
  onLogout(listener: (nick: string) => void): void {
    this.logoutListeners.push(listener);
  }

  /** Whether `nick` is logged in to the account of the same name, as far as keybot knows now (no WHOIS). */
  isLoggedInAsSelf(nick: string): boolean {
    if (this.o.logins) return casefold(this.o.logins.accountOf(nick) ?? '') === casefold(nick);
    const k = this.known.get(casefold(nick));
    return k !== undefined && k.account !== null && casefold(k.account) === casefold(nick);
  }

  /** keybot's own accounts: `nick` has just logged in (KeybotLogins.bind). */
  loggedIn(nick: string): void {
    if (this.isLoggedInAsSelf(nick)) this.announce(nick, true);
  }

  /**
   * keybot's own accounts: whether `nick` is still the connection that logged in (a WHOIS unless
   * checked within `maxAgeMs`). A login that is not is dropped, as a logout.
   */
  async verifyLogin(nick: string, maxAgeMs = 0): Promise<boolean> {
    const logins = this.o.logins;
    if (!logins || logins.accountOf(nick) === null) return false;
    if (await logins.verify(nick, maxAgeMs)) return true;
    this.loggedOut(nick);
    return false;
  }

  // ---- UserDirectory ---------------------------------------------------------------------

  async lookupUser(name: string): Promise<DirectoryUser | null> {
    const rec = await this.o.store.get(name);
    if (rec?.service) return { name: rec.account, fingerprint: rec.fingerprint, publicKey: rec.publicKey, online: false, service: true };
    const online = await this.onlineAs(name);
    if (!rec) return online ? { name, fingerprint: '', publicKey: undefined, online, service: false } : null;
    return { name: rec.account, fingerprint: rec.fingerprint, publicKey: rec.publicKey, online, service: false };
  }

  async listOnline(): Promise<string[]> {
    return [...this.present.values()];
  }

  async putInRoom(room: string, nick: string): Promise<void> {
    if (casefold(nick) === casefold(this.o.irc.user.nick)) {
      this.o.irc.join(room);
      return;
    }
    await this.invite(room, nick);
  }

  async putManyInRoom(room: string, nicks: string[]): Promise<Placement[]> {
    return Promise.all(
      nicks.map(async (nick): Promise<Placement> => {
        try {
          await this.invite(room, nick);
          return { nick, ok: true };
        } catch (err) {
          if (err instanceof DirectoryError) return { nick, ok: false, error: err };
          throw err;
        }
      }),
    );
  }

  async removeFromRoom(room: string, nick: string, reason: string): Promise<void> {
    this.o.irc.raw('KICK', room, nick, reason);
  }

  /** keybot cannot list secret channels it is not in; rooms do not outlive keybot's session (docs/NETWORKS.md). */
  async listRooms(): Promise<DirectoryRoom[]> {
    return [];
  }

  async publishServiceKey(account: string, armored: string): Promise<DirectoryUser> {
    const read = await readPublicKey({ armored });
    if (!read.key) throw new DirectoryError('refused', `keybot's own key is unusable: ${read.reason ?? read.status}`);
    await this.o.store.setServiceKey(account, armored, read.key.fingerprint);
    return { name: account, fingerprint: read.key.fingerprint, publicKey: armored, online: true, service: true };
  }

  onPresence(listener: (change: PresenceChange) => void): void {
    this.presenceListeners.push(listener);
  }

  onClose(listener: (err: Error) => void): void {
    this.closeListeners.push(listener);
  }

  close(): void {
    this.closed = true;
    clearInterval(this.isonTimer);
    void this.o.store.close();
  }

  // ---- internals -------------------------------------------------------------------------

  private capEnabled(cap: string): boolean {
    return this.o.irc.network.cap.enabled.includes(cap);
  }

  private hasMonitor(): boolean {
    // irc-framework answers undefined for a token the server did not send (ngIRCd has no MONITOR).
    const m = this.o.irc.network.supports('MONITOR');
    return m !== undefined && m !== false;
  }

  private tagged(e: { nick?: string; account?: string }): void {
    if (!e.nick || !this.capEnabled('account-tag')) return;
    this.learn(e.nick, typeof e.account === 'string' && e.account !== '' ? e.account : null);
  }

  /** `nick` is (now) logged in to `account` (null: to none), told by the server as it happened. */
  private learn(nick: string, account: string | null, until?: number): void {
    // With keybot's own accounts the network's word on accounts is not asked for and not taken.
    if (this.o.logins) return;
    const f = casefold(nick);
    const was = this.isLoggedInAsSelf(nick);
    this.known.set(f, { account, ...(until !== undefined ? { until } : {}) });
    const is = this.isLoggedInAsSelf(nick);
    if (is && !was && this.watched.has(f)) this.announce(nick, true);
    if (was && !is) this.loggedOut(nick);
  }

  private loggedOut(nick: string): void {
    this.announce(nick, false);
    for (const l of this.logoutListeners) l(nick);
  }

  /** The nick is gone (QUIT, NICK, MONITOR offline). */
  private gone(nick: string): void {
    const f = casefold(nick);
    this.known.delete(f);
    this.o.logins?.drop(nick);
    if (this.present.has(f)) this.announce(nick, false);
  }

  private announce(nick: string, online: boolean): void {
    const f = casefold(nick);
    if (online === this.present.has(f)) return;
    if (online) this.present.set(f, this.watched.get(f) ?? nick);
    else this.present.delete(f);
    log.debug(`${nick} is ${online ? 'online (logged in as themself)' : 'offline'}`);
    for (const l of this.presenceListeners) l({ name: this.watched.get(f) ?? nick, online });
  }

  /** Is `name` online as the account `name`? What keybot knows, else a WHOIS. */
  private async onlineAs(name: string): Promise<boolean> {
    if (this.o.logins) return this.isLoggedInAsSelf(name) && (await this.verifyLogin(name, PRESENCE_TRUST_MS));
    const k = this.known.get(casefold(name));
    if (k && (k.until === undefined || k.until > Date.now())) return this.isLoggedInAsSelf(name);
    const account = await this.whoisAccount(name);
    return account !== 'offline' && account !== null && casefold(account) === casefold(name);
  }

  /** A watched nick came online: WHOIS tells whether it is logged in to its account. */
  private onlineReport(nicks: string[]): void {
    if (this.isonPending) {
      // An ISON answer: whoever was asked about and is not in it is offline.
      const on = new Set(nicks.filter(Boolean).map((n) => casefold(n)));
      for (const n of this.isonPending) if (!on.has(casefold(n))) this.gone(n);
      this.isonPending = undefined;
    }
    for (const n of nicks) if (n && !this.present.has(casefold(n))) void this.confirm(n);
  }

  private async confirm(nick: string): Promise<void> {
    if (this.o.logins) {
      await this.verifyLogin(nick);
      return;
    }
    await this.whoisAccount(nick).catch(() => undefined);
  }

  /** WHOIS `nick`: the account it is logged in to, null for none, 'offline' if no such nick. */
  private whoisAccount(nick: string): Promise<string | null | 'offline'> {
    const f = casefold(nick);
    const running = this.whoisInFlight.get(f);
    if (running) return running;
    const p = new Promise<string | null | 'offline'>((resolve, reject) => {
      if (this.closed) return reject(new DirectoryError('unavailable', 'the IRC connection is closed'));
      const timer = setTimeout(() => reject(new DirectoryError('unavailable', `no WHOIS answer for ${nick}`)), this.timeoutMs);
      this.o.irc.whois(nick, (r: WhoisResult) => {
        clearTimeout(timer);
        if (r.error) {
          this.gone(nick);
          return resolve('offline');
        }
        const account = typeof r.account === 'string' && r.account !== '' ? r.account : null;
        this.learn(nick, account, Date.now() + WHOIS_TRUST_MS);
        resolve(account);
      });
    }).finally(() => this.whoisInFlight.delete(f));
    this.whoisInFlight.set(f, p);
    return p;
  }

  /** INVITE `nick` to `room`; resolves on RPL_INVITING (341), rejects on an error numeric or silence. */
  private invite(room: string, nick: string): Promise<void> {
    const irc = this.o.irc;
    return new Promise<void>((resolve, reject) => {
      const done = (err?: DirectoryError): void => {
        clearTimeout(timer);
        irc.off('invited', ok);
        irc.off('irc error', bad);
        if (err) reject(err);
        else resolve();
      };
      const ok = (e: { nick: string; channel: string }): void => {
        if (casefold(e.nick) === casefold(nick) && casefold(e.channel) === casefold(room)) done();
      };
      const bad = (e: { error?: string; nick?: string; channel?: string; reason?: string }): void => {
        if (e.error === 'no_such_nick' && casefold(e.nick ?? '') === casefold(nick)) done(new DirectoryError('offline', `${nick} is not online`));
        else if (e.error === 'user_on_channel' && casefold(e.nick ?? '') === casefold(nick)) done();
        else if (e.error === 'chanop_privs_needed' && casefold(e.channel ?? '') === casefold(room)) done(new DirectoryError('refused', `keybot is not an operator of ${room}`));
      };
      const timer = setTimeout(() => done(new DirectoryError('unavailable', `no answer to the INVITE of ${nick} to ${room}`)), this.timeoutMs);
      irc.on('invited', ok);
      irc.on('irc error', bad);
      irc.raw('INVITE', nick, room);
    });
  }

  private pollIson(): void {
    if (this.closed || this.isonPending) return;
    const names = [...this.watched.values()].slice(0, NICKS_PER_LINE * 4);
    if (names.length === 0) return;
    this.isonPending = names;
    this.o.irc.raw('ISON', ...names);
  }

  private onClosed(err: Error): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.isonTimer);
    for (const l of this.closeListeners.splice(0)) l(err);
  }
}
