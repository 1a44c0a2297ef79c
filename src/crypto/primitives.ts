/**
 * The primitives src/crypto builds on, for Node: randomness, SHA-256, AES-256-GCM, and raw
 * Ed25519 and RSASSA-PSS signatures over node:crypto. Every other file of src/crypto reaches the
 * platform's cryptography only through these functions, so that the browser companion's bundle
 * can swap this file for `primitives.browser.ts` (same exports, over audited JavaScript
 * libraries) and run the rest of src/crypto unchanged (issue 17). Both files are checked against
 * each other, and against the protocol's test vectors, by test/crypto/primitives.test.ts.
 *
 * Signing keys are opaque `PlatformKey` handles: what each platform holds differs (node:crypto
 * KeyObjects here, raw bytes and bigints in the browser).
 */
import {
  KeyObject,
  constants,
  createCipheriv,
  createDecipheriv,
  createHash,
  createPrivateKey,
  createPublicKey,
  randomBytes as nodeRandomBytes,
  sign as nodeSign,
  verify as nodeVerify,
} from 'node:crypto';

/** Signature algorithm of a room-message signing key. */
export type SignatureAlgorithm = 'ed25519' | 'rsa-pss';

/** A signing key (public or private) as the platform holds it; opaque outside this file. */
export interface PlatformKey {
  readonly platformKey: unknown;
}

/** The GCM tag length used throughout (bytes). */
export const GCM_TAG_BYTES = 16;
/** RSASSA-PSS salt length (bytes), with SHA-256 and MGF1-SHA-256 (RFC 8017 §8.1). */
export const PSS_SALT_BYTES = 32;

const wrap = (key: KeyObject): PlatformKey => ({ platformKey: key });
const unwrap = (key: PlatformKey): KeyObject => key.platformKey as KeyObject;
const bytes = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

/** `n` bytes from the system's CSPRNG. */
export function randomBytes(n: number): Uint8Array {
  return bytes(nodeRandomBytes(n));
}

/** SHA-256 of the concatenation of `parts`. */
export function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return bytes(h.digest());
}

/** AES-256-GCM: ciphertext || 16-byte tag. */
export function aesGcmSeal(key: Uint8Array, iv: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): Uint8Array {
  const c = createCipheriv('aes-256-gcm', key, iv, { authTagLength: GCM_TAG_BYTES });
  if (aad) c.setAAD(aad);
  return bytes(Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]));
}

/** Open what {@link aesGcmSeal} made; undefined when it does not authenticate (never throws). */
export function aesGcmOpen(key: Uint8Array, iv: Uint8Array, sealed: Uint8Array, aad?: Uint8Array): Uint8Array | undefined {
  if (sealed.length < GCM_TAG_BYTES) return undefined;
  try {
    const d = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: GCM_TAG_BYTES });
    if (aad) d.setAAD(aad);
    d.setAuthTag(sealed.subarray(sealed.length - GCM_TAG_BYTES));
    return bytes(Buffer.concat([d.update(sealed.subarray(0, sealed.length - GCM_TAG_BYTES)), d.final()]));
  } catch {
    return undefined;
  }
}

const toB64Url = (b: Uint8Array): string => Buffer.from(b).toString('base64url');
const bigToB64Url = (v: bigint): string => {
  let hex = v.toString(16);
  if (hex.length % 2) hex = '0' + hex;
  return Buffer.from(hex, 'hex').toString('base64url');
};

/** An Ed25519 public key from its 32 raw bytes (RFC 8032). Throws on a malformed key. */
export function ed25519PublicKey(raw: Uint8Array): PlatformKey {
  return wrap(createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: toB64Url(raw) }, format: 'jwk' }));
}

// PKCS#8 prefix of an Ed25519 private key (RFC 8410 §7, OID 1.3.101.112), then the 32-byte seed.
const ED25519_PKCS8_PREFIX = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
]);

/** An Ed25519 private key from its 32-byte seed. Throws on a malformed seed. */
export function ed25519PrivateKey(seed: Uint8Array): PlatformKey {
  if (seed.length !== 32) throw new TypeError('an Ed25519 seed is 32 bytes');
  return wrap(createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' }));
}

/** An RSA public key from its modulus and exponent (unsigned big-endian, no leading zeros). */
export function rsaPublicKey(n: Uint8Array, e: Uint8Array): PlatformKey {
  return wrap(createPublicKey({ key: { kty: 'RSA', n: toB64Url(n), e: toB64Url(e) }, format: 'jwk' }));
}

/** The DER SubjectPublicKeyInfo of an RSA public key (how envelopes list RSA signing keys). */
export function rsaSpki(key: PlatformKey): Uint8Array {
  return bytes(unwrap(key).export({ format: 'der', type: 'spki' }));
}

/**
 * An RSA public key from a DER SubjectPublicKeyInfo, with its modulus length; undefined if it is
 * not one, or not in the one canonical form (OpenSSL would also take trailing bytes; the browser
 * side does not, and a key has one wire form).
 */
export function rsaPublicKeyFromSpki(der: Uint8Array): { key: PlatformKey; bits: number } | undefined {
  try {
    const k = createPublicKey({ key: Buffer.from(der), format: 'der', type: 'spki' });
    if (k.asymmetricKeyType !== 'rsa') return undefined;
    if (!k.export({ format: 'der', type: 'spki' }).equals(der)) return undefined;
    return { key: wrap(k), bits: k.asymmetricKeyDetails?.modulusLength ?? 0 };
  } catch {
    return undefined;
  }
}

/** The values of an RSA private key (RFC 8017 §3.2, second form; `qi` = q⁻¹ mod p). */
export interface RsaPrivateParts {
  n: bigint;
  e: bigint;
  d: bigint;
  p: bigint;
  q: bigint;
  dp: bigint;
  dq: bigint;
  qi: bigint;
}

/** An RSA private key. Throws when the values do not make one. */
export function rsaPrivateKey(k: RsaPrivateParts): PlatformKey {
  const jwk = { kty: 'RSA', n: bigToB64Url(k.n), e: bigToB64Url(k.e), d: bigToB64Url(k.d), p: bigToB64Url(k.p), q: bigToB64Url(k.q), dp: bigToB64Url(k.dp), dq: bigToB64Url(k.dq), qi: bigToB64Url(k.qi) };
  return wrap(createPrivateKey({ key: jwk, format: 'jwk' }));
}

function rsaOptions(key: KeyObject): { key: KeyObject; padding: number; saltLength: number } {
  return { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: PSS_SALT_BYTES };
}

/** Sign bytes: pure Ed25519 (RFC 8032), or RSASSA-PSS with SHA-256, MGF1-SHA-256, 32-byte salt. */
export function signRaw(alg: SignatureAlgorithm, key: PlatformKey, data: Uint8Array): Uint8Array {
  const k = unwrap(key);
  return bytes(alg === 'ed25519' ? nodeSign(null, data, k) : nodeSign('sha256', data, rsaOptions(k)));
}

/** Verify a signature made by {@link signRaw}; false for any failure, never throws. */
export function verifyRaw(alg: SignatureAlgorithm, key: PlatformKey, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    const k = unwrap(key);
    return alg === 'ed25519' ? nodeVerify(null, data, k, signature) : nodeVerify('sha256', data, rsaOptions(k), signature);
  } catch {
    return false;
  }
}
