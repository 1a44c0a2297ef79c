/**
 * keybot's own accounts, for a network without services (ngIRCd; docs/NETWORKS.md "ngIRCd"):
 * there nobody vouches for who a nick is, so keybot keeps the accounts itself.
 *
 * - **An account** is a name (the nick that created it) and a password, kept as an argon2id hash
 *   (src/util/password.ts, as the daemon's accounts) in keybot's data dir (`keybot.keys.sqlite`, table `keybot_accounts`). `login <password>` from a
 *   nick logs that nick in to the account of its own name, creating the account if there is none
 *   (first come, as NickServ REGISTER). Failed logins lock the account for a while.
 * - **A login** is bound to one connection: keybot records the nick's user@host and signon time
 *   (WHOIS, RPL_WHOISUSER 311 and RPL_WHOISIDLE 317) at login, and a login is good only while the
 *   nick still shows the same ones. keybot sees a QUIT only where it shares a channel, so a nick
 *   left by its owner can be taken by anyone; the signon check (a WHOIS before every command and
 *   JOIN is relied on) is what keeps a taker from inheriting the login.
 *
 * The password decides who counts as the user `name` on this network (presence, commands, the
 * account `register` binds a key to); the key decides what they can read and sign, exactly as
 * with services accounts (keystore.ts: a key change needs the old key or the cool-down).
 */
import { scrypt as scryptCb, timingSafeEqual } from 'node:crypto';
import path from 'node:path';
import KeyvSqlite from '@keyv/sqlite';
import Keyv from 'keyv';
import type { Client as IrcClient, WhoisResult } from 'irc-framework';
import { casefold } from '../../protocol/names.js';
import { createLogger } from '../../util/log.js';
import { hashPassword, needsRehash, verifyPassword } from '../../util/password.js';
import { NETWORK_KEYS_FILE } from './keystore.js';

const log = createLogger('keybot');

/** Failed logins before an account is locked, and for how long. */
const MAX_FAILURES = 5;
const LOCK_MS = 60_000;
/**
 * For presence only (whether to INVITE someone), a login verified by WHOIS is trusted this long
 * before the next WHOIS. Commands and JOINs are checked afresh: a nick is retaken in under a second.
 */
export const PRESENCE_TRUST_MS = 10_000;
const MIN_PASSWORD = 8;

interface StoredAccount {
  account: string;
  /** argon2id (PHC string); `scrypt$N$r$p$salt$hash` in accounts made before keybot used argon2id. */
  hash: string;
  createdAt: number;
}

/**
 * Whether `password` matches a stored hash: argon2id, or scrypt for an account made before keybot
 * used argon2id (`scrypt$N$r$p$salt$hash`; rehashed at its next good login).
 */
async function checkPassword(password: string, stored: string): Promise<boolean> {
  if (!stored.startsWith('scrypt$')) return verifyPassword(stored, password);
  const [, n, r, p, salt, hash] = stored.split('$');
  if (!salt || !hash) return false;
  const want = Buffer.from(hash, 'base64');
  const got = await new Promise<Buffer>((resolve, reject) =>
    scryptCb(password, Buffer.from(salt, 'base64'), want.length, { N: Number(n), r: Number(r), p: Number(p), maxmem: 64 * 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key))),
  ).catch(() => undefined);
  return got !== undefined && got.length === want.length && timingSafeEqual(got, want);
}

export type LoginOutcome =
  | { ok: true; created: boolean }
  | { ok: false; reason: string };

/** The accounts and their password hashes. */
export class KeybotAccounts {
  private readonly failures = new Map<string, { count: number; lockedUntil: number }>();

  private constructor(
    private readonly kv: Keyv<StoredAccount>,
    private readonly adapter: { disconnect(): Promise<void> },
    private readonly now: () => number,
  ) {}

  /** Open the accounts table in `<dataDir>/keybot.keys.sqlite` (the key store made the file 0600). */
  static async open(dataDir: string, now: () => number = Date.now): Promise<KeybotAccounts> {
    const file = path.join(dataDir, NETWORK_KEYS_FILE);
    const adapter = new KeyvSqlite({ uri: `sqlite://${file}`, table: 'keybot_accounts', busyTimeout: 10_000 });
    adapter.on('error', () => {});
    const kv = new Keyv<StoredAccount>({ store: adapter, namespace: 'accounts', throwOnErrors: true });
    kv.on('error', (err: unknown) => log.debug(`account store: ${(err as Error)?.message ?? String(err)}`));
    return new KeybotAccounts(kv, adapter, now);
  }

  /** Log in to `account` with `password`, creating the account if it does not exist. */
  async login(account: string, password: string): Promise<LoginOutcome> {
    const f = casefold(account);
    const now = this.now();
    const fail = this.failures.get(f);
    if (fail && fail.lockedUntil > now) {
      return { ok: false, reason: `too many wrong passwords for ${account}; try again in ${Math.ceil((fail.lockedUntil - now) / 1000)} s` };
    }
    const rec = await this.kv.get(f);
    if (!rec) {
      if (password.length < MIN_PASSWORD) return { ok: false, reason: `a new account needs a password of at least ${MIN_PASSWORD} characters` };
      await this.kv.set(f, { account, hash: await hashPassword(password), createdAt: now });
      log.info(`${account}: keybot account created`);
      return { ok: true, created: true };
    }
    if (await checkPassword(password, rec.hash)) {
      this.failures.delete(f);
      if (needsRehash(rec.hash)) await this.kv.set(f, { ...rec, hash: await hashPassword(password) });
      return { ok: true, created: false };
    }
    const count = (fail?.count ?? 0) + 1;
    this.failures.set(f, { count: count >= MAX_FAILURES ? 0 : count, lockedUntil: count >= MAX_FAILURES ? now + LOCK_MS : 0 });
    log.warn(`${account}: wrong keybot password (${count})`);
    return { ok: false, reason: `wrong password for the keybot account ${account}` };
  }

  async close(): Promise<void> {
    await this.adapter.disconnect().catch(() => undefined);
  }
}

/** The connection a login is bound to. */
interface Login {
  account: string;
  user: string;
  host: string;
  signon: string;
  verifiedAt: number;
}

/**
 * Who is logged in to which keybot account, bound to their connection. Nothing here trusts a
 * nick alone: a login is made after a WHOIS of the nick, and re-checked by WHOIS before it is
 * relied on (presence may rely on a check up to `PRESENCE_TRUST_MS` old).
 */
export class KeybotLogins {
  private readonly logins = new Map<string, Login>();
  private readonly verifying = new Map<string, Promise<boolean>>();

  constructor(
    private readonly irc: IrcClient,
    private readonly whoisTimeoutMs = 5000,
    private readonly now: () => number = Date.now,
  ) {}

  /** The account `nick` is logged in to as far as keybot knows now (no WHOIS), else null. */
  accountOf(nick: string): string | null {
    return this.logins.get(casefold(nick))?.account ?? null;
  }

  /** Bind a login of `nick` to `account` to the connection WHOIS shows now; false if the nick is gone. */
  async bind(nick: string, account: string): Promise<boolean> {
    const w = await this.whois(nick);
    if (!w) return false;
    this.logins.set(casefold(nick), { account, ...w, verifiedAt: this.now() });
    return true;
  }

  /**
   * Whether `nick` is still the connection that logged in (false: the login is dropped now, for
   * the caller to announce). A check younger than `maxAgeMs` is trusted; otherwise a WHOIS.
   */
  async verify(nick: string, maxAgeMs = 0): Promise<boolean> {
    const f = casefold(nick);
    const l = this.logins.get(f);
    if (!l) return false;
    if (maxAgeMs > 0 && this.now() - l.verifiedAt < maxAgeMs) return true;
    const running = this.verifying.get(f);
    if (running) return running;
    const p = this.whois(nick)
      .then((w) => {
        const cur = this.logins.get(f);
        if (cur !== l) return cur !== undefined;
        if (w && w.user === l.user && w.host === l.host && w.signon === l.signon) {
          l.verifiedAt = this.now();
          return true;
        }
        log.warn(`${nick}: no longer the connection that logged in to ${l.account} (${w ? 'another signon' : 'gone'}); login dropped`);
        this.logins.delete(f);
        return false;
      })
      .finally(() => this.verifying.delete(f));
    this.verifying.set(f, p);
    return p;
  }

  /** The nick is gone (QUIT, NICK, KILL, ISON absence): its login ends. Whether there was one. */
  drop(nick: string): boolean {
    return this.logins.delete(casefold(nick));
  }

  /** Everyone logged in now (display names of their accounts). */
  accounts(): string[] {
    return [...this.logins.values()].map((l) => l.account);
  }

  clear(): void {
    this.logins.clear();
  }

  private whois(nick: string): Promise<{ user: string; host: string; signon: string } | undefined> {
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(undefined), this.whoisTimeoutMs);
      this.irc.whois(nick, (r: WhoisResult & { logon?: string }) => {
        clearTimeout(t);
        if (r.error || !r.ident || !r.hostname) return resolve(undefined);
        // A server that sends no signon time (RPL_WHOISIDLE without it) binds to user@host only.
        resolve({ user: r.ident, host: r.hostname, signon: String(r.logon ?? '') });
      });
    });
  }
}
