/**
 * Room operations: the membership changes a member's companion signs with the member's own key,
 * so that nobody who merely controls room membership on the server (the daemon, or someone with a
 * member's password) can add a reader (docs/PROTOCOL.md "Room operations").
 *
 * An operation names the room, the roster it applies to (by hash), the action, the actor (account
 * and fingerprint) and the target members (account, fingerprint and room-message signing key, as
 * the actor's companion saw them), with a time and a fresh nonce. It is signed with the actor's
 * room-message signing key (the raw Ed25519 / RSA-PSS key of the actor's OpenPGP key, the same
 * one that signs their room messages), over a domain-separated transcript, so one signature can
 * never be taken for another kind of statement.
 *
 * Data on the wire: UTF-8 JSON, one NUL byte, the raw signature; sent to keybot as `SC1O` parts.
 * Pure functions: no I/O, no clock unless `now` is left out.
 */
import { bytesEqual, casefold, concatBytes, fromBase64, toBase64, utf8 } from './bytes.js';
import { isAccountName, isFingerprint, isRoomName, memberListProblem, type EnvelopeMember } from './envelope.js';
import { privateState, type PrivateKeyHandle } from './keys.js';
import { sha256, signRaw, verifyRaw } from './primitives.js';
import { importSigningPublicKey, type SigningPublicKey } from './signing.js';

/** Most members a room's roster may hold (envelope version 3; version 2 listed at most MAX_MEMBERS). */
export const MAX_ROSTER = 5000;

/** Version of the operation format. */
export const ROOM_OP_VERSION = 1;
/** Bytes of an operation's nonce. */
export const ROOM_OP_NONCE_BYTES = 16;
/** Most targets one operation may name (an invite line of keybot names at most this many). */
export const MAX_OP_TARGETS = 100;
/** Default acceptance window: an operation is at most this old ... */
export const DEFAULT_OP_MAX_AGE_MS = 5 * 60_000;
/** ... and at most this far in the future. */
export const DEFAULT_OP_MAX_SKEW_MS = 60_000;

/**
 * What an operation does:
 *  - `create`: open a new room (the roster is empty) with the actor and the targets;
 *  - `add`: add the targets to the room;
 *  - `remove`: remove the targets (the actor must be a member);
 *  - `leave`: the actor leaves (no targets).
 */
export type RoomOpAction = 'create' | 'add' | 'remove' | 'leave';
const ACTIONS: ReadonlySet<string> = new Set(['create', 'add', 'remove', 'leave']);

export interface RoomOp {
  action: RoomOpAction;
  /** The room, as keybot names it (compared casefolded). For `create`, the name the actor proposes. */
  room: string;
  /** Hash of the roster the operation applies to ({@link rosterHash}); `create` uses the empty roster's. */
  roster: Uint8Array;
  /** Who signs it: account and the fingerprint of the key they sign with. */
  actor: { account: string; fingerprint: string };
  /**
   * Accounts added (create, add) or removed (remove), each with the fingerprint the actor's
   * companion saw for it; empty for leave. The fingerprint fixes the key: its signing key is
   * whatever that key's owner made it, which the directory (keybot) reports beside it.
   */
  targets: OpTarget[];
  /** When the actor signed it, ms since the Unix epoch. */
  issuedAt: number;
  /** 16 random bytes: no two operations are the same statement. */
  nonce: Uint8Array;
}

/** An account an operation names, with the key fingerprint the actor named for it. */
export interface OpTarget {
  account: string;
  fingerprint: string;
}

export enum RoomOpStatus {
  OK = 'ok',
  /** Not an operation, or one that breaks the schema. */
  MALFORMED = 'malformed',
  UNSUPPORTED_VERSION = 'unsupported_version',
  /** The signature does not verify against the actor's key. */
  BAD_SIGNATURE = 'bad_signature',
  /** The signing key given is not the actor's (different fingerprint). */
  WRONG_SIGNER = 'wrong_signer',
  EXPIRED = 'expired',
  NOT_YET_VALID = 'not_yet_valid',
  /** (check) For another room than the one it is applied to. */
  WRONG_ROOM = 'wrong_room',
  /** (check) Made for another roster than the room's current one: replayed, reordered or stale. */
  STALE_ROSTER = 'stale_roster',
  /** (check) The actor is not a member of the roster under that fingerprint. */
  NOT_A_MEMBER = 'not_a_member',
  /** (check) A target of create/add is a member already, or a target of remove is not one. */
  BAD_TARGET = 'bad_target',
}

// ---- rosters ------------------------------------------------------------------------------

const ROSTER_DOMAIN = utf8.encode('sealchat-roster-v1\0');
const OP_DOMAIN = utf8.encode('sealchat-op-v1\0');

function sortedMembers(members: readonly EnvelopeMember[]): EnvelopeMember[] {
  return [...members].sort((a, b) => (casefold(a.account) < casefold(b.account) ? -1 : casefold(a.account) > casefold(b.account) ? 1 : 0));
}

/**
 * The roster's hash: SHA-256 over a domain tag and the JSON of the members sorted by casefolded
 * account, each `[casefolded account, fingerprint, alg, signing key]`. Order-independent; any
 * change of a member's key changes it.
 */
export function rosterHash(members: readonly EnvelopeMember[]): Uint8Array {
  const problem = memberListProblem(members);
  if (problem) throw new TypeError(`rosterHash: ${problem}`);
  const wire = sortedMembers(members).map((m) => [casefold(m.account), m.fingerprint, m.signingKey.alg, m.signingKey.key]);
  const digest = sha256(ROSTER_DOMAIN, utf8.encode(JSON.stringify(wire)));
  return new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength);
}

/** The hash of the empty roster: what a `create` applies to. */
export const EMPTY_ROSTER_HASH: Uint8Array = rosterHash([]);

// ---- wire ---------------------------------------------------------------------------------

type WireTarget = [string, string];
interface WireOp {
  v: number;
  a: string;
  room: string;
  r: string;
  by: [string, string];
  t: WireTarget[];
  iat: number;
  n: string;
}

function opProblem(op: RoomOp): string | undefined {
  if (!ACTIONS.has(op.action)) return 'action must be create, add, remove or leave';
  if (!isRoomName(op.room) || !op.room.startsWith('#')) return 'room must be a channel name';
  if (!(op.roster instanceof Uint8Array) || op.roster.length !== 32) return 'roster must be a 32-byte hash';
  if (!op.actor || !isAccountName(op.actor.account) || !isFingerprint(op.actor.fingerprint)) return 'actor must be an account and a fingerprint';
  if (!Array.isArray(op.targets) || op.targets.length > MAX_OP_TARGETS) return `targets must list at most ${MAX_OP_TARGETS} members`;
  const seen = new Set<string>();
  for (const t of op.targets) {
    if (!t || !isAccountName(t.account) || !isFingerprint(t.fingerprint)) return 'a target must be an account and a fingerprint';
    if (seen.has(casefold(t.account))) return `target ${t.account} is named twice`;
    seen.add(casefold(t.account));
  }
  if (op.action === 'leave' && op.targets.length > 0) return 'leave names no targets';
  if (op.action !== 'leave' && op.targets.length === 0) return `${op.action} needs at least one target`;
  if (op.targets.some((t) => casefold(t.account) === casefold(op.actor.account))) return 'the actor cannot be a target';
  if (!Number.isSafeInteger(op.issuedAt) || op.issuedAt < 0) return 'issuedAt must be a time in ms';
  if (!(op.nonce instanceof Uint8Array) || op.nonce.length !== ROOM_OP_NONCE_BYTES) return `nonce must be ${ROOM_OP_NONCE_BYTES} bytes`;
  return undefined;
}

/** The signed JSON of an operation (fields in this order, no whitespace; docs/PROTOCOL.md has a vector). */
export function encodeRoomOp(op: RoomOp): Uint8Array {
  if (!op || typeof op !== 'object') throw new TypeError('encodeRoomOp: expected an operation object');
  const problem = opProblem(op);
  if (problem) throw new TypeError(`encodeRoomOp: ${problem}`);
  const wire: WireOp = {
    v: ROOM_OP_VERSION,
    a: op.action,
    room: op.room,
    r: toBase64(op.roster),
    by: [op.actor.account, op.actor.fingerprint],
    t: op.targets.map((t) => [t.account, t.fingerprint]),
    iat: op.issuedAt,
    n: toBase64(op.nonce),
  };
  return utf8.encode(JSON.stringify(wire));
}

function decodeRoomOp(json: Uint8Array): { status: RoomOpStatus; op?: RoomOp } {
  let w: Partial<WireOp>;
  try {
    w = JSON.parse(utf8.decode(json)) as Partial<WireOp>;
  } catch {
    return { status: RoomOpStatus.MALFORMED };
  }
  if (!w || typeof w !== 'object' || Array.isArray(w)) return { status: RoomOpStatus.MALFORMED };
  if (w.v !== ROOM_OP_VERSION) return { status: typeof w.v === 'number' ? RoomOpStatus.UNSUPPORTED_VERSION : RoomOpStatus.MALFORMED };
  if (!Array.isArray(w.by) || w.by.length !== 2 || !Array.isArray(w.t) || typeof w.r !== 'string' || typeof w.n !== 'string') {
    return { status: RoomOpStatus.MALFORMED };
  }
  const roster = fromBase64(w.r);
  const nonce = fromBase64(w.n);
  if (!roster || !nonce) return { status: RoomOpStatus.MALFORMED };
  const targets: OpTarget[] = [];
  for (const t of w.t) {
    if (!Array.isArray(t) || t.length !== 2 || !t.every((x) => typeof x === 'string')) return { status: RoomOpStatus.MALFORMED };
    const [account, fingerprint] = t as WireTarget;
    targets.push({ account, fingerprint });
  }
  const op: RoomOp = {
    action: w.a as RoomOpAction,
    room: w.room as string,
    roster,
    actor: { account: w.by[0] as string, fingerprint: w.by[1] as string },
    targets,
    issuedAt: w.iat as number,
    nonce,
  };
  if (opProblem(op)) return { status: RoomOpStatus.MALFORMED };
  // Only the canonical encoding is accepted: one operation, one byte string, one signature.
  const again = encodeRoomOp(op);
  if (!bytesEqual(again, json)) return { status: RoomOpStatus.MALFORMED };
  return { status: RoomOpStatus.OK, op };
}

function transcript(json: Uint8Array): Uint8Array {
  return concatBytes(OP_DOMAIN, json);
}

// ---- sign, read, verify -------------------------------------------------------------------

/**
 * Sign an operation with the actor's unlocked key. Returns the wire data (JSON, NUL, signature).
 * Misuse throws: a malformed operation, or a signer that is not the actor.
 */
export function signRoomOp(options: { op: RoomOp; signer: PrivateKeyHandle }): Uint8Array {
  if (!options || typeof options !== 'object') throw new TypeError('signRoomOp: expected one options object');
  const signer = privateState(options.signer, 'signRoomOp');
  const json = encodeRoomOp(options.op);
  if (options.signer.fingerprint !== options.op.actor.fingerprint) {
    throw new TypeError('signRoomOp: the signer is not the actor (fingerprints differ)');
  }
  const signature = signRaw(signer.signingAlg, signer.signingKeyObject, transcript(json));
  return concatBytes(json, Uint8Array.of(0), signature);
}

/** Result of {@link readRoomOp} and {@link verifyRoomOp}. */
export interface RoomOpResult {
  status: RoomOpStatus;
  op?: RoomOp;
}

function split(data: Uint8Array): { json: Uint8Array; signature: Uint8Array } | undefined {
  if (!(data instanceof Uint8Array)) return undefined;
  const i = data.indexOf(0);
  if (i <= 0 || i === data.length - 1) return undefined;
  return { json: data.subarray(0, i), signature: data.subarray(i + 1) };
}

/**
 * Parse an operation WITHOUT checking its signature: to learn who claims to be its actor, so the
 * caller can find that actor's key. Never act on the result; use {@link verifyRoomOp}.
 */
export function readRoomOp(options: { data: Uint8Array }): RoomOpResult {
  const parts = split(options?.data);
  if (!parts) return { status: RoomOpStatus.MALFORMED };
  return decodeRoomOp(parts.json);
}

/**
 * Parse an UNSIGNED operation: the JSON alone, as keybot proposes it (`SC1Q` parts) for the
 * requester's companion to check and sign unchanged. Canonical JSON only (as for signed ones).
 * The caller decides whether the proposal is what its user asked for; nothing here trusts it.
 */
export function readProposedOp(options: { data: Uint8Array }): RoomOpResult {
  if (!(options?.data instanceof Uint8Array) || options.data.includes(0)) return { status: RoomOpStatus.MALFORMED };
  return decodeRoomOp(options.data);
}

/**
 * Verify an operation against the actor's key: `signingKey` and `fingerprint` are the key the
 * verifier trusts for the actor (keybot: the room's pin, or the directory's key for a create;
 * a companion: the roster's entry). Checks the schema, that the operation names that fingerprint
 * as its actor's, the signature, and the time window.
 */
export function verifyRoomOp(options: {
  data: Uint8Array;
  signingKey: SigningPublicKey;
  fingerprint: string;
  now?: number;
  maxAgeMs?: number;
  maxSkewMs?: number;
}): RoomOpResult {
  if (!options || typeof options !== 'object') throw new TypeError('verifyRoomOp: expected one options object');
  const parts = split(options.data);
  if (!parts) return { status: RoomOpStatus.MALFORMED };
  const read = decodeRoomOp(parts.json);
  if (read.status !== RoomOpStatus.OK || !read.op) return read;
  const op = read.op;
  if (op.actor.fingerprint !== options.fingerprint) return { status: RoomOpStatus.WRONG_SIGNER, op };
  const key = importSigningPublicKey(options.signingKey);
  if (!key || !verifyRaw(key.alg, key.keyObject, transcript(parts.json), parts.signature)) return { status: RoomOpStatus.BAD_SIGNATURE, op };
  const now = options.now ?? Date.now();
  if (now - op.issuedAt > (options.maxAgeMs ?? DEFAULT_OP_MAX_AGE_MS)) return { status: RoomOpStatus.EXPIRED, op };
  if (op.issuedAt - now > (options.maxSkewMs ?? DEFAULT_OP_MAX_SKEW_MS)) return { status: RoomOpStatus.NOT_YET_VALID, op };
  return { status: RoomOpStatus.OK, op };
}

// ---- applying to a roster -----------------------------------------------------------------

/** Result of {@link applyRoomOp}: the roster after the operation, or why it does not apply. */
export interface ApplyResult {
  status: RoomOpStatus;
  roster?: EnvelopeMember[];
  reason?: string;
}

/**
 * Apply a verified operation to the roster it claims to apply to. Both keybot (before it keys
 * anyone) and every companion (before it believes an epoch) run this same function:
 *  - the room must match (casefolded) and the roster hash must be the current roster's;
 *  - the actor must be in the roster under the fingerprint that signed (not for create, whose
 *    roster is empty: `actorEntry` is the actor's own entry, which must carry that fingerprint);
 *  - create/add targets must not be members, and `added` must give exactly one entry per target
 *    with the fingerprint the operation names (the signing keys come from the directory through
 *    keybot); remove targets must be members under the fingerprint named.
 */
export function applyRoomOp(options: {
  op: RoomOp;
  room: string;
  roster: readonly EnvelopeMember[];
  added?: readonly EnvelopeMember[];
  actorEntry?: EnvelopeMember;
}): ApplyResult {
  const { op, room, roster } = options;
  if (casefold(op.room) !== casefold(room)) return { status: RoomOpStatus.WRONG_ROOM, reason: `the operation is for ${op.room}` };
  const current = rosterHash(roster);
  if (!bytesEqual(current, op.roster)) return { status: RoomOpStatus.STALE_ROSTER, reason: 'the operation was made for another roster' };
  const byAccount = new Map(roster.map((m) => [casefold(m.account), m]));
  const actorKey = casefold(op.actor.account);
  const entriesFor = (): EnvelopeMember[] | string => {
    const added = options.added ?? [];
    if (added.length !== op.targets.length) return 'the added entries do not match the targets';
    const byTarget = new Map(added.map((m) => [casefold(m.account), m]));
    const out: EnvelopeMember[] = [];
    for (const t of op.targets) {
      const e = byTarget.get(casefold(t.account));
      if (!e || e.fingerprint !== t.fingerprint) return `${t.account} is not added with the key the operation names`;
      if (byAccount.has(casefold(t.account))) return `${t.account} is a member already`;
      out.push(e);
    }
    return out;
  };
  let next: EnvelopeMember[];
  if (op.action === 'create' || op.action === 'add') {
    if (op.action === 'create') {
      const me = options.actorEntry;
      if (roster.length > 0) return { status: RoomOpStatus.STALE_ROSTER, reason: 'the room exists already' };
      if (!me || casefold(me.account) !== actorKey || me.fingerprint !== op.actor.fingerprint) {
        return { status: RoomOpStatus.NOT_A_MEMBER, reason: "create needs the actor's own roster entry" };
      }
      byAccount.set(actorKey, me);
    } else {
      const actor = byAccount.get(actorKey);
      if (!actor || actor.fingerprint !== op.actor.fingerprint) return { status: RoomOpStatus.NOT_A_MEMBER, reason: `${op.actor.account} is not a member with that key` };
    }
    const entries = entriesFor();
    if (typeof entries === 'string') return { status: RoomOpStatus.BAD_TARGET, reason: entries };
    next = [...byAccount.values(), ...entries];
  } else {
    const actor = byAccount.get(actorKey);
    if (!actor || actor.fingerprint !== op.actor.fingerprint) return { status: RoomOpStatus.NOT_A_MEMBER, reason: `${op.actor.account} is not a member with that key` };
    if (op.action === 'remove') {
      for (const t of op.targets) {
        const m = byAccount.get(casefold(t.account));
        if (!m || m.fingerprint !== t.fingerprint) return { status: RoomOpStatus.BAD_TARGET, reason: `${t.account} is not a member with that key` };
      }
      const gone = new Set(op.targets.map((t) => casefold(t.account)));
      next = roster.filter((m) => !gone.has(casefold(m.account)));
    } else {
      next = roster.filter((m) => casefold(m.account) !== actorKey);
    }
  }
  if (next.length > MAX_ROSTER) return { status: RoomOpStatus.BAD_TARGET, reason: `a room holds at most ${MAX_ROSTER} members` };
  const problem = memberListProblem(next);
  if (problem) return { status: RoomOpStatus.BAD_TARGET, reason: problem };
  return { status: RoomOpStatus.OK, roster: sortedMembers(next) };
}

