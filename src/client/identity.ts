/**
 * The user's own key: read it from a file or a string and unlock it once (the passphrase S2K
 * costs ~30 ms; the handle is kept for the session).
 */
import { readFile } from 'node:fs/promises';
import { UnlockStatus, unlockPrivateKey, type PrivateKeyHandle } from '../crypto/index.js';
import { SealClientError } from './errors.js';

/** Where the private key comes from. */
export interface PrivateKeySource {
  /** Armored private key text. */
  privateKeyArmored?: string;
  /** A file holding it (read when no armored text is given). */
  privateKeyFile?: string;
  passphrase?: string;
}

/** Read and unlock the private key; throws SealClientError('key', ...) with a reason a user can act on. */
export async function loadPrivateKey(source: PrivateKeySource): Promise<PrivateKeyHandle> {
  let armored = source.privateKeyArmored;
  if (armored === undefined) {
    if (!source.privateKeyFile) throw new SealClientError('key', 'no private key given (privateKeyArmored or privateKeyFile)');
    try {
      armored = await readFile(source.privateKeyFile, 'utf8');
    } catch (err) {
      throw new SealClientError('key', `cannot read the private key file ${source.privateKeyFile}: ${(err as Error).message}`);
    }
  }
  const r = await unlockPrivateKey({ armored, ...(source.passphrase !== undefined ? { passphrase: source.passphrase } : {}) });
  if (r.status === UnlockStatus.OK && r.key) return r.key;
  throw new SealClientError('key', `cannot use the private key: ${unlockFailure(r.status)}${r.reason ? ` (${r.reason})` : ''}`);
}

/** Why unlocking a private key failed, in words a user can act on (the agent says it too). */
export function unlockFailure(status: UnlockStatus): string {
  const why: Record<string, string> = {
    [UnlockStatus.INVALID]: 'it is not a readable OpenPGP private key',
    [UnlockStatus.NOT_PRIVATE]: 'it is a public key; the private key is needed',
    [UnlockStatus.PASSPHRASE_REQUIRED]: 'it is protected by a passphrase and none was given',
    [UnlockStatus.BAD_PASSPHRASE]: 'the passphrase is wrong',
    [UnlockStatus.UNUSABLE]: 'the key cannot be used',
  };
  return why[status] ?? status;
}
