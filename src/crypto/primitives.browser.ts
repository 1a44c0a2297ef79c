/**
 * The primitives of primitives.ts for the browser companion's bundle (issue 17): the same
 * exports, with no Node built-in. The bundler replaces primitives.ts by this file; the rest of
 * src/crypto runs unchanged. Randomness is the Web Crypto CSPRNG; SHA-256, AES-256-GCM and
 * Ed25519 come from the audited @noble libraries (synchronous, as src/crypto's API is; Web
 * Crypto's own functions are asynchronous only).
 *
 * RSA: verifying RSASSA-PSS (other members' RSA keys) is done here with BigInt arithmetic on
 * public values only. Signing with an RSA private key is refused: BigInt exponentiation is not
 * constant-time, and a private key must not leak through timing. A browser user signs with an
 * Ed25519 key (`sealchat keygen`'s default).
 *
 * test/crypto/primitives.test.ts checks every function against primitives.ts.
 */
import { gcm } from '@noble/ciphers/aes.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToNumberLE } from '@noble/curves/utils.js';
import { sha256 as nobleSha256, sha512 } from '@noble/hashes/sha2.js';
// The types are primitives.ts's own (a type-only import: nothing of node:crypto comes along).
import type { PlatformKey, RsaPrivateParts, SignatureAlgorithm } from './primitives.js';

export type { PlatformKey, RsaPrivateParts, SignatureAlgorithm };

/** The GCM tag length used throughout (bytes). */
export const GCM_TAG_BYTES = 16;
/** RSASSA-PSS salt length (bytes), with SHA-256 and MGF1-SHA-256 (RFC 8017 §8.1). */
export const PSS_SALT_BYTES = 32;

type EdPoint = InstanceType<typeof ed25519.Point>;

/**
 * Ed25519 keys keep what every signature or verification with them would compute again: the
 * expanded secret (RFC 8032 §5.1.5: SHA-512 of the seed, the clamped scalar, the public key, one
 * base-point multiplication) and the decoded public point (a square root, a small-order check).
 * A member's key signs or verifies every message of a room, so this is most of the cost saved.
 * A public key that has verified PRECOMPUTE_AFTER signatures also gets a window table for its
 * multiplication (width 6, ~280 KiB; keys are imported once, src/crypto/signing.ts keeps them):
 * verification is then 2-3 times as fast. A key seen once or twice (an envelope's) pays nothing,
 * and at most MAX_TABLES keys (the members who write most, first come) hold a table: ~9 MiB.
 */
type Held =
  | { kind: 'ed25519-public'; raw: Uint8Array; point?: EdPoint | null; verified?: number }
  | { kind: 'ed25519-private'; seed: Uint8Array; expanded?: { prefix: Uint8Array; scalar: bigint; pointBytes: Uint8Array } }
  | { kind: 'rsa-public'; n: bigint; e: bigint; bits: number };

const wrap = (held: Held): PlatformKey => ({ platformKey: held });
const unwrap = (key: PlatformKey): Held => key.platformKey as Held;

/** `n` bytes from the browser's CSPRNG (getRandomValues fills at most 65536 bytes per call). */
export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) globalThis.crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
  return out;
}

/** SHA-256 of the concatenation of `parts`. */
export function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = nobleSha256.create();
  for (const p of parts) h.update(p);
  return h.digest();
}

/** AES-256-GCM: ciphertext || 16-byte tag. */
export function aesGcmSeal(key: Uint8Array, iv: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): Uint8Array {
  return gcm(key, iv, aad).encrypt(plaintext);
}

/** Open what {@link aesGcmSeal} made; undefined when it does not authenticate (never throws). */
export function aesGcmOpen(key: Uint8Array, iv: Uint8Array, sealed: Uint8Array, aad?: Uint8Array): Uint8Array | undefined {
  if (sealed.length < GCM_TAG_BYTES) return undefined;
  try {
    return gcm(key, iv, aad).decrypt(sealed);
  } catch {
    return undefined;
  }
}

/** An Ed25519 public key from its 32 raw bytes (RFC 8032). Throws on a malformed key. */
export function ed25519PublicKey(raw: Uint8Array): PlatformKey {
  // Like node:crypto, a well-sized key is taken as it is; a bad point fails every verification.
  if (raw.length !== 32) throw new TypeError('not an Ed25519 public key');
  return wrap({ kind: 'ed25519-public', raw: Uint8Array.from(raw) });
}

/** An Ed25519 private key from its 32-byte seed. Throws on a malformed seed. */
export function ed25519PrivateKey(seed: Uint8Array): PlatformKey {
  if (seed.length !== 32) throw new TypeError('an Ed25519 seed is 32 bytes');
  return wrap({ kind: 'ed25519-private', seed: Uint8Array.from(seed) });
}

// ---- RSA public keys: integers and DER (RFC 8017 §A.1.1, RFC 5280 §4.1 SubjectPublicKeyInfo) ----

function toBigInt(b: Uint8Array): bigint {
  let v = 0n;
  for (const x of b) v = (v << 8n) | BigInt(x);
  return v;
}

/** `v` as exactly `len` big-endian bytes; undefined if it does not fit. */
function toBytes(v: bigint, len: number): Uint8Array | undefined {
  const out = new Uint8Array(len);
  for (let i = len - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return v === 0n ? out : undefined;
}

const bitLength = (v: bigint): number => (v === 0n ? 0 : v.toString(2).length);

// rsaEncryption, 1.2.840.113549.1.1.1, with its NULL parameters: what Node exports for an RSA key.
const RSA_ALGORITHM_ID = Uint8Array.from([0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00]);

function derLength(n: number): number[] {
  if (n < 0x80) return [n];
  const out: number[] = [];
  for (let v = n; v > 0; v >>= 8) out.unshift(v & 0xff);
  return [0x80 | out.length, ...out];
}

function der(tag: number, body: Uint8Array): Uint8Array {
  const head = [tag, ...derLength(body.length)];
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}

function derInteger(v: bigint): Uint8Array {
  let b = toBytes(v, Math.max(1, Math.ceil(bitLength(v) / 8)))!;
  if (b[0]! & 0x80) b = Uint8Array.from([0, ...b]);
  return der(0x02, b);
}

const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

/** Read one DER element at `at`: its tag, body and where the next one starts; undefined if malformed. */
function readDer(b: Uint8Array, at: number): { tag: number; body: Uint8Array; end: number } | undefined {
  if (at + 2 > b.length) return undefined;
  const tag = b[at]!;
  let len = b[at + 1]!;
  let p = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 3 || p + n > b.length) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) len = (len << 8) | b[p + i]!;
    // DER: the shortest form only.
    if (len < 0x80 || (n > 1 && b[p] === 0)) return undefined;
    p += n;
  }
  if (p + len > b.length) return undefined;
  return { tag, body: b.subarray(p, p + len), end: p + len };
}

function readPositiveInteger(b: Uint8Array, at: number): { v: bigint; end: number } | undefined {
  const el = readDer(b, at);
  if (!el || el.tag !== 0x02 || el.body.length === 0 || el.body[0]! & 0x80) return undefined;
  // DER: no unneeded leading zero.
  if (el.body.length > 1 && el.body[0] === 0 && !(el.body[1]! & 0x80)) return undefined;
  return { v: toBigInt(el.body), end: el.end };
}

/** An RSA public key from its modulus and exponent (unsigned big-endian, no leading zeros). */
export function rsaPublicKey(n: Uint8Array, e: Uint8Array): PlatformKey {
  const nv = toBigInt(n);
  const ev = toBigInt(e);
  if (nv < 3n || ev < 3n || (ev & 1n) === 0n || ev >= nv) throw new TypeError('not an RSA public key');
  return wrap({ kind: 'rsa-public', n: nv, e: ev, bits: bitLength(nv) });
}

/** The DER SubjectPublicKeyInfo of an RSA public key (how envelopes list RSA signing keys). */
export function rsaSpki(key: PlatformKey): Uint8Array {
  const k = unwrap(key);
  if (k.kind !== 'rsa-public') throw new TypeError('not an RSA public key');
  const rsaKey = der(0x30, concat(derInteger(k.n), derInteger(k.e)));
  return der(0x30, concat(RSA_ALGORITHM_ID, der(0x03, concat(Uint8Array.of(0), rsaKey))));
}

/** An RSA public key from a DER SubjectPublicKeyInfo, with its modulus length; undefined if it is not one. */
export function rsaPublicKeyFromSpki(spki: Uint8Array): { key: PlatformKey; bits: number } | undefined {
  const outer = readDer(spki, 0);
  if (!outer || outer.tag !== 0x30 || outer.end !== spki.length) return undefined;
  const body = outer.body;
  const alg = readDer(body, 0);
  if (!alg || alg.tag !== 0x30) return undefined;
  const algBytes = body.subarray(0, alg.end);
  if (algBytes.length !== RSA_ALGORITHM_ID.length || !algBytes.every((x, i) => x === RSA_ALGORITHM_ID[i])) return undefined;
  const bits = readDer(body, alg.end);
  if (!bits || bits.tag !== 0x03 || bits.end !== body.length || bits.body[0] !== 0) return undefined;
  const inner = bits.body.subarray(1);
  const seq = readDer(inner, 0);
  if (!seq || seq.tag !== 0x30 || seq.end !== inner.length) return undefined;
  const n = readPositiveInteger(seq.body, 0);
  const e = n && readPositiveInteger(seq.body, n.end);
  if (!n || !e || e.end !== seq.body.length) return undefined;
  try {
    const key = rsaPublicKey(toBytes(n.v, Math.ceil(bitLength(n.v) / 8))!, toBytes(e.v, Math.ceil(bitLength(e.v) / 8))!);
    return { key, bits: bitLength(n.v) };
  } catch {
    return undefined;
  }
}


/** RSA private keys are refused in the browser (see the file's comment). */
export function rsaPrivateKey(_k: RsaPrivateParts): PlatformKey {
  throw new TypeError('RSA private keys cannot sign in the browser companion: use an Ed25519 key (sealchat keygen makes one)');
}

function modPow(base: bigint, exp: bigint, mod: bigint): bigint {
  let result = 1n;
  let b = base % mod;
  for (let e = exp; e > 0n; e >>= 1n) {
    if (e & 1n) result = (result * b) % mod;
    b = (b * b) % mod;
  }
  return result;
}

/** MGF1 with SHA-256 (RFC 8017 §B.2.1). */
function mgf1(seed: Uint8Array, len: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let counter = 0, at = 0; at < len; counter++) {
    const c = Uint8Array.of(counter >>> 24, (counter >>> 16) & 0xff, (counter >>> 8) & 0xff, counter & 0xff);
    const block = sha256(seed, c);
    out.set(block.subarray(0, Math.min(block.length, len - at)), at);
    at += block.length;
  }
  return out;
}

/** RSASSA-PSS-VERIFY with SHA-256, MGF1-SHA-256 and a 32-byte salt (RFC 8017 §8.1.2, §9.1.2). */
function rsaPssVerify(k: { n: bigint; e: bigint; bits: number }, message: Uint8Array, signature: Uint8Array): boolean {
  const modBytes = Math.ceil(k.bits / 8);
  if (signature.length !== modBytes) return false;
  const s = toBigInt(signature);
  if (s >= k.n) return false;
  const emBits = k.bits - 1;
  const emLen = Math.ceil(emBits / 8);
  const em = toBytes(modPow(s, k.e, k.n), emLen);
  const hLen = 32;
  if (!em || emLen < hLen + PSS_SALT_BYTES + 2 || em[emLen - 1] !== 0xbc) return false;
  const maskedDb = em.subarray(0, emLen - hLen - 1);
  const h = em.subarray(emLen - hLen - 1, emLen - 1);
  const topMask = 0xff >>> (8 * emLen - emBits);
  if ((maskedDb[0]! & ~topMask) !== 0) return false;
  const db = mgf1(h, maskedDb.length).map((m, i) => m ^ maskedDb[i]!);
  db[0]! &= topMask;
  const psLen = emLen - hLen - PSS_SALT_BYTES - 2;
  for (let i = 0; i < psLen; i++) if (db[i] !== 0) return false;
  if (db[psLen] !== 0x01) return false;
  const salt = db.subarray(db.length - PSS_SALT_BYTES);
  const h2 = sha256(new Uint8Array(8), sha256(message), salt);
  let diff = 0;
  for (let i = 0; i < hLen; i++) diff |= h[i]! ^ h2[i]!;
  return diff === 0;
}

const Fn = ed25519.Point.Fn;
const PRECOMPUTE_AFTER = 4;
const PRECOMPUTE_WINDOW = 6;
const MAX_TABLES = 32;
let tables = 0;

/** SHA-512 of the parts as a little-endian integer mod L (RFC 8032 §5.1.6 steps 2 and 4). */
function hashToScalar(...parts: Uint8Array[]): bigint {
  const h = sha512.create();
  for (const p of parts) h.update(p);
  return Fn.create(bytesToNumberLE(h.digest()));
}

/** RFC 8032 §5.1.6 (pure Ed25519, no context), with the seed's expansion done once per key. */
function ed25519Sign(k: Extract<Held, { kind: 'ed25519-private' }>, data: Uint8Array): Uint8Array {
  const x = (k.expanded ??= ed25519.utils.getExtendedPublicKey(k.seed));
  const r = hashToScalar(x.prefix, data);
  const R = ed25519.Point.BASE.multiply(r).toBytes();
  const s = Fn.create(r + hashToScalar(R, x.pointBytes, data) * x.scalar);
  const out = new Uint8Array(64);
  out.set(R);
  out.set(Fn.toBytes(s), 32);
  return out;
}

/**
 * RFC 8032 §5.1.7 as @noble's `ed25519.verify(sig, data, raw, { zip215: false })` checks it:
 * strict decoding of A and R, S < L, a small-order A refused, the cofactored equation
 * [8][S]B = [8]R + [8][k]A. The decoded A (or its refusal) is kept with the key.
 */
function ed25519Verify(k: Extract<Held, { kind: 'ed25519-public' }>, data: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64) return false;
  if (k.point === undefined) {
    try {
      const A = ed25519.Point.fromBytes(k.raw, false);
      k.point = A.isSmallOrder() ? null : A;
    } catch {
      k.point = null;
    }
  }
  const A = k.point;
  if (A === null) return false;
  k.verified = (k.verified ?? 0) + 1;
  if (k.verified === PRECOMPUTE_AFTER && tables < MAX_TABLES) {
    tables++;
    A.precompute(PRECOMPUTE_WINDOW, false);
  }
  const r = signature.subarray(0, 32);
  let R: EdPoint;
  let SB: EdPoint;
  try {
    R = ed25519.Point.fromBytes(r, false);
    SB = ed25519.Point.BASE.multiplyUnsafe(bytesToNumberLE(signature.subarray(32))); // throws unless 0 <= S < L
  } catch {
    return false;
  }
  const kA = A.multiplyUnsafe(hashToScalar(r, k.raw, data));
  return R.add(kA).subtract(SB).clearCofactor().is0();
}

/** Sign bytes: pure Ed25519 (RFC 8032). RSA private keys never exist here (see rsaPrivateKey). */
export function signRaw(alg: SignatureAlgorithm, key: PlatformKey, data: Uint8Array): Uint8Array {
  const k = unwrap(key);
  if (alg !== 'ed25519' || k.kind !== 'ed25519-private') throw new TypeError(`cannot sign with a ${k.kind} key as ${alg}`);
  return ed25519Sign(k, data);
}

/** Verify a signature made by {@link signRaw}; false for any failure, never throws. */
export function verifyRaw(alg: SignatureAlgorithm, key: PlatformKey, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    const k = unwrap(key);
    // Strict RFC 8032 decoding (zip215 off), as OpenSSL verifies in primitives.ts.
    if (alg === 'ed25519' && k.kind === 'ed25519-public') return ed25519Verify(k, data, signature);
    if (alg === 'rsa-pss' && k.kind === 'rsa-public') return rsaPssVerify(k, data, signature);
    return false;
  } catch {
    return false;
  }
}
