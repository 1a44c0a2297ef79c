/**
 * Key envelopes: keybot → one member. An OpenPGP message (RFC 9580: public-key encrypted to the
 * member's key, signed by keybot's key, uncompressed) whose literal data is a small JSON document:
 *   {"v":2,"room":"#r","epoch":7,"key":"<base64 32 bytes>","iat":<ms>,
 *    "m":[["alice","<fingerprint>","ed25519","<base64>"], ...]}
 * Version 2 is the same for every member of an epoch, so keybot signs it once (signEnvelope) and
 * encrypts that one signed message to each member (sealEnvelope). Version 1 also named the
 * recipient (`"to"`); it is still opened. It travels as `SC1E` parts (parts.ts).
 * docs/PROTOCOL.md §"Key envelopes" is the spec.
 *
 * This file is the payload: its schema and its JSON wire form. keybot's side (sign once, seal to
 * each member) is envelope-seal.ts; a member's side (open, the epoch rule) envelope-open.ts.
 */
import { casefold, fromBase64, toBase64, utf8 } from './bytes.js';
import { ROOM_KEY_BYTES } from './message.js';
import type { SigningPublicKey } from './signing.js';

/** Version of the envelope payload keybot sends. */
export const ENVELOPE_VERSION = 2;
/** Payload versions a member opens: 1 (with `to`) and 2. */
const OPENABLE_VERSIONS: ReadonlySet<number> = new Set([1, 2]);
/** Most members one envelope may list. */
export const MAX_MEMBERS = 1000;

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

/** @internal */
export function isU32(v: unknown): v is number {
  return Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffff_ffff;
}

/** @internal Check a payload's fields; returns the first problem as a sentence, or undefined. */
export function payloadProblem(p: EnvelopePayload): string | undefined {
  if (typeof p.room !== 'string' || !ROOM_RE.test(p.room)) return 'room must be a channel name';
  if (!isU32(p.epoch)) return 'epoch must be an integer from 0 to 2^32-1';
  if (!(p.key instanceof Uint8Array) || p.key.length !== ROOM_KEY_BYTES) return `key must be ${ROOM_KEY_BYTES} bytes`;
  if (!Number.isSafeInteger(p.issuedAt) || p.issuedAt < 0) return 'issuedAt must be a time in ms';
  if (!Array.isArray(p.members) || p.members.length === 0 || p.members.length > MAX_MEMBERS) {
    return `members must list 1 to ${MAX_MEMBERS} members`;
  }
  return memberListProblem(p.members);
}

/** @internal Check a list of members (accounts unique when casefolded); the first problem, or undefined. */
export function memberListProblem(members: readonly EnvelopeMember[]): string | undefined {
  const seen = new Set<string>();
  for (const m of members) {
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

/** @internal Is this an account name as envelopes and operations carry them? */
export function isAccountName(v: unknown): v is string {
  return typeof v === 'string' && ACCOUNT_RE.test(v);
}

/** @internal Is this a room name as envelopes and operations carry them? */
export function isRoomName(v: unknown): v is string {
  return typeof v === 'string' && ROOM_RE.test(v);
}

/** @internal Is this a fingerprint (lowercase hex, v4 or v6)? */
export function isFingerprint(v: unknown): v is string {
  return typeof v === 'string' && FINGERPRINT_RE.test(v);
}

/** @internal The JSON form of a payload (always the current version). */
export function toWire(p: EnvelopePayload): WirePayload {
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

/** @internal A payload from parsed JSON of any openable version; `to` is version 1's recipient. */
export function fromWire(w: unknown): { payload?: EnvelopePayload; to?: string; status: EnvelopeStatus } {
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
