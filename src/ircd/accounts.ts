/**
 * The account service: the only place passwords are hashed or checked, and the only writer of
 * account records. Every change is validated in full before anything is written, so a failed
 * call leaves the store as it was.
 *
 * Passwords: argon2id (src/util/password.ts).
 * Hash jobs run on libuv's thread pool; a semaphore bounds how many run at once, so a login
 * flood queues instead of taking every pool thread (DNS, fs) and all memory.
 */

import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { inspectPublicKey, KeyStatus } from '../crypto/index.js';
import type { ControlErrorCode } from '../protocol/control.js';
import { casefold, isValidAccountName, KEYBOT_NICK } from '../protocol/names.js';
import { KEYBOT_CREDENTIALS_FILE } from '../protocol/files.js';
import type { AccountRecord, AccountStore } from './store/types.js';
import { createLogger } from '../util/log.js';
import { hashPassword as argon2Hash, needsRehash, verifyPassword } from '../util/password.js';
import { KeyedMutex, Semaphore } from '../util/semaphore.js';

const log = createLogger('accounts');

/**
 * Longest password accepted, in UTF-8 bytes: what one SASL PLAIN response carries (at most 1200
 * base64 characters, commands/sasl.ts: 900 bytes, room for two 30-byte names and the NULs).
 * PASS fits at most about 470 bytes of password in its 512-byte line, so longer passwords need
 * SASL, which sealchat's companions and every common client use. argon2's work barely depends
 * on the password's length, so the bound is about the wire, not the hashing.
 */
export const MAX_PASSWORD_BYTES = 800;


/** A refused account operation; `code` is what the control socket reports. */
export class AccountError extends Error {
  override name = 'AccountError';
  constructor(
    readonly code: ControlErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface AccountsOptions {
  /** Concurrent password-hash jobs (config limits.hashConcurrency). */
  hashConcurrency?: number;
}

export interface ServiceAccount {
  record: AccountRecord;
  /** Where keybot reads its password. */
  credentialsFile: string;
  /** True if this call created the account or gave it a new password. */
  changed: boolean;
}

export class Accounts {
  private readonly hashJobs: Semaphore;
  private readonly locks = new KeyedMutex();
  private readonly dummyHash: Promise<string>;

  constructor(
    readonly store: AccountStore,
    opts: AccountsOptions = {},
  ) {
    this.hashJobs = new Semaphore(opts.hashConcurrency ?? 4);
    // Made up front, so even the first failed login with an unknown name costs one hash, not two.
    this.dummyHash = this.hashPassword(randomBytes(16).toString('hex'));
    this.dummyHash.catch(() => {}); // surfaced by the authenticate() that awaits it
  }

  /** Hash a password with the service's argon2id parameters (bounded concurrency). */
  hashPassword(password: string): Promise<string> {
    return this.hashJobs.run(() => argon2Hash(password));
  }

  /** Check a password against any argon2 hash (server password, OPER); false on a malformed hash. */
  verifyPasswordHash(hash: string, password: string): Promise<boolean> {
    return this.hashJobs.run(() => verifyPassword(hash, password));
  }

  /**
   * The account if `password` is right, else null. An unknown account and a wrong password are
   * indistinguishable, in result and in time: an unknown name is checked against a dummy hash
   * of the same cost (argon2.verify compares in constant time).
   */
  async authenticate(name: string, password: string): Promise<AccountRecord | null> {
    // Names and passwords that could never be registered fail at once: that reveals only the
    // public naming rules, never whether an account exists.
    if (!isValidAccountName(name) || passwordProblem(password) !== null) return null;
    const record = await this.store.get(casefold(name));
    const hash = record?.passwordHash ?? (await this.getDummyHash());
    const ok = await this.verifyPasswordHash(hash, password);
    if (!record || !ok) return null;
    if (needsRehash(record.passwordHash)) this.rehashInBackground(record, password);
    return record;
  }

  async get(name: string): Promise<AccountRecord | null> {
    if (!isValidAccountName(name)) return null;
    return (await this.store.get(casefold(name))) ?? null;
  }

  /** Every account, sorted by folded name. */
  async list(): Promise<AccountRecord[]> {
    const all = await this.store.list();
    return all.sort((a, b) => (casefold(a.name) < casefold(b.name) ? -1 : 1));
  }

  async add(opts: { name: string; password: string; publicKey: string }): Promise<AccountRecord> {
    const { name } = opts;
    checkName(name);
    if (casefold(name) === KEYBOT_NICK) {
      throw new AccountError('forbidden', `the name ${KEYBOT_NICK} is reserved for the key service`);
    }
    checkPassword(opts.password);
    const key = await checkKey(opts.publicKey);
    // Fail fast on a duplicate before paying for a hash; re-checked under the lock below.
    await this.assertFree(name);
    const passwordHash = await this.hashPassword(opts.password);
    return this.locks.run(casefold(name), async () => {
      await this.assertFree(name);
      const now = new Date().toISOString();
      const record: AccountRecord = { name, passwordHash, publicKey: key.armored, fingerprint: key.fingerprint, createdAt: now, updatedAt: now };
      await this.store.put(record);
      log.info(`account ${name} added (key ${key.fingerprint})`);
      return record;
    });
  }

  async setPassword(name: string, password: string): Promise<AccountRecord> {
    checkName(name);
    checkPassword(password);
    await this.mustGet(name);
    const passwordHash = await this.hashPassword(password);
    const record = await this.update(name, (r) => ({ ...r, passwordHash }));
    log.info(`account ${record.name}: password changed`);
    return record;
  }

  async setKey(name: string, publicKey: string): Promise<AccountRecord> {
    checkName(name);
    const key = await checkKey(publicKey);
    const record = await this.update(name, (r) => ({ ...r, publicKey: key.armored, fingerprint: key.fingerprint }));
    log.info(`account ${record.name}: key set to ${key.fingerprint}`);
    return record;
  }

  async remove(name: string): Promise<AccountRecord> {
    checkName(name);
    return this.locks.run(casefold(name), async () => {
      const record = await this.mustGet(name);
      if (record.service) throw new AccountError('forbidden', `${record.name} is the key service's account and cannot be removed`);
      await this.store.delete(casefold(name));
      log.info(`account ${record.name} removed`);
      return record;
    });
  }

  /**
   * Make sure the keybot service account exists and `<dataDir>/keybot.credentials` (mode 0600)
   * holds its password. First start: create both. Account and a file whose password matches:
   * keep them. File lost, unreadable or stale: rotate the password and rewrite the file. The
   * file is written (atomically) before the store, so a crash in between heals on next start.
   */
  async ensureServiceAccount(dataDir: string): Promise<ServiceAccount> {
    const credentialsFile = path.join(dataDir, KEYBOT_CREDENTIALS_FILE);
    const existing = await this.store.get(KEYBOT_NICK);
    const saved = await readCredentials(credentialsFile);
    if (existing && saved !== null && (await this.verifyPasswordHash(existing.passwordHash, saved))) {
      if (existing.service) return { record: existing, credentialsFile, changed: false };
      const record = await this.update(KEYBOT_NICK, (r) => ({ ...r, service: true }));
      return { record, credentialsFile, changed: true };
    }
    const password = randomBytes(24).toString('base64url');
    const passwordHash = await this.hashPassword(password);
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    await writeCredentials(credentialsFile, password);
    let record: AccountRecord;
    if (existing) {
      record = await this.update(KEYBOT_NICK, (r) => ({ ...r, passwordHash, service: true }));
      log.warn(`keybot credentials ${saved === null ? 'missing' : 'stale'}: rotated its password into ${credentialsFile}`);
    } else {
      const now = new Date().toISOString();
      record = { name: KEYBOT_NICK, passwordHash, publicKey: null, fingerprint: null, service: true, createdAt: now, updatedAt: now };
      await this.locks.run(KEYBOT_NICK, () => this.store.put(record));
      log.info(`created the ${KEYBOT_NICK} service account; credentials in ${credentialsFile}`);
    }
    return { record, credentialsFile, changed: true };
  }

  private async assertFree(name: string): Promise<void> {
    const found = await this.store.get(casefold(name));
    if (found) throw new AccountError('exists', `account ${found.name} already exists`);
  }

  private async mustGet(name: string): Promise<AccountRecord> {
    const found = await this.store.get(casefold(name));
    if (!found) throw new AccountError('not_found', `no account named ${name}`);
    return found;
  }

  /** Read-modify-write one record under its lock; updatedAt is set here. */
  private update(name: string, change: (r: AccountRecord) => AccountRecord): Promise<AccountRecord> {
    return this.locks.run(casefold(name), async () => {
      const current = await this.mustGet(name);
      const next = { ...change(current), name: current.name, createdAt: current.createdAt, updatedAt: new Date().toISOString() };
      await this.store.put(next);
      return next;
    });
  }

  private getDummyHash(): Promise<string> {
    return this.dummyHash;
  }

  private rehashInBackground(record: AccountRecord, password: string): void {
    void (async () => {
      const passwordHash = await this.hashPassword(password);
      await this.update(record.name, (r) => (r.passwordHash === record.passwordHash ? { ...r, passwordHash } : r));
    })().catch((err) => log.warn(`rehash of ${record.name} failed`, err));
  }
}

/** Hash a password the way the service does (for `sealchatd hash-password`). */
export function hashPassword(password: string): Promise<string> {
  checkPassword(password);
  return argon2Hash(password);
}

/** Why a password is unacceptable, or null. */
export function passwordProblem(password: string): string | null {
  if (typeof password !== 'string' || password.length === 0) return 'the password must not be empty';
  if (Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES) return `the password must be at most ${MAX_PASSWORD_BYTES} bytes`;
  // PASS and SASL PLAIN cannot carry these (RFC 2812 §2.3; SASL PLAIN uses NUL as separator),
  // so such a password could never be used to log in.
  if (/[\0\r\n]/.test(password)) return 'the password must not contain NUL, CR or LF';
  return null;
}

function checkPassword(password: string): void {
  const problem = passwordProblem(password);
  if (problem !== null) throw new AccountError('invalid_password', problem);
}

function checkName(name: string): void {
  if (typeof name !== 'string' || !isValidAccountName(name)) {
    throw new AccountError('invalid_name', `invalid account name ${JSON.stringify(name)}: 1-30 characters, a letter first, then letters, digits, _ or -`);
  }
}

/** Fallbacks for a refused key without a reason from src/crypto (it normally gives one). */
const KEY_PROBLEMS: Partial<Record<KeyStatus, string>> = {
  [KeyStatus.INVALID]: 'The text is not a usable OpenPGP public key.',
  [KeyStatus.PRIVATE_KEY]: 'This is a private key. Never share it: register the public key instead.',
  [KeyStatus.EXPIRED]: 'The key has expired.',
  [KeyStatus.REVOKED]: 'The key has been revoked by its owner.',
  [KeyStatus.NO_ENCRYPTION_KEY]: 'The key has no valid encryption (sub)key.',
  [KeyStatus.NO_SIGNING_KEY]: 'The key has no valid signing (sub)key.',
  [KeyStatus.UNSUPPORTED_ALGORITHM]: 'The key uses an algorithm sealchat does not support.',
};

/** Validate a public key through src/crypto; the normalised armor and fingerprint to store. */
async function checkKey(armored: string): Promise<{ armored: string; fingerprint: string }> {
  if (typeof armored !== 'string' || armored.trim() === '') throw new AccountError('invalid_key', 'A public key is required.');
  const result = await inspectPublicKey({ armored });
  if (result.status !== KeyStatus.OK || !result.fingerprint) {
    throw new AccountError('invalid_key', result.reason ?? KEY_PROBLEMS[result.status] ?? 'The key was refused.');
  }
  return { armored: result.armored ?? armored, fingerprint: result.fingerprint.toLowerCase() };
}

async function readCredentials(file: string): Promise<string | null> {
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as { account?: unknown; password?: unknown };
    if (parsed.account === KEYBOT_NICK && typeof parsed.password === 'string' && parsed.password !== '') return parsed.password;
    return null;
  } catch {
    return null;
  }
}

/** Write-then-rename so a crash never leaves a truncated file; the mode is set at creation. */
async function writeCredentials(file: string, password: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await unlink(tmp).catch(() => {}); // a leftover from a crash would keep its old mode
  try {
    await writeFile(tmp, JSON.stringify({ account: KEYBOT_NICK, password }) + '\n', { mode: 0o600, flag: 'wx' });
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}
