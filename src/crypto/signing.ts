/**
 * Compact per-message signatures made with the key material of a user's OpenPGP key.
 *
 * An OpenPGP detached signature costs ~190 bytes; a raw Ed25519 signature 64. Room messages must fit
 * one IRC line, so we take the raw Ed25519 key out of the OpenPGP key packet and sign with node:crypto:
 *  - v4 EdDSA keys (algorithm 22, "eddsaLegacy", curve OID 1.3.6.1.4.1.11591.15.1; the default of
 *    openpgp.js and of GnuPG's `ed25519`): public Q = 0x40 || 32-byte point, secret = 32-byte seed
 *    as an MPI (leading zeros may be stripped), RFC 4880bis §5.5.5.5;
 *  - Ed25519 keys (algorithm 27, RFC 9580 §5.5.5.9): public A = 32 bytes, secret = 32-byte seed.
 * RSA keys (GnuPG's default) sign with RSASSA-PSS / SHA-256, salt 32 (RFC 8017 §8.1): the signature
 * is as long as the modulus, so such messages need several IRC lines (see message.ts).
 * The signatures themselves are made and checked by primitives.ts (the platform's side).
 */
import { bytesEqual, bytesToBigInt, fromBase64, leftPad, stripLeadingZeros, toBase64 } from './bytes.js';
import {
  ed25519PrivateKey,
  ed25519PublicKey,
  rsaPrivateKey,
  rsaPublicKey,
  rsaPublicKeyFromSpki,
  rsaSpki,
  signRaw,
  verifyRaw,
  type PlatformKey,
  type SignatureAlgorithm,
} from './primitives.js';

/** Signature algorithm of a member's room-message signing key. */
export type SigAlg = SignatureAlgorithm;

/**
 * A member's room-message signing key, as keybot lists it in key envelopes.
 * `key` is base64: the raw 32-byte Ed25519 public key, or the DER SubjectPublicKeyInfo of an RSA key.
 */
export interface SigningPublicKey {
  alg: SigAlg;
  key: string;
}

/** Smallest and largest RSA moduli we accept (bits). 4096 bounds the signature at 512 bytes. */
export const MIN_RSA_BITS = 2048;
export const MAX_RSA_BITS = 4096;
/** Length of a raw Ed25519 signature (RFC 8032 §5.1.6). */
export const ED25519_SIGNATURE_BYTES = 64;

// OpenPGP public-key algorithm IDs (RFC 9580 §9.1).
const ALG_RSA_ENCRYPT_SIGN = 1;
const ALG_RSA_SIGN = 3;
const ALG_EDDSA_LEGACY = 22;
const ALG_ED25519 = 27;
// OID 1.3.6.1.4.1.11591.15.1 (Ed25519 for EdDSA legacy), as the DER body openpgp.js keeps it.
const ED25519_LEGACY_OID = Uint8Array.from([0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x0f, 0x01]);

/** The shape of an openpgp.js key packet that we read (openpgp types `publicParams` as `object`). */
export interface KeyPacketLike {
  algorithm: number;
  publicParams: object;
  privateParams?: object | null;
}

/** Why a key packet cannot give us a room-message signing key, or the keys it gives. */
export type ExtractedPublic =
  | { ok: true; alg: SigAlg; keyObject: PlatformKey; publicKey: SigningPublicKey; signatureBytes: number }
  | { ok: false; reason: string };

export type ExtractedPrivate =
  | { ok: true; alg: SigAlg; keyObject: PlatformKey }
  | { ok: false; reason: string };

function param(packet: KeyPacketLike, name: string, which: 'public' | 'private'): Uint8Array | undefined {
  const params = (which === 'public' ? packet.publicParams : packet.privateParams) as Record<string, unknown> | null;
  const value = params?.[name];
  return value instanceof Uint8Array ? value : undefined;
}

function oidBytes(packet: KeyPacketLike): Uint8Array | undefined {
  const oid = (packet.publicParams as { oid?: { oid?: unknown } }).oid?.oid;
  return oid instanceof Uint8Array ? oid : undefined;
}

/** The raw 32-byte Ed25519 public key of an EdDSA packet, or undefined if it is not one. */
function ed25519PublicBytes(packet: KeyPacketLike): Uint8Array | undefined {
  if (packet.algorithm === ALG_ED25519) {
    const a = param(packet, 'A', 'public');
    return a?.length === 32 ? a : undefined;
  }
  if (packet.algorithm === ALG_EDDSA_LEGACY) {
    const oid = oidBytes(packet);
    const q = param(packet, 'Q', 'public');
    if (!oid || !bytesEqual(oid, ED25519_LEGACY_OID)) return undefined;
    // Native point format: a 0x40 prefix then the 32-byte point (RFC 4880bis §13.3).
    if (!q || q.length !== 33 || q[0] !== 0x40) return undefined;
    return q.subarray(1);
  }
  return undefined;
}

function isRsa(packet: KeyPacketLike): boolean {
  return packet.algorithm === ALG_RSA_ENCRYPT_SIGN || packet.algorithm === ALG_RSA_SIGN;
}

/** Build the node:crypto public signing key (and its wire form) from an OpenPGP key packet. */
export function extractSigningPublic(packet: KeyPacketLike): ExtractedPublic {
  const ed = ed25519PublicBytes(packet);
  if (ed) {
    const keyObject = ed25519PublicKey(ed);
    return {
      ok: true,
      alg: 'ed25519',
      keyObject,
      publicKey: { alg: 'ed25519', key: toBase64(ed) },
      signatureBytes: ED25519_SIGNATURE_BYTES,
    };
  }
  if (isRsa(packet)) {
    const n = param(packet, 'n', 'public');
    const e = param(packet, 'e', 'public');
    if (!n || !e) return { ok: false, reason: 'the RSA key packet lacks its public parameters' };
    const bits = bytesToBigInt(n).toString(2).length;
    if (bits < MIN_RSA_BITS || bits > MAX_RSA_BITS) {
      return { ok: false, reason: `RSA keys must have ${MIN_RSA_BITS} to ${MAX_RSA_BITS} bits; this one has ${bits}` };
    }
    const keyObject = rsaPublicKey(stripLeadingZeros(n), stripLeadingZeros(e));
    const der = rsaSpki(keyObject);
    return {
      ok: true,
      alg: 'rsa-pss',
      keyObject,
      publicKey: { alg: 'rsa-pss', key: toBase64(der) },
      signatureBytes: Math.ceil(bits / 8),
    };
  }
  return { ok: false, reason: 'the signing key is neither Ed25519 nor RSA' };
}

function modInverse(a: bigint, m: bigint): bigint {
  let [oldR, r] = [((a % m) + m) % m, m];
  let [oldS, s] = [1n, 0n];
  while (r !== 0n) {
    const q = oldR / r;
    [oldR, r] = [r, oldR - q * r];
    [oldS, s] = [s, oldS - q * s];
  }
  if (oldR !== 1n) throw new Error('not invertible');
  return ((oldS % m) + m) % m;
}

/**
 * Build the node:crypto private signing key from a decrypted OpenPGP secret key packet, and check
 * that it matches the public half (a signature made now verifies against what receivers extract).
 */
export function extractSigningPrivate(packet: KeyPacketLike, publicKey: PlatformKey): ExtractedPrivate {
  let keyObject: PlatformKey;
  let alg: SigAlg;
  try {
    const ed = ed25519PublicBytes(packet);
    if (ed) {
      const seed = param(packet, 'seed', 'private');
      if (!seed || seed.length > 32) return { ok: false, reason: 'the Ed25519 secret key packet has no usable seed' };
      keyObject = ed25519PrivateKey(leftPad(seed, 32));
      alg = 'ed25519';
    } else if (isRsa(packet)) {
      const n = param(packet, 'n', 'public');
      const e = param(packet, 'e', 'public');
      const d = param(packet, 'd', 'private');
      const p = param(packet, 'p', 'private');
      const q = param(packet, 'q', 'private');
      if (!n || !e || !d || !p || !q) return { ok: false, reason: 'the RSA secret key packet is incomplete' };
      // Recompute the CRT values rather than trusting OpenPGP's u (= p^-1 mod q, the opposite
      // convention to JWK's qi = q^-1 mod p, RFC 7518 §6.3.2.7).
      const [dn, pn, qn] = [bytesToBigInt(d), bytesToBigInt(p), bytesToBigInt(q)];
      keyObject = rsaPrivateKey({
        n: bytesToBigInt(n),
        e: bytesToBigInt(e),
        d: dn,
        p: pn,
        q: qn,
        dp: dn % (pn - 1n),
        dq: dn % (qn - 1n),
        qi: modInverse(qn, pn),
      });
      alg = 'rsa-pss';
    } else {
      return { ok: false, reason: 'the signing key is neither Ed25519 nor RSA' };
    }
  } catch (err) {
    return { ok: false, reason: `the secret key material is unusable (${(err as Error).message})` };
  }
  // Self-test: one signature, checked against the public key that receivers will use.
  const probe = new TextEncoder().encode('sealchat signing key self-test');
  if (!verifyRaw(alg, publicKey, probe, signRaw(alg, keyObject, probe))) {
    return { ok: false, reason: 'the secret key does not match its public key' };
  }
  return { ok: true, alg, keyObject };
}

/** A SigningPublicKey parsed into a node:crypto key, with the signature length it produces. */
export interface ImportedSigningKey {
  alg: SigAlg;
  keyObject: PlatformKey;
  signatureBytes: number;
}

// Receivers verify every room message against the sender's key: parsing it each time would cost
// more than the verification, so parsed keys are memoised (bounded; insertion order = age).
const importCache = new Map<string, ImportedSigningKey>();
const IMPORT_CACHE_MAX = 1024;

/** Parse a SigningPublicKey from an envelope. Returns undefined if it is not a valid key. */
export function importSigningPublicKey(pub: SigningPublicKey): ImportedSigningKey | undefined {
  const cacheKey = `${pub.alg}:${pub.key}`;
  const cached = importCache.get(cacheKey);
  if (cached) return cached;
  const raw = typeof pub.key === 'string' ? fromBase64(pub.key) : undefined;
  if (!raw) return undefined;
  let imported: ImportedSigningKey;
  try {
    if (pub.alg === 'ed25519') {
      if (raw.length !== 32) return undefined;
      const keyObject = ed25519PublicKey(raw);
      imported = { alg: 'ed25519', keyObject, signatureBytes: ED25519_SIGNATURE_BYTES };
    } else if (pub.alg === 'rsa-pss') {
      const rsa = rsaPublicKeyFromSpki(raw);
      if (!rsa || rsa.bits < MIN_RSA_BITS || rsa.bits > MAX_RSA_BITS) return undefined;
      imported = { alg: 'rsa-pss', keyObject: rsa.key, signatureBytes: Math.ceil(rsa.bits / 8) };
    } else {
      return undefined;
    }
  } catch {
    return undefined;
  }
  if (importCache.size >= IMPORT_CACHE_MAX) importCache.delete(importCache.keys().next().value!);
  importCache.set(cacheKey, imported);
  return imported;
}

/** True when two signing keys are the same key. */
export function sameSigningKey(a: SigningPublicKey, b: SigningPublicKey): boolean {
  return a.alg === b.alg && a.key === b.key;
}
