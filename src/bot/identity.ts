/**
 * keybot's identity on disk: its login (`<dataDir>/keybot.credentials`, written by the daemon)
 * and its own OpenPGP key pair (`<dataDir>/keybot.key.asc`, created here on first start).
 *
 * The key pair is what members pin: replacing it silently would make every companion refuse
 * keybot's envelopes, so an existing file that cannot be used is an error, never a reason to make
 * a new key. The private key is stored unencrypted with mode 0600, like an ssh host key: a
 * passphrase would have to sit next to it for keybot to start unattended.
 */
import { chmod, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { generateUserKey, unlockPrivateKey, UnlockStatus, type PrivateKeyHandle } from '../crypto/index.js';
import { KEYBOT_CREDENTIALS_FILE, KEYBOT_KEY_FILE } from '../protocol/files.js';
import { KEYBOT_NICK } from '../protocol/names.js';
import { createLogger } from '../util/log.js';

const log = createLogger('keybot');


export class IdentityError extends Error {
  override name = 'IdentityError';
}

export interface KeybotIdentity {
  key: PrivateKeyHandle;
  /** Armored public key, to register with the directory. */
  publicArmored: string;
  fingerprint: string;
  file: string;
  /** True if this call generated the key pair. */
  created: boolean;
}

/** Load keybot's key pair, or make one on first start. */
export async function loadOrCreateIdentity(dataDir: string): Promise<KeybotIdentity> {
  const file = path.join(dataDir, KEYBOT_KEY_FILE);
  let armored: string | undefined;
  try {
    armored = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new IdentityError(`cannot read ${file}: ${(err as Error).message}`);
  }
  let created = false;
  if (armored === undefined) {
    const generated = await generateUserKey({ name: 'keybot (sealchat key service)' });
    await writeSecretFile(file, generated.privateArmored);
    armored = generated.privateArmored;
    created = true;
    log.info(`generated keybot's key pair in ${file}`);
  } else {
    const st = await stat(file);
    if ((st.mode & 0o077) !== 0) {
      log.warn(`${file} was readable by others (mode ${(st.mode & 0o777).toString(8)}); setting 0600`);
      await chmod(file, 0o600);
    }
  }
  const unlocked = await unlockPrivateKey({ armored });
  if (unlocked.status !== UnlockStatus.OK || !unlocked.key) {
    throw new IdentityError(
      `${file} does not hold a usable private key (${unlocked.reason ?? unlocked.status}); ` +
        'restore it from a backup (members pinned its fingerprint), or move it away to make a new one',
    );
  }
  return { key: unlocked.key, publicArmored: unlocked.key.publicKey.armored, fingerprint: unlocked.key.fingerprint, file, created };
}

export interface ServiceCredentials {
  account: string;
  password: string;
}

/** The service account's login, as the daemon wrote it. */
export async function readServiceCredentials(dataDir: string): Promise<ServiceCredentials> {
  const file = path.join(dataDir, KEYBOT_CREDENTIALS_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new IdentityError(
      code === 'ENOENT'
        ? `no ${file}: start sealchatd (it creates the keybot account) with the same --data directory first`
        : `cannot read ${file}: ${(err as Error).message}`,
    );
  }
  let parsed: { account?: unknown; password?: unknown };
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    throw new IdentityError(`${file} is not valid JSON; restart sealchatd to rewrite it`);
  }
  if (typeof parsed.password !== 'string' || parsed.password === '') throw new IdentityError(`${file} has no password; restart sealchatd to rewrite it`);
  const account = typeof parsed.account === 'string' && parsed.account !== '' ? parsed.account : KEYBOT_NICK;
  return { account, password: parsed.password };
}

/** Write-then-rename, created 0600, so the secret is never briefly readable or half-written. */
async function writeSecretFile(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await unlink(tmp).catch(() => {});
  try {
    await writeFile(tmp, text, { mode: 0o600, flag: 'wx' });
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw new IdentityError(`cannot write ${file}: ${(err as Error).message}`);
  }
}
