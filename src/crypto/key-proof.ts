/**
 * Key-possession proofs: how a companion registers its user's public key with a keybot that runs
 * on an ordinary IRC network (docs/NETWORKS.md "Registering a key"). keybot sends a fresh nonce;
 * the companion signs, with the key it registers,
 *
 *   "sealchat-key-proof-v1" 0x00 purpose 0x00 network 0x00 casefold(account) 0x00 fingerprint 0x00 nonce
 *
 * (purpose `possess`), which binds the key to one account on one network and to this one request
 * (the nonce), so a proof seen on the wire cannot be replayed to another keybot, for another
 * account, or later. A key CHANGE may carry a second signature over the same transcript with
 * purpose `endorse`, made by the key registered so far: then keybot replaces the key at once;
 * without it the change waits out keybot's cool-down (the account's owner may cancel it).
 *
 * The signatures are the room-message signatures of src/crypto (raw Ed25519, or RSA-PSS for RSA
 * keys: signing.ts), so a key that can sign room text can prove itself. The registration as a
 * whole travels as JSON (encodeKeyRegistration), base64 in `register <i>/<n> <chunk>` lines.
 */
import { bytesEqual, casefold, concatBytes, fromBase64, toBase64, utf8 } from './bytes.js';
import { privateState, publicState, type PrivateKeyHandle, type PublicKeyHandle } from './keys.js';
import { signRaw, verifyRaw } from './primitives.js';

export const KEY_PROOF_VERSION = 'sealchat-key-proof-v1';
export const KEY_PROOF_NONCE_BYTES = 32;

/** `possess`: signed by the key being registered. `endorse`: signed by the key it replaces. */
export type KeyProofPurpose = 'possess' | 'endorse';

export interface KeyProofFields {
  purpose: KeyProofPurpose;
  /** The network's name as its server announces it (ISUPPORT NETWORK). */
  network: string;
  /** The services account the key is registered for (bound ASCII-casefolded: A-Z to a-z). */
  account: string;
  /** Fingerprint of the key being registered, lowercase hex. */
  fingerprint: string;
  /** keybot's nonce for this request ({@link KEY_PROOF_NONCE_BYTES} bytes). */
  nonce: Uint8Array;
}

export enum KeyProofStatus {
  OK = 'ok',
  /** The signature does not verify under the key given. */
  BAD_SIGNATURE = 'bad_signature',
  /** The key given is not the one the proof names (possess), or a field is unusable. */
  WRONG_KEY = 'wrong_key',
  MALFORMED = 'malformed',
}

const FINGERPRINT_RE = /^[0-9a-f]{40}$|^[0-9a-f]{64}$/;

function checkFields(f: KeyProofFields, caller: string): void {
  if (!f || typeof f !== 'object') throw new TypeError(`${caller}: expected one options object`);
  if (f.purpose !== 'possess' && f.purpose !== 'endorse') throw new TypeError(`${caller}: purpose must be possess or endorse`);
  for (const k of ['network', 'account'] as const) {
    if (typeof f[k] !== 'string' || f[k] === '' || f[k].includes('\0')) throw new TypeError(`${caller}: ${k} must be a non-empty string without NUL`);
  }
  if (typeof f.fingerprint !== 'string' || !FINGERPRINT_RE.test(f.fingerprint)) throw new TypeError(`${caller}: fingerprint must be lowercase hex`);
  if (!(f.nonce instanceof Uint8Array) || f.nonce.length !== KEY_PROOF_NONCE_BYTES) throw new TypeError(`${caller}: nonce must be ${KEY_PROOF_NONCE_BYTES} bytes`);
}

/** The bytes a proof signs (see the file comment). Throws on misuse. */
export function keyProofTranscript(fields: KeyProofFields): Uint8Array {
  checkFields(fields, 'keyProofTranscript');
  const zero = Uint8Array.of(0);
  return concatBytes(
    utf8.encode(KEY_PROOF_VERSION),
    zero,
    utf8.encode(fields.purpose),
    zero,
    utf8.encode(fields.network),
    zero,
    utf8.encode(casefold(fields.account)),
    zero,
    utf8.encode(fields.fingerprint),
    zero,
    fields.nonce,
  );
}

/**
 * Sign a proof. For `possess` the signer must be the key named by `fingerprint`; for `endorse`
 * it is the key registered so far (and must not be the new one). Misuse throws.
 */
export function signKeyProof(options: KeyProofFields & { signer: PrivateKeyHandle }): Uint8Array {
  const transcript = keyProofTranscript(options);
  const signer = privateState(options.signer, 'signKeyProof');
  const named = options.signer.fingerprint === options.fingerprint;
  if (options.purpose === 'possess' && !named) throw new TypeError('signKeyProof: a possession proof must be signed by the key it names');
  if (options.purpose === 'endorse' && named) throw new TypeError('signKeyProof: an endorsement is signed by the old key, not the new one');
  return signRaw(signer.signingAlg, signer.signingKeyObject, transcript);
}

/** Verify a proof under `key` (the new key for `possess`, the old key for `endorse`). Never throws on bad input data. */
export function verifyKeyProof(options: KeyProofFields & { signature: Uint8Array; key: PublicKeyHandle }): KeyProofStatus {
  let transcript: Uint8Array;
  try {
    transcript = keyProofTranscript(options);
  } catch {
    return KeyProofStatus.MALFORMED;
  }
  if (!(options.signature instanceof Uint8Array) || options.signature.length === 0) return KeyProofStatus.MALFORMED;
  const state = publicState(options.key, 'verifyKeyProof');
  if (options.purpose === 'possess' && options.key.fingerprint !== options.fingerprint) return KeyProofStatus.WRONG_KEY;
  return verifyRaw(state.signingAlg, state.signingKeyObject, transcript, options.signature) ? KeyProofStatus.OK : KeyProofStatus.BAD_SIGNATURE;
}

// ---- the registration a companion sends ---------------------------------------------------

/** What a companion sends keybot to register (or change) its user's key. */
export interface KeyRegistration {
  network: string;
  account: string;
  nonce: Uint8Array;
  /** The armored public key being registered. */
  publicKey: string;
  /** `possess` proof by that key. */
  proof: Uint8Array;
  /** `endorse` proof by the key registered so far, for a change without the cool-down. */
  endorsement?: Uint8Array;
}

/** Largest encoded registration keybot reassembles (an RSA-4096 key and two signatures fit). */
export const MAX_KEY_REGISTRATION_BYTES = 16 * 1024;

/** JSON, fields in this order: {"v":1,"network","account","nonce","publicKey","proof"[,"endorsement"]} (binary as base64). */
export function encodeKeyRegistration(r: KeyRegistration): Uint8Array {
  const json = JSON.stringify({
    v: 1,
    network: r.network,
    account: r.account,
    nonce: toBase64(r.nonce),
    publicKey: r.publicKey,
    proof: toBase64(r.proof),
    ...(r.endorsement ? { endorsement: toBase64(r.endorsement) } : {}),
  });
  return utf8.encode(json);
}

/** Parse a registration; undefined if it is not one. */
export function decodeKeyRegistration(data: Uint8Array): KeyRegistration | undefined {
  if (!(data instanceof Uint8Array) || data.length > MAX_KEY_REGISTRATION_BYTES) return undefined;
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(utf8.decode(data)) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (!v || typeof v !== 'object' || v.v !== 1) return undefined;
  const str = (k: string): string | undefined => (typeof v[k] === 'string' && v[k] !== '' ? (v[k] as string) : undefined);
  const network = str('network');
  const account = str('account');
  const publicKey = str('publicKey');
  const nonce = str('nonce') !== undefined ? fromBase64(str('nonce')!) : undefined;
  const proof = str('proof') !== undefined ? fromBase64(str('proof')!) : undefined;
  const endorsement = str('endorsement') !== undefined ? fromBase64(str('endorsement')!) : undefined;
  if (!network || !account || !publicKey || !nonce || nonce.length !== KEY_PROOF_NONCE_BYTES || !proof) return undefined;
  if (v.endorsement !== undefined && !endorsement) return undefined;
  return { network, account, nonce, publicKey, proof, ...(endorsement ? { endorsement } : {}) };
}

/** Whether two nonces are the same (constant-time enough for 32 random bytes). */
export function sameNonce(a: Uint8Array, b: Uint8Array): boolean {
  return bytesEqual(a, b);
}

/** Base64 chunk size in a `register <i>/<n> <chunk>` line (fits any PRIVMSG to keybot). */
const CHUNK_CHARS = 300;

/** The `register <i>/<n> <chunk>` lines that carry an encoded registration to keybot. */
export function frameKeyRegistration(data: Uint8Array): string[] {
  const b64 = toBase64(data);
  const n = Math.ceil(b64.length / CHUNK_CHARS);
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(`register ${i + 1}/${n} ${b64.slice(i * CHUNK_CHARS, (i + 1) * CHUNK_CHARS)}`);
  return out;
}
