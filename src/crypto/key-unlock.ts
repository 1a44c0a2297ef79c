/**
 * Unlocking a private key: parse it, decrypt it with its passphrase, check it like a public key and
 * keep it as an opaque PrivateKeyHandle (keys.ts) for the rest of the session.
 */
import { analysePublicKey, parseOneKey } from './key-read.js';
import { KeyStatus, makePrivateHandle, makePublicHandle, type PrivateKeyHandle } from './keys.js';
import { decryptKey, type Key, type PrivateKey, type Subkey } from './openpgp.js';
import { requireOptions, toDate } from './options.js';
import { extractSigningPrivate } from './signing.js';

/** Outcome of unlocking a private key. */
export enum UnlockStatus {
  OK = 'ok',
  /** Not parseable as exactly one OpenPGP key. */
  INVALID = 'invalid',
  /** A public key was given. */
  NOT_PRIVATE = 'not_private',
  /** The key is passphrase-protected and no passphrase was given. */
  PASSPHRASE_REQUIRED = 'passphrase_required',
  BAD_PASSPHRASE = 'bad_passphrase',
  /** The key unlocked but cannot be used (expired, revoked, unsupported...): see `keyStatus`. */
  UNUSABLE = 'unusable',
}

/** Result of {@link unlockPrivateKey}. */
export interface UnlockResult {
  status: UnlockStatus;
  key?: PrivateKeyHandle;
  /** For UNUSABLE: what is wrong with the key itself. */
  keyStatus?: KeyStatus;
  reason?: string;
}

/**
 * Parse a private key, decrypt it with `passphrase` if it is protected, check that it is usable at
 * `now` (the same checks as inspectPublicKey on its public half) and return a handle that signs,
 * decrypts envelopes and signs room messages without further unlocking. Cost: ~30 ms for an
 * openpgp.js-protected key, but ~3 s for a key protected by GnuPG with its default S2K count
 * (calibrated for native code; openpgp.js hashes in JavaScript), so unlock once per session.
 */
export async function unlockPrivateKey(options: {
  armored: string;
  passphrase?: string;
  now?: Date | number;
}): Promise<UnlockResult> {
  const o = requireOptions(options, 'unlockPrivateKey');
  if (typeof o.armored !== 'string') throw new TypeError('unlockPrivateKey: options.armored must be a string');
  if (o.passphrase !== undefined && typeof o.passphrase !== 'string') {
    throw new TypeError('unlockPrivateKey: options.passphrase must be a string when given');
  }
  const now = toDate(o.now, 'unlockPrivateKey');
  const parsed = await parseOneKey(o.armored);
  if (!parsed.key) return { status: UnlockStatus.INVALID, reason: `The text is not a usable private key: ${parsed.reason}.` };
  if (!parsed.key.isPrivate()) return { status: UnlockStatus.NOT_PRIVATE, reason: 'This is a public key; the private key is needed.' };

  let key = parsed.key as PrivateKey;
  if (!key.isDecrypted()) {
    if (o.passphrase === undefined) {
      return { status: UnlockStatus.PASSPHRASE_REQUIRED, reason: 'The private key is protected by a passphrase.' };
    }
    try {
      key = await decryptKey({ privateKey: key, passphrase: o.passphrase });
    } catch {
      return { status: UnlockStatus.BAD_PASSPHRASE, reason: 'The passphrase does not unlock this key.' };
    }
  }

  const analysis = await analysePublicKey(key.toPublic(), now);
  if (analysis.status !== KeyStatus.OK) {
    return { status: UnlockStatus.UNUSABLE, keyStatus: analysis.status, reason: analysis.info.reason };
  }
  const unusable = (reason: string): UnlockResult => ({
    status: UnlockStatus.UNUSABLE,
    keyStatus: KeyStatus.NO_SIGNING_KEY,
    reason,
  });
  let signingKey: Key | Subkey;
  try {
    signingKey = await key.getSigningKey(undefined, now);
  } catch {
    return unusable('The private key has no usable signing key.');
  }
  const packet = signingKey.keyPacket as { isDummy?: () => boolean } & typeof signingKey.keyPacket;
  if (packet.isDummy?.()) return unusable('The secret part of the signing key is missing (a stub exported by GnuPG).');
  const extracted = extractSigningPrivate(packet, analysis.state.signingKeyObject);
  if (!extracted.ok) return unusable(`The signing key is unusable: ${extracted.reason}.`);

  const publicHandle = makePublicHandle(analysis.info, analysis.state);
  const handle = makePrivateHandle({
    key,
    signingAlg: extracted.alg,
    signingKeyObject: extracted.keyObject,
    publicHandle,
  });
  return { status: UnlockStatus.OK, key: handle };
}
