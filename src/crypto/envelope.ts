/**
 * Key envelopes: keybot → one member. An OpenPGP message (RFC 9580: public-key encrypted to the
 * member's key, signed by keybot's key, uncompressed) whose literal data is a small JSON document:
 *   {"v":2,"room":"#r","epoch":7,"key":"<base64 32 bytes>","iat":<ms>,
 *    "m":[["alice","<fingerprint>","ed25519","<base64>"], ...]}
 * Version 2 is the same for every member of an epoch, so keybot signs it once (signEnvelope) and
 * encrypts that one signed message to each member (sealEnvelope). Version 1 also named the
 * recipient (`"to"`); it is still opened. It travels as `SC1E` parts (parts.ts).
 * docs/PROTOCOL.md §"Key envelopes" is the spec.
 */
import { casefold, fromBase64, toBase64, utf8 } from './bytes.js';
import { privateState, publicState, type PrivateKeyHandle, type PublicKeyHandle } from './keys.js';
import { createMessage, decrypt, encrypt, readMessage, readSignature, sign, type KeyID } from './openpgp.js';
import { ROOM_KEY_BYTES } from './message.js';
import type { SigningPublicKey } from './signing.js';

/** Version of the envelope payload keybot sends. */
export const ENVELOPE_VERSION = 2;
/** Payload versions a member opens: 1 (with `to`) and 2. */
const OPENABLE_VERSIONS: ReadonlySet<number> = new Set([1, 2]);
/** Most members one envelope may list. */
export const MAX_MEMBERS = 1000;
/** Default: envelopes issued longer ago than this are refused (keybot seals them just before sending). */
export const DEFAULT_ENVELOPE_MAX_AGE_MS = 15 * 60_000;
/** Default: tolerated clock difference between keybot and a member, for issue times in the future. */
export const DEFAULT_ENVELOPE_MAX_SKEW_MS = 5 * 60_000;

/** A room member as an envelope lists it. */
export interface EnvelopeMember {
  account: string;
  /** Fingerprint of the member's registered OpenPGP key, lowercase hex. */
  fingerprint: string;
  /** Verifies the member's room messages. */
  signingKey: SigningPublicKey;
}

/** What keybot tells the members of a room about an epoch (the same for every member). */
export interface EnvelopePayload {
  room: string;
  /** Strictly increasing per room, across keybot restarts too (u32). */
  epoch: number;
  /** The 32-byte AES-256-GCM key of this epoch. */
  key: Uint8Array;
  /** Everyone who holds this key; each recipient finds itself here under its account and key. */
  members: EnvelopeMember[];
  /** When keybot signed this payload, ms since the Unix epoch. */
  issuedAt: number;
}

/** Outcome of sealing or opening an envelope. */
export enum EnvelopeStatus {
  OK = 'ok',
  /** Not an OpenPGP message, or the payload inside does not follow the schema. */
  MALFORMED = 'malformed',
  /** A payload version this code does not know. */
  UNSUPPORTED_VERSION = 'unsupported_version',
  /** Encrypted to other keys than ours. */
  NOT_FOR_ME = 'not_for_me',
  /** Addressed to our key but it would not decrypt (corrupt or tampered). */
  DECRYPT_FAILED = 'decrypt_failed',
  /** Carries no signature at all. */
  UNSIGNED = 'unsigned',
  /** Not signed by the pinned keybot key, or the signature does not verify. */
  BAD_SIGNATURE = 'bad_signature',
  /** Does not list our account, lists it with another key, or (version 1) names another recipient. */
  WRONG_RECIPIENT = 'wrong_recipient',
  /** Issued longer ago than maxAgeMs. */
  EXPIRED = 'expired',
  /** Issued further in the future than maxSkewMs. */
  NOT_YET_VALID = 'not_yet_valid',
  /** (seal) OpenPGP refused to encrypt or sign, e.g. a key is not valid at issuedAt. */
  SEAL_FAILED = 'seal_failed',
}

const FINGERPRINT_RE = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;
// Loose on purpose: whatever the ircd allows as an account or channel fits, IRC's separators do not.
const ACCOUNT_RE = /^[^\s\x00-\x1f\x7f,:!@*?]{1,64}$/;
const ROOM_RE = /^[^\s\x00-\x1f\x7f,:]{1,200}$/;

type WireMember = [string, string, string, string];
interface WirePayload {
  v: number;
  room: string;
  epoch: number;
  key: string;
  iat: number;
  /** Version 1 only: the recipient's account. */
  to?: string;
  m: WireMember[];
}

function validSigningKey(alg: unknown, key: unknown): boolean {
  if (typeof key !== 'string' || key.length > 1400) return false;
  const raw = fromBase64(key);
  if (!raw) return false;
  if (alg === 'ed25519') return raw.length === 32;
  if (alg === 'rsa-pss') return raw.length >= 200;
  return false;
}

function isU32(v: unknown): v is number {
  return Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffff_ffff;
}

/** Check a payload's fields; returns the first problem as a sentence, or undefined. */
function payloadProblem(p: EnvelopePayload): string | undefined {
  if (typeof p.room !== 'string' || !ROOM_RE.test(p.room)) return 'room must be a channel name';
  if (!isU32(p.epoch)) return 'epoch must be an integer from 0 to 2^32-1';
  if (!(p.key instanceof Uint8Array) || p.key.length !== ROOM_KEY_BYTES) return `key must be ${ROOM_KEY_BYTES} bytes`;
  if (!Number.isSafeInteger(p.issuedAt) || p.issuedAt < 0) return 'issuedAt must be a time in ms';
  if (!Array.isArray(p.members) || p.members.length === 0 || p.members.length > MAX_MEMBERS) {
    return `members must list 1 to ${MAX_MEMBERS} members`;
  }
  const seen = new Set<string>();
  for (const m of p.members) {
    if (!m || typeof m !== 'object') return 'a member is not an object';
    if (typeof m.account !== 'string' || !ACCOUNT_RE.test(m.account)) return 'a member account is not an account name';
    const folded = casefold(m.account);
    if (seen.has(folded)) return `member ${m.account} is listed twice`;
    seen.add(folded);
    if (typeof m.fingerprint !== 'string' || !FINGERPRINT_RE.test(m.fingerprint)) return `member ${m.account} has a bad fingerprint`;
    if (!m.signingKey || !validSigningKey(m.signingKey.alg, m.signingKey.key)) return `member ${m.account} has a bad signing key`;
  }
  return undefined;
}

function toWire(p: EnvelopePayload): WirePayload {
  return {
    v: ENVELOPE_VERSION,
    room: p.room,
    epoch: p.epoch,
    key: toBase64(p.key),
    iat: p.issuedAt,
    m: p.members.map((m) => [m.account, m.fingerprint, m.signingKey.alg, m.signingKey.key]),
  };
}

/**
 * The literal data of a version-2 envelope: what keybot signs once per epoch. Throws TypeError
 * for a payload that does not follow the schema. (docs/PROTOCOL.md has a test vector.)
 */
export function encodeEnvelopePayload(payload: EnvelopePayload): Uint8Array {
  if (!payload || typeof payload !== 'object') throw new TypeError('encodeEnvelopePayload: expected a payload object');
  const problem = payloadProblem(payload);
  if (problem) throw new TypeError(`encodeEnvelopePayload: ${problem}`);
  return utf8.encode(JSON.stringify(toWire(payload)));
}

function fromWire(w: unknown): { payload?: EnvelopePayload; to?: string; status: EnvelopeStatus } {
  if (!w || typeof w !== 'object' || Array.isArray(w)) return { status: EnvelopeStatus.MALFORMED };
  const o = w as Partial<WirePayload>;
  if (typeof o.v !== 'number') return { status: EnvelopeStatus.MALFORMED };
  if (!OPENABLE_VERSIONS.has(o.v)) return { status: EnvelopeStatus.UNSUPPORTED_VERSION };
  // Version 1 names its recipient; version 2 does not (the member list does: see openEnvelope).
  if (o.v === 1 && (typeof o.to !== 'string' || !ACCOUNT_RE.test(o.to))) return { status: EnvelopeStatus.MALFORMED };
  const key = typeof o.key === 'string' ? fromBase64(o.key) : undefined;
  if (!key || !Array.isArray(o.m)) return { status: EnvelopeStatus.MALFORMED };
  const members: EnvelopeMember[] = [];
  for (const m of o.m) {
    if (!Array.isArray(m) || m.length !== 4 || !m.every((x) => typeof x === 'string')) return { status: EnvelopeStatus.MALFORMED };
    const [account, fingerprint, alg, signingKey] = m as WireMember;
    members.push({ account, fingerprint, signingKey: { alg: alg as SigningPublicKey['alg'], key: signingKey } });
  }
  const payload: EnvelopePayload = {
    room: o.room as string,
    epoch: o.epoch as number,
    key,
    members,
    issuedAt: o.iat as number,
  };
  if (payloadProblem(payload)) return { status: EnvelopeStatus.MALFORMED };
  return o.v === 1 ? { status: EnvelopeStatus.OK, payload, to: o.to } : { status: EnvelopeStatus.OK, payload };
}

/** An epoch's payload signed by keybot, to be encrypted to each member ({@link sealEnvelope}). */
export interface SignedEnvelope {
  readonly payload: EnvelopePayload;
}

/** The literal data and keybot's signature over it (binary, detached) of each SignedEnvelope. */
const signedMessages = new WeakMap<SignedEnvelope, { literal: Uint8Array; signature: Uint8Array }>();

/** Result of {@link signEnvelope}. */
export interface SignEnvelopeResult {
  status: EnvelopeStatus;
  signed?: SignedEnvelope;
  reason?: string;
}

/**
 * Sign an epoch's payload with keybot's key, once for all its members (the payload is the same
 * for each). Sign just before sealing and sending: `issuedAt` is the signature's time too.
 */
export async function signEnvelope(options: { signer: PrivateKeyHandle; payload: EnvelopePayload }): Promise<SignEnvelopeResult> {
  const caller = 'signEnvelope';
  if (!options || typeof options !== 'object') throw new TypeError(`${caller}: expected one options object`);
  const signer = privateState(options.signer, caller);
  const payload = options.payload;
  if (!payload || typeof payload !== 'object') throw new TypeError(`${caller}: options.payload must be an object`);
  const problem = payloadProblem(payload);
  if (problem) throw new TypeError(`${caller}: options.payload: ${problem}`);
  try {
    const literal = utf8.encode(JSON.stringify(toWire(payload)));
    const message = await createMessage({ binary: literal });
    const signature = (await sign({ message, signingKeys: signer.key, date: new Date(payload.issuedAt), detached: true, format: 'binary' })) as Uint8Array;
    const signed: SignedEnvelope = Object.freeze({ payload });
    signedMessages.set(signed, { literal, signature });
    return { status: EnvelopeStatus.OK, signed };
  } catch (err) {
    return { status: EnvelopeStatus.SEAL_FAILED, reason: (err as Error).message };
  }
}

/** Options of {@link sealEnvelope}: a payload signed already, or one to sign now. */
export type SealEnvelopeOptions = {
  /** The member's registered key (the member list must give its fingerprint). */
  recipient: PublicKeyHandle;
  /** If given: the member list must give the recipient's fingerprint under this account. */
  recipientAccount?: string;
} & (
  | { /** From {@link signEnvelope}: one signature for every member of the epoch. */ signed: SignedEnvelope }
  | { /** keybot's unlocked key. */ signer: PrivateKeyHandle; payload: EnvelopePayload }
);

/** Result of {@link sealEnvelope}. */
export interface SealEnvelopeResult {
  status: EnvelopeStatus;
  /** The binary OpenPGP message (OK only): send it with frameParts({ data, kind: 'envelope' }). */
  data?: Uint8Array;
  reason?: string;
}

/**
 * Encrypt a signed epoch payload to one member (signing it first if given a signer and a
 * payload). Seal just before sending.
 */
export async function sealEnvelope(options: SealEnvelopeOptions): Promise<SealEnvelopeResult> {
  const caller = 'sealEnvelope';
  if (!options || typeof options !== 'object') throw new TypeError(`${caller}: expected one options object`);
  const recipient = publicState(options.recipient, caller);
  let signed: SignedEnvelope;
  if ('signed' in options) {
    signed = options.signed;
    if (!signedMessages.has(signed)) throw new TypeError(`${caller}: options.signed must come from signEnvelope`);
  } else {
    const s = await signEnvelope({ signer: options.signer, payload: options.payload });
    if (s.status !== EnvelopeStatus.OK || !s.signed) return { status: s.status, reason: s.reason };
    signed = s.signed;
  }
  const { payload } = signed;
  const fp = options.recipient.fingerprint;
  if (options.recipientAccount !== undefined) {
    const me = payload.members.find((m) => casefold(m.account) === casefold(options.recipientAccount!));
    if (!me) throw new TypeError(`${caller}: ${options.recipientAccount} is not among the members`);
    if (me.fingerprint !== fp) {
      throw new TypeError(`${caller}: the recipient key is not the key the member list gives for ${options.recipientAccount}`);
    }
  } else if (!payload.members.some((m) => m.fingerprint === fp)) {
    throw new TypeError(`${caller}: the member list does not give the recipient key`);
  }
  try {
    // The existing signature goes in as it would have been made here: one-pass signature
    // packet, literal data, signature packet, all inside the encryption.
    const { literal, signature } = signedMessages.get(signed)!;
    const data = await encrypt({
      message: await createMessage({ binary: literal, date: new Date(payload.issuedAt) }),
      signature: await readSignature({ binarySignature: signature }),
      encryptionKeys: recipient.key,
      date: new Date(payload.issuedAt),
      format: 'binary',
    });
    return { status: EnvelopeStatus.OK, data: data as Uint8Array };
  } catch (err) {
    return { status: EnvelopeStatus.SEAL_FAILED, reason: (err as Error).message };
  }
}

/** Options of {@link openEnvelope}. */
export interface OpenEnvelopeOptions {
  /** The reassembled `SC1E` parts (PartsReassembler COMPLETE with kind 'envelope'). */
  data: Uint8Array;
  /** The member's own unlocked key. */
  decryptionKey: PrivateKeyHandle;
  /** keybot's key as pinned by the member (never taken from the envelope or the server). */
  signerKey: PublicKeyHandle;
  /** The member's own account: the member list must give it with our key. */
  expectedAccount: string;
  /** Current time, ms since the Unix epoch. */
  now: number;
  /** Refuse envelopes issued earlier than now - maxAgeMs (default 15 min). */
  maxAgeMs?: number;
  /** Refuse envelopes issued later than now + maxSkewMs (default 5 min). */
  maxSkewMs?: number;
}

/** Result of {@link openEnvelope}. */
export interface OpenEnvelopeResult {
  status: EnvelopeStatus;
  payload?: EnvelopePayload;
  reason?: string;
}

function keyIdsOf(handle: PrivateKeyHandle): KeyID[] {
  return privateState(handle, 'openEnvelope').key.getKeyIDs();
}

/**
 * Decrypt and check an envelope: for our key, signed by the pinned keybot key, listing
 * `expectedAccount` with our key's fingerprint, issued recently. Whether its epoch
 * is newer than the one we hold is the caller's check: see {@link isNewerEpoch}.
 */
export async function openEnvelope(options: OpenEnvelopeOptions): Promise<OpenEnvelopeResult> {
  const caller = 'openEnvelope';
  if (!options || typeof options !== 'object') throw new TypeError(`${caller}: expected one options object`);
  if (!(options.data instanceof Uint8Array)) throw new TypeError(`${caller}: options.data must be a Uint8Array`);
  const mine = privateState(options.decryptionKey, caller);
  const pinned = publicState(options.signerKey, caller);
  if (typeof options.expectedAccount !== 'string' || options.expectedAccount.length === 0) {
    throw new TypeError(`${caller}: options.expectedAccount must be a non-empty string`);
  }
  const { now } = options;
  if (typeof now !== 'number' || !Number.isFinite(now)) throw new TypeError(`${caller}: options.now must be a number (ms)`);
  const maxAgeMs = options.maxAgeMs ?? DEFAULT_ENVELOPE_MAX_AGE_MS;
  const maxSkewMs = options.maxSkewMs ?? DEFAULT_ENVELOPE_MAX_SKEW_MS;

  let message;
  try {
    message = await readMessage({ binaryMessage: options.data });
  } catch (err) {
    return { status: EnvelopeStatus.MALFORMED, reason: (err as Error).message };
  }
  const ours = keyIdsOf(options.decryptionKey);
  const addressed = message.getEncryptionKeyIDs();
  if (addressed.length === 0) return { status: EnvelopeStatus.MALFORMED, reason: 'not a public-key encrypted message' };
  if (!addressed.some((id) => ours.some((o) => o.equals(id, true)))) {
    return { status: EnvelopeStatus.NOT_FOR_ME };
  }

  let result;
  try {
    // openpgp.js refuses signatures made "in the future" relative to `date`: allow the skew.
    result = await decrypt({
      message,
      decryptionKeys: mine.key,
      verificationKeys: pinned.key,
      date: new Date(now + maxSkewMs),
      format: 'binary',
    });
  } catch (err) {
    return { status: EnvelopeStatus.DECRYPT_FAILED, reason: (err as Error).message };
  }
  // Settle every verification promise, so none is left to reject unhandled.
  const checks = await Promise.allSettled(result.signatures.map((s) => s.verified));
  for (const s of result.signatures) s.signature.catch(() => undefined);
  if (result.signatures.length === 0) return { status: EnvelopeStatus.UNSIGNED };
  const pinnedIds = pinned.key.getKeyIDs();
  const good = result.signatures.some(
    (s, i) => checks[i]!.status === 'fulfilled' && pinnedIds.some((id) => id.equals(s.keyID)),
  );
  if (!good) {
    // A keybot clock far ahead of ours makes openpgp.js reject the signature as made in the
    // future: tell that apart from a forgery by the (signed, but here unverified) creation time.
    for (const s of result.signatures) {
      const created = await s.signature.then((sig) => sig.packets[0]?.created ?? null, () => null);
      if (created && created.getTime() > now + maxSkewMs && pinnedIds.some((id) => id.equals(s.keyID))) {
        return { status: EnvelopeStatus.NOT_YET_VALID };
      }
    }
    const failure = checks.find((c) => c.status === 'rejected') as PromiseRejectedResult | undefined;
    return { status: EnvelopeStatus.BAD_SIGNATURE, reason: failure ? String((failure.reason as Error)?.message) : undefined };
  }

  let wire: unknown;
  try {
    wire = JSON.parse(utf8.decode(result.data as Uint8Array));
  } catch {
    return { status: EnvelopeStatus.MALFORMED, reason: 'the payload is not JSON' };
  }
  const parsed = fromWire(wire);
  if (!parsed.payload) return { status: parsed.status };
  const payload = parsed.payload;

  // Ours if keybot lists our account with our key (docs/PROTOCOL.md "Who accepts an envelope").
  const me = casefold(options.expectedAccount);
  if (parsed.to !== undefined && casefold(parsed.to) !== me) {
    return { status: EnvelopeStatus.WRONG_RECIPIENT, reason: `addressed to ${parsed.to}` };
  }
  const listed = payload.members.find((m) => casefold(m.account) === me);
  if (!listed) return { status: EnvelopeStatus.WRONG_RECIPIENT, reason: 'the member list does not name us' };
  if (listed.fingerprint !== options.decryptionKey.fingerprint) {
    return { status: EnvelopeStatus.WRONG_RECIPIENT, reason: 'the member list gives us another key' };
  }
  if (payload.issuedAt > now + maxSkewMs) return { status: EnvelopeStatus.NOT_YET_VALID };
  if (payload.issuedAt < now - maxAgeMs) return { status: EnvelopeStatus.EXPIRED };
  return { status: EnvelopeStatus.OK, payload };
}

/**
 * The epoch rule: a member installs an envelope's key only if its epoch is newer than the one it
 * holds for the room (`current` undefined = none held yet). Equal epochs are refused too: a
 * re-sent envelope for the current epoch (keybot `key <#room>`) carries nothing new.
 */
export function isNewerEpoch(options: { current?: number; offered: number }): boolean {
  if (!options || typeof options !== 'object') throw new TypeError('isNewerEpoch: expected one options object');
  if (!isU32(options.offered) || (options.current !== undefined && !isU32(options.current))) {
    throw new TypeError('isNewerEpoch: epochs must be integers from 0 to 2^32-1');
  }
  return options.current === undefined || options.offered > options.current;
}
