/**
 * Reading a public key: parse exactly one key from armored text and check that sealchat can use it
 * (inspectPublicKey before an account registers it, readPublicKey for a handle to work with).
 */
import {
  KeyStatus,
  makePublicHandle,
  type InspectResult,
  type PublicInternals,
  type PublicKeyHandle,
} from './keys.js';
import { readKeys, type Key, type PublicKey, type SignaturePacket, type Subkey } from './openpgp.js';
import { requireOptions, toDate } from './options.js';
import { MAX_RSA_BITS, MIN_RSA_BITS, extractSigningPublic } from './signing.js';

/** Largest armored key text we parse at all (keys with thousands of certifications are refused). */
export const MAX_ARMORED_KEY_CHARS = 100_000;

function describeAlgorithm(key: Key | Subkey): string {
  const info = key.getAlgorithmInfo();
  if ('bits' in info && info.bits) return `${info.algorithm.replace(/EncryptSign|Encrypt|Sign$/, '')}${info.bits}`;
  if ('curve' in info && info.curve) return String(info.curve);
  return String(info.algorithm);
}

const ENCRYPTION_ALGORITHMS = new Set(['rsaEncryptSign', 'rsaEncrypt', 'x25519']);
const ENCRYPTION_CURVES = new Set(['curve25519Legacy', 'curve25519']);

function encryptionAlgorithmSupported(key: Key | Subkey): string | undefined {
  const info = key.getAlgorithmInfo();
  if (info.algorithm === 'ecdh') {
    return ENCRYPTION_CURVES.has(String(info.curve)) ? undefined : `ECDH on ${String(info.curve)} is not supported; use Curve25519`;
  }
  if (!ENCRYPTION_ALGORITHMS.has(info.algorithm)) return `${info.algorithm} encryption keys are not supported`;
  if (info.algorithm.startsWith('rsa') && (!info.bits || info.bits < MIN_RSA_BITS || info.bits > MAX_RSA_BITS)) {
    return `RSA keys must have ${MIN_RSA_BITS} to ${MAX_RSA_BITS} bits; this one has ${info.bits ?? 'unknown'}`;
  }
  return undefined;
}

/** Parse exactly one key from armored text; undefined (with a reason) otherwise. */
export async function parseOneKey(armored: string): Promise<{ key?: Key; reason?: string }> {
  if (armored.length > MAX_ARMORED_KEY_CHARS) {
    return { reason: `the key is ${armored.length} characters long; at most ${MAX_ARMORED_KEY_CHARS} are accepted` };
  }
  // readKeys() reads only the first armor block of several: count them ourselves.
  const blocks = armored.match(/-----BEGIN PGP [A-Z ]+-----/g)?.length ?? 0;
  if (blocks > 1) return { reason: `the text holds ${blocks} armored blocks; give exactly one key` };
  try {
    const keys = await readKeys({ armoredKeys: armored });
    if (keys.length !== 1) return { reason: `the text holds ${keys.length} keys; give exactly one` };
    return { key: keys[0]! };
  } catch (err) {
    return { reason: `it is not a readable OpenPGP key (${(err as Error).message})` };
  }
}

export type Analysis =
  | { status: KeyStatus.OK; info: InspectResult; state: PublicInternals }
  | { status: Exclude<KeyStatus, KeyStatus.OK>; info: InspectResult };

/** All the checks behind inspectPublicKey / readPublicKey / unlockPrivateKey, on a public key. */
export async function analysePublicKey(key: PublicKey, now: Date): Promise<Analysis> {
  const fingerprint = key.getFingerprint().toLowerCase();
  const userIds = key.getUserIDs();
  const base = { fingerprint, userIds };
  const fail = (status: Exclude<KeyStatus, KeyStatus.OK>, reason: string): Analysis => ({
    status,
    info: { status, ...base, reason },
  });

  const primaryInfo = key.getAlgorithmInfo();
  const primarySupported =
    primaryInfo.algorithm === 'rsaEncryptSign' ||
    primaryInfo.algorithm === 'rsaSign' ||
    primaryInfo.algorithm === 'ed25519' ||
    (primaryInfo.algorithm === 'eddsaLegacy' && primaryInfo.curve === 'ed25519Legacy');
  if (!primarySupported) {
    return fail(
      KeyStatus.UNSUPPORTED_ALGORITHM,
      `The primary key uses ${describeAlgorithm(key)}; sealchat needs an Ed25519 or RSA (${MIN_RSA_BITS}-${MAX_RSA_BITS} bit) key.`,
    );
  }
  if (await key.isRevoked(undefined, undefined, now).catch(() => false)) {
    return fail(KeyStatus.REVOKED, 'The key has been revoked by its owner.');
  }
  const expires = await key.getExpirationTime().catch(() => null);
  if (expires instanceof Date && expires.getTime() <= now.getTime()) {
    return fail(KeyStatus.EXPIRED, `The key expired on ${expires.toISOString()}.`);
  }
  try {
    await key.verifyPrimaryKey(now);
  } catch (err) {
    const message = (err as Error).message;
    if (/revoked/i.test(message)) return fail(KeyStatus.REVOKED, 'The key has been revoked by its owner.');
    if (/expired/i.test(message)) return fail(KeyStatus.EXPIRED, 'The key has expired.');
    return fail(KeyStatus.INVALID, `The key is not valid (${message}).`);
  }

  let encryptionKey: Key | Subkey;
  try {
    encryptionKey = await key.getEncryptionKey(undefined, now);
  } catch {
    return fail(KeyStatus.NO_ENCRYPTION_KEY, 'The key has no valid encryption (sub)key, so nothing can be encrypted to it.');
  }
  const encryptionProblem = encryptionAlgorithmSupported(encryptionKey);
  if (encryptionProblem) return fail(KeyStatus.UNSUPPORTED_ALGORITHM, `The encryption key is unusable: ${encryptionProblem}.`);

  let signingKey: Key | Subkey;
  try {
    signingKey = await key.getSigningKey(undefined, now);
  } catch {
    return fail(KeyStatus.NO_SIGNING_KEY, 'The key has no valid signing (sub)key, so its owner cannot sign messages.');
  }
  const extracted = extractSigningPublic(signingKey.keyPacket);
  if (!extracted.ok) return fail(KeyStatus.UNSUPPORTED_ALGORITHM, `The signing key is unusable: ${extracted.reason}.`);

  const algorithm = `${describeAlgorithm(key)}/${describeAlgorithm(encryptionKey)}`;
  return {
    status: KeyStatus.OK,
    info: { status: KeyStatus.OK, ...base, algorithm, armored: key.armor() },
    state: {
      key,
      signingAlg: extracted.alg,
      signingKeyObject: extracted.keyObject,
      signingPublicKey: extracted.publicKey,
      signatureBytes: extracted.signatureBytes,
    },
  };
}

/**
 * Check a public key someone wants to register: parseable, public (a private key is refused),
 * not expired or revoked at `now`, able to encrypt and to sign, with algorithms sealchat supports
 * (Ed25519/Curve25519 in v4 "legacy" or v6 form, or RSA 2048-4096 bit, as made by openpgp.js or
 * GnuPG). On OK, `armored` is the normalised text to store.
 */
export async function inspectPublicKey(options: { armored: string; now?: Date | number }): Promise<InspectResult> {
  const o = requireOptions(options, 'inspectPublicKey');
  if (typeof o.armored !== 'string') throw new TypeError('inspectPublicKey: options.armored must be a string');
  const now = toDate(o.now, 'inspectPublicKey');
  const armored = o.armored;
  const parsed = await parseOneKey(armored);
  if (!parsed.key) {
    if (/-----BEGIN PGP PRIVATE KEY BLOCK-----/.test(armored)) {
      return { status: KeyStatus.PRIVATE_KEY, reason: 'This is a private key. Never share it: register the public key instead.' };
    }
    return { status: KeyStatus.INVALID, reason: `The text is not a usable public key: ${parsed.reason}.` };
  }
  if (parsed.key.isPrivate()) {
    return {
      status: KeyStatus.PRIVATE_KEY,
      fingerprint: parsed.key.getFingerprint().toLowerCase(),
      reason: 'This is a private key. Never share it: register the public key instead.',
    };
  }
  return (await analysePublicKey(parsed.key as PublicKey, now)).info;
}

/** Result of {@link readPublicKey}: the inspection result plus, when OK, a handle. */
export interface ReadPublicKeyResult extends InspectResult {
  key?: PublicKeyHandle;
  /**
   * When OK: until when (ms since the epoch, exclusive; Infinity for ever) the same armored text
   * is certain to read the same. Judging a key at another time changes the answer only at an
   * instant the key itself names (validityHorizon), so a cache may keep the result that long
   * instead of parsing and verifying the key again (~2 ms) on a timer.
   */
  validUntil?: number;
}

/**
 * The first instant after `now` at which judging `key` could give another answer: a key packet
 * or a signature dated in the future (valid only from then), a signature's own expiry, or a
 * key's expiry as a self-signature sets it (RFC 9580 5.2.3.18 and 5.2.3.13). Every check of
 * analysePublicKey depends on the time through these alone, so before that instant the result
 * stands. Conservative: every signature counts, whether or not it is the one that decides.
 */
function validityHorizon(key: Key, now: number): number {
  let first = Number.POSITIVE_INFINITY;
  const at = (t: number | undefined): void => {
    if (t !== undefined && Number.isFinite(t) && t > now && t < first) first = t;
  };
  const signatures = (packetCreated: number, sigs: SignaturePacket[]): void => {
    for (const sig of sigs) {
      const created = sig.created?.getTime();
      at(created);
      if (created !== undefined && sig.signatureExpirationTime) at(created + sig.signatureExpirationTime * 1000);
      if (sig.keyExpirationTime) at(packetCreated + sig.keyExpirationTime * 1000);
    }
  };
  const primaryCreated = key.keyPacket.created.getTime();
  at(primaryCreated);
  signatures(primaryCreated, key.revocationSignatures);
  // Direct-key signatures (RFC 9580 5.2.1, type 0x1F) can carry the key's expiry too; not in the typings.
  signatures(primaryCreated, (key as unknown as { directSignatures?: SignaturePacket[] }).directSignatures ?? []);
  for (const user of key.users) {
    signatures(primaryCreated, user.selfCertifications);
    signatures(primaryCreated, user.otherCertifications);
    signatures(primaryCreated, user.revocationSignatures);
  }
  for (const sub of key.subkeys) {
    const created = sub.keyPacket.created.getTime();
    at(created);
    signatures(created, sub.bindingSignatures);
    signatures(created, sub.revocationSignatures);
  }
  return first;
}

/**
 * Parse and validate a public key (the same checks as {@link inspectPublicKey}) and return an
 * opaque handle to encrypt to it and to verify its owner's signatures. Validity is judged at `now`.
 */
export async function readPublicKey(options: { armored: string; now?: Date | number }): Promise<ReadPublicKeyResult> {
  const o = requireOptions(options, 'readPublicKey');
  if (typeof o.armored !== 'string') throw new TypeError('readPublicKey: options.armored must be a string');
  const now = toDate(o.now, 'readPublicKey');
  const parsed = await parseOneKey(o.armored);
  if (!parsed.key) return { status: KeyStatus.INVALID, reason: `The text is not a usable public key: ${parsed.reason}.` };
  if (parsed.key.isPrivate()) {
    return { status: KeyStatus.PRIVATE_KEY, reason: 'This is a private key; a public key was expected.' };
  }
  const analysis = await analysePublicKey(parsed.key as PublicKey, now);
  if (analysis.status !== KeyStatus.OK) return analysis.info;
  return { ...analysis.info, key: makePublicHandle(analysis.info, analysis.state), validUntil: validityHorizon(parsed.key, now.getTime()) };
}
