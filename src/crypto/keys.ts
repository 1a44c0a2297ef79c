/**
 * User keys: what sealchat says about a key (KeyStatus, InspectResult) and the opaque handles the
 * other crypto modules take. Reading and validating keys is key-read.ts, unlocking key-unlock.ts,
 * generating key-generate.ts.
 *
 * Handles are plain frozen objects whose crypto state (the parsed openpgp.js key and the cached
 * the platform's key handles) lives in a module-private WeakMap: callers can read the fingerprint but
 * cannot reach the secret material, and a hand-made look-alike is rejected as misuse.
 */
import type { PlatformKey } from './primitives.js';
import { requireOptions } from './options.js';
import type { PrivateKey, PublicKey } from './openpgp.js';
import type { SigAlg, SigningPublicKey } from './signing.js';

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

/** @internal Crypto state behind a PublicKeyHandle. */
export interface PublicInternals {
  key: PublicKey;
  signingAlg: SigAlg;
  signingKeyObject: PlatformKey;
  signingPublicKey: SigningPublicKey;
  signatureBytes: number;
}

/** @internal Crypto state behind a PrivateKeyHandle. */
export interface PrivateInternals {
  key: PrivateKey;
  signingAlg: SigAlg;
  signingKeyObject: PlatformKey;
  publicHandle: PublicKeyHandle;
}

const publicInternals = new WeakMap<object, PublicInternals>();
const privateInternals = new WeakMap<object, PrivateInternals>();

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

/** @internal A new PublicKeyHandle for a key that passed analysePublicKey (key-read.ts). */
export function makePublicHandle(info: InspectResult, state: PublicInternals): PublicKeyHandle {
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

/** @internal A new PrivateKeyHandle for an unlocked key (see unlockPrivateKey in key-unlock.ts). */
export function makePrivateHandle(state: PrivateInternals): PrivateKeyHandle {
  const handle: PrivateKeyHandle = Object.freeze({
    kind: 'private' as const,
    fingerprint: state.publicHandle.fingerprint,
    publicKey: state.publicHandle,
  });
  privateInternals.set(handle, state);
  return handle;
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
