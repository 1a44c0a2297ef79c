/**
 * User keys: validate a public key before an account may register it, generate keys, unlock a
 * private key once and keep it as an opaque handle.
 *
 * Handles are plain frozen objects whose crypto state (the parsed openpgp.js key and the cached
 * node:crypto KeyObjects) lives in a module-private WeakMap: callers can read the fingerprint but
 * cannot reach the secret material, and a hand-made look-alike is rejected as misuse.
 */
import type { KeyObject } from 'node:crypto';
import {
  decryptKey,
  generateKey,
  readKeys,
  type Key,
  type PrivateKey,
  type PublicKey,
  type Subkey,
} from './openpgp.js';
import {
  MAX_RSA_BITS,
  MIN_RSA_BITS,
  extractSigningPrivate,
  extractSigningPublic,
  type SigAlg,
  type SigningPublicKey,
} from './signing.js';

/** Outcome of checking a public key that someone wants to register or use. */
export enum KeyStatus {
  OK = 'ok',
  /** Not parseable as exactly one OpenPGP key. */
  INVALID = 'invalid',
  /** A private key was given where a public key belongs. It is refused, never stored. */
  PRIVATE_KEY = 'private_key',
  EXPIRED = 'expired',
  REVOKED = 'revoked',
  /** No valid subkey (or primary key) that can encrypt. */
  NO_ENCRYPTION_KEY = 'no_encryption_key',
  /** No valid key that can sign. */
  NO_SIGNING_KEY = 'no_signing_key',
  /** Uses an algorithm sealchat cannot work with (not Ed25519/X25519 or RSA 2048-4096). */
  UNSUPPORTED_ALGORITHM = 'unsupported_algorithm',
}

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

/** Result of {@link inspectPublicKey}. Fields other than `status` are present when known. */
export interface InspectResult {
  status: KeyStatus;
  /** Primary key fingerprint, lowercase hex (40 digits for v4 keys, 64 for v6). */
  fingerprint?: string;
  userIds?: string[];
  /** Human-readable algorithms, "primary/encryption", e.g. "ed25519Legacy/curve25519Legacy", "rsa3072/rsa3072". */
  algorithm?: string;
  /** A sentence for humans explaining a non-OK status. */
  reason?: string;
  /** The normalised armored public key to store (only when status is OK). */
  armored?: string;
}

/**
 * A parsed, validated public key. Opaque: get one from {@link readPublicKey}; the parsed key and
 * its node:crypto keys are cached inside, so keep the handle rather than re-reading the armor.
 */
export interface PublicKeyHandle {
  readonly kind: 'public';
  /** Primary key fingerprint, lowercase hex. */
  readonly fingerprint: string;
  readonly userIds: readonly string[];
  readonly algorithm: string;
  /** Normalised armored public key. */
  readonly armored: string;
}

/**
 * An unlocked private key. Opaque: get one from {@link unlockPrivateKey} (unlock once, keep it: the
 * passphrase S2K costs ~30 ms). Secret material stays in memory only.
 */
export interface PrivateKeyHandle {
  readonly kind: 'private';
  readonly fingerprint: string;
  /** The public half, usable wherever a PublicKeyHandle is wanted. */
  readonly publicKey: PublicKeyHandle;
}

interface PublicInternals {
  key: PublicKey;
  signingAlg: SigAlg;
  signingKeyObject: KeyObject;
  signingPublicKey: SigningPublicKey;
  signatureBytes: number;
}

interface PrivateInternals {
  key: PrivateKey;
  signingAlg: SigAlg;
  signingKeyObject: KeyObject;
  publicHandle: PublicKeyHandle;
}

const publicInternals = new WeakMap<object, PublicInternals>();
const privateInternals = new WeakMap<object, PrivateInternals>();

/** Largest armored key text we parse at all (keys with thousands of certifications are refused). */
export const MAX_ARMORED_KEY_CHARS = 100_000;

/** @internal Crypto state of a public handle; throws on anything not made by this module. */
export function publicState(handle: PublicKeyHandle, caller: string): PublicInternals {
  const state = handle && typeof handle === 'object' ? publicInternals.get(handle) : undefined;
  if (!state) throw new TypeError(`${caller}: expected a PublicKeyHandle from readPublicKey()`);
  return state;
}

/** @internal Crypto state of a private handle; throws on anything not made by this module. */
export function privateState(handle: PrivateKeyHandle, caller: string): PrivateInternals {
  const state = handle && typeof handle === 'object' ? privateInternals.get(handle) : undefined;
  if (!state) throw new TypeError(`${caller}: expected a PrivateKeyHandle from unlockPrivateKey()`);
  return state;
}

function requireOptions(options: unknown, caller: string): Record<string, unknown> {
  if (!options || typeof options !== 'object') throw new TypeError(`${caller}: expected one options object`);
  return options as Record<string, unknown>;
}

function toDate(now: unknown, caller: string): Date {
  if (now === undefined) return new Date();
  if (now instanceof Date && !Number.isNaN(now.getTime())) return now;
  if (typeof now === 'number' && Number.isFinite(now)) return new Date(now);
  throw new TypeError(`${caller}: options.now must be a Date or a number of milliseconds`);
}

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
async function parseOneKey(armored: string): Promise<{ key?: Key; reason?: string }> {
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

type Analysis =
  | { status: KeyStatus.OK; info: InspectResult; state: PublicInternals }
  | { status: Exclude<KeyStatus, KeyStatus.OK>; info: InspectResult };

/** All the checks behind inspectPublicKey / readPublicKey / unlockPrivateKey, on a public key. */
async function analysePublicKey(key: PublicKey, now: Date): Promise<Analysis> {
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
}

function makePublicHandle(info: InspectResult, state: PublicInternals): PublicKeyHandle {
  const handle: PublicKeyHandle = Object.freeze({
    kind: 'public' as const,
    fingerprint: info.fingerprint!,
    userIds: Object.freeze([...(info.userIds ?? [])]),
    algorithm: info.algorithm!,
    armored: info.armored!,
  });
  publicInternals.set(handle, state);
  return handle;
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
  return { ...analysis.info, key: makePublicHandle(analysis.info, analysis.state) };
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
  const handle: PrivateKeyHandle = Object.freeze({
    kind: 'private' as const,
    fingerprint: publicHandle.fingerprint,
    publicKey: publicHandle,
  });
  privateInternals.set(handle, {
    key,
    signingAlg: extracted.alg,
    signingKeyObject: extracted.keyObject,
    publicHandle,
  });
  return { status: UnlockStatus.OK, key: handle };
}

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

/**
 * The room-message signing key of a user key: raw Ed25519 for Ed25519 keys, RSA-PSS for RSA keys.
 * Keybot lists it for every member in key envelopes; receivers verify sender signatures with it.
 */
export function signingPublicKeyOf(options: { key: PublicKeyHandle | PrivateKeyHandle }): SigningPublicKey {
  const o = requireOptions(options, 'signingPublicKeyOf');
  const handle = o.key as PublicKeyHandle | PrivateKeyHandle;
  const pub = handle && (handle as PrivateKeyHandle).kind === 'private' ? (handle as PrivateKeyHandle).publicKey : handle;
  const state = publicState(pub as PublicKeyHandle, 'signingPublicKeyOf');
  return { ...state.signingPublicKey };
}
