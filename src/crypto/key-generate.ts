/**
 * Generating a user key pair of a kind sealchat accepts (`sealchat keygen`, keybot's own identity).
 */
import { generateKey } from './openpgp.js';
import { requireOptions, toDate } from './options.js';

/** Options of {@link generateUserKey}. */
export interface GenerateUserKeyOptions {
  /** Shown in the key's user ID; usually the account name. */
  name: string;
  email?: string;
  /** Encrypts the private key (S2K); omit for an unprotected key. */
  passphrase?: string;
  /**
   * 'ecc' (default): v4 Ed25519 + Curve25519 ("legacy" IDs), readable by every OpenPGP tool.
   * 'curve25519': RFC 9580 Ed25519/X25519 IDs (v4 key), a little smaller, needs newer tools.
   * 'rsa': RSA `rsaBits` (default 3072, like GnuPG).
   */
  type?: 'ecc' | 'curve25519' | 'rsa';
  rsaBits?: 2048 | 3072 | 4096;
  /** Creation time (default: now). */
  now?: Date | number;
  /** Seconds until the key expires (default: never). */
  keyExpirationTime?: number;
}

/** A freshly generated user key pair. */
export interface GeneratedUserKey {
  privateArmored: string;
  publicArmored: string;
  /** Primary key fingerprint, lowercase hex. */
  fingerprint: string;
}

/** Generate a user key pair that sealchat accepts (see {@link GenerateUserKeyOptions}). */
export async function generateUserKey(options: GenerateUserKeyOptions): Promise<GeneratedUserKey> {
  const o = requireOptions(options, 'generateUserKey') as Partial<GenerateUserKeyOptions>;
  if (typeof o.name !== 'string' || o.name.length === 0 || o.name.length > 256 || /[\x00-\x1f\x7f<>]/.test(o.name)) {
    throw new TypeError('generateUserKey: options.name must be 1-256 printable characters without < or >');
  }
  const type = o.type ?? 'ecc';
  if (type !== 'ecc' && type !== 'curve25519' && type !== 'rsa') {
    throw new TypeError("generateUserKey: options.type must be 'ecc', 'curve25519' or 'rsa'");
  }
  const rsaBits = o.rsaBits ?? 3072;
  if (![2048, 3072, 4096].includes(rsaBits)) throw new TypeError('generateUserKey: options.rsaBits must be 2048, 3072 or 4096');
  if (o.passphrase !== undefined && (typeof o.passphrase !== 'string' || o.passphrase.length === 0)) {
    throw new TypeError('generateUserKey: options.passphrase must be a non-empty string when given');
  }
  const date = toDate(o.now, 'generateUserKey');
  const { privateKey, publicKey } = await generateKey({
    userIDs: [o.email ? { name: o.name, email: o.email } : { name: o.name }],
    type,
    ...(type === 'rsa' ? { rsaBits } : {}),
    ...(o.passphrase !== undefined ? { passphrase: o.passphrase } : {}),
    ...(o.keyExpirationTime !== undefined ? { keyExpirationTime: o.keyExpirationTime } : {}),
    date,
    format: 'object',
  });
  return {
    privateArmored: privateKey.armor(),
    publicArmored: publicKey.armor(),
    fingerprint: publicKey.getFingerprint().toLowerCase(),
  };
}
