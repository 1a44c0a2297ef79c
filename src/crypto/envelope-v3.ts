/**
 * Envelope version 3: epochs whose cost per member grows with the changes, not with the room
 * (docs/PROTOCOL.md "Envelope version 3"). Three pieces:
 *
 *  - a **join envelope**, once per member per room (and again after keybot restarts): an OpenPGP
 *    message encrypted to the member's key holding the room key, the full roster as keybot holds
 *    it (inline, or for a large room its hash and the number of **roster pages** that carry it),
 *    the operations that added this member, and a fresh 32-byte **member key** shared by keybot
 *    and this member alone; signed inside by keybot's raw signing key over the recipient's
 *    fingerprint and the JSON (so one member cannot re-wrap what they received for another);
 *  - **roster pages** (a large room's roster, the same for everyone and secret to nobody): each
 *    a slice of the roster in canonical order, bound by keybot's signature to room, epoch, the
 *    roster's hash, its index and the page count; the member joins them back and checks the hash
 *    the join envelope names;
 *  - an **epoch notice**, the same for everyone and secret to nobody: room, epoch, the epoch it
 *    follows, the signed operations since then, the entries they add, the accounts keybot saw
 *    leave, and the resulting roster's hash, signed by keybot; members derive the new roster from
 *    the one they hold and the operations (each checked against its actor's roster entry), and
 *    refuse an epoch whose roster they cannot derive;
 *  - a **key line** per member: the epoch's room key under AES-256-GCM with that member's member
 *    key, bound to room, epoch, account and the epoch notice's digest. A member who left holds
 *    only their own member key, which keybot forgets, so they cannot open the next epoch's lines.
 *
 * Pure functions; keybot's and the member's keys come in as handles.
 */
import { aesGcmOpen, aesGcmSeal, randomBytes, sha256, signRaw, verifyRaw } from './primitives.js';
import { bytesEqual, casefold, concatBytes, fromBase64, toBase64, utf8 } from './bytes.js';
import { EnvelopeStatus, isAccountName, isFingerprint, isRoomName, isU32, memberListProblem, type EnvelopeMember } from './envelope.js';
import { privateState, publicState, type PrivateKeyHandle, type PublicKeyHandle } from './keys.js';
import { ROOM_KEY_BYTES } from './message.js';
import { createMessage, decrypt, encrypt, readMessage } from './openpgp.js';
import { applyRoomOp, MAX_ROSTER, readRoomOp, rosterHash, RoomOpStatus, verifyRoomOp, type RoomOp } from './room-ops.js';
import { type SigningPublicKey } from './signing.js';

export const ENVELOPE_V3 = 3;
/** Bytes of a member key. */
export const MEMBER_KEY_BYTES = 32;
/** Most operations one epoch notice carries. */
export const MAX_NOTICE_OPS = 64;

const JOIN_DOMAIN = utf8.encode('sealchat-join-v3\0');
const PAGE_DOMAIN = utf8.encode('sealchat-roster-v3\0');
/** Most roster pages one roster may take. */
export const MAX_ROSTER_PAGES = 128;
/** JSON bytes keybot puts in one roster page at most: with framing it stays far under a companion's 64 KiB reassembly cap. */
export const ROSTER_PAGE_BYTES = 40 * 1024;
const NOTICE_DOMAIN = utf8.encode('sealchat-epoch-v3\0');
const WRAP_DOMAIN = utf8.encode('sealchat-wrap-v3\0');

type WireMember = [string, string, string, string];
const toWireMember = (m: EnvelopeMember): WireMember => [m.account, m.fingerprint, m.signingKey.alg, m.signingKey.key];
const fromWireMember = (w: unknown): EnvelopeMember | undefined => {
  if (!Array.isArray(w) || w.length !== 4 || !w.every((x) => typeof x === 'string')) return undefined;
  const [account, fingerprint, alg, key] = w as WireMember;
  return { account, fingerprint, signingKey: { alg: alg as SigningPublicKey['alg'], key } };
};
function decodeOps(list: unknown): Uint8Array[] | undefined {
  if (!Array.isArray(list) || list.length > MAX_NOTICE_OPS) return undefined;
  const out: Uint8Array[] = [];
  for (const b of list) {
    const d = typeof b === 'string' ? fromBase64(b) : undefined;
    if (!d) return undefined;
    out.push(d);
  }
  return out;
}
function splitSigned(data: Uint8Array): { json: Uint8Array; signature: Uint8Array } | undefined {
  const i = data.indexOf(0);
  if (i <= 0 || i === data.length - 1) return undefined;
  return { json: data.subarray(0, i), signature: data.subarray(i + 1) };
}
function parseJson(bytes: Uint8Array): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(utf8.decode(bytes)) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

// ---- join envelope ------------------------------------------------------------------------

export interface JoinPayload {
  room: string;
  epoch: number;
  /** The room key of this epoch. */
  key: Uint8Array;
  issuedAt: number;
  /** Shared by keybot and this member for this room: later epochs' keys come wrapped under it. */
  memberKey: Uint8Array;
  /** Whom this envelope is for. */
  recipient: { account: string; fingerprint: string };
  /**
   * The room's members with this epoch's key, the recipient among them (keybot's statement).
   * Empty when the roster comes in pages (`rosterPages`).
   */
  roster: EnvelopeMember[];
  /** A large room's roster: its hash and how many roster pages carry it (instead of `roster`). */
  rosterPages?: { hash: Uint8Array; count: number };
  /** The signed operations that added the recipient (empty when keybot re-keys after a restart). */
  ops: Uint8Array[];
}

function joinProblem(p: JoinPayload): string | undefined {
  if (!isRoomName(p.room)) return 'room must be a channel name';
  if (!isU32(p.epoch)) return 'epoch must be a u32';
  if (!(p.key instanceof Uint8Array) || p.key.length !== ROOM_KEY_BYTES) return `key must be ${ROOM_KEY_BYTES} bytes`;
  if (!Number.isSafeInteger(p.issuedAt) || p.issuedAt < 0) return 'issuedAt must be a time in ms';
  if (!(p.memberKey instanceof Uint8Array) || p.memberKey.length !== MEMBER_KEY_BYTES) return `memberKey must be ${MEMBER_KEY_BYTES} bytes`;
  if (!p.recipient || !isAccountName(p.recipient.account) || !isFingerprint(p.recipient.fingerprint)) return 'recipient must be an account and a fingerprint';
  if (p.rosterPages !== undefined) {
    const r = p.rosterPages;
    if (!r || !(r.hash instanceof Uint8Array) || r.hash.length !== 32) return 'rosterPages.hash must be a 32-byte hash';
    if (!Number.isSafeInteger(r.count) || r.count < 1 || r.count > MAX_ROSTER_PAGES) return `rosterPages.count must be 1 to ${MAX_ROSTER_PAGES}`;
    if (!Array.isArray(p.roster) || p.roster.length !== 0) return 'a paged roster lists no members inline';
  } else {
    if (!Array.isArray(p.roster) || p.roster.length === 0 || p.roster.length > MAX_ROSTER) return `roster must list 1 to ${MAX_ROSTER} members`;
    const problem = memberListProblem(p.roster);
    if (problem) return `roster: ${problem}`;
    const me = p.roster.find((m) => casefold(m.account) === casefold(p.recipient.account));
    if (!me || me.fingerprint !== p.recipient.fingerprint) return 'the roster must list the recipient with its fingerprint';
  }
  if (!Array.isArray(p.ops) || p.ops.length > MAX_NOTICE_OPS || !p.ops.every((o) => o instanceof Uint8Array && o.length > 0)) return 'ops must be a list of operations';
  return undefined;
}

function encodeJoin(p: JoinPayload): Uint8Array {
  return utf8.encode(
    JSON.stringify({
      v: ENVELOPE_V3,
      t: 'join',
      room: p.room,
      epoch: p.epoch,
      key: toBase64(p.key),
      iat: p.issuedAt,
      mk: toBase64(p.memberKey),
      to: [p.recipient.account, p.recipient.fingerprint],
      ...(p.rosterPages ? { r: toBase64(p.rosterPages.hash), pn: p.rosterPages.count } : { m: p.roster.map(toWireMember) }),
      ops: p.ops.map(toBase64),
    }),
  );
}

function joinTranscript(fingerprint: string, json: Uint8Array): Uint8Array {
  return concatBytes(JOIN_DOMAIN, utf8.encode(fingerprint), Uint8Array.of(0), json);
}

/** A fresh member key (keybot makes one per member per room). */
export function generateMemberKey(): Uint8Array {
  return randomBytes(MEMBER_KEY_BYTES);
}

/** keybot: seal a join envelope to one member. Misuse (a payload that breaks the schema, a recipient key that is not the payload's) throws. */
export async function sealJoinEnvelope(options: { signer: PrivateKeyHandle; recipientKey: PublicKeyHandle; payload: JoinPayload }): Promise<{ status: EnvelopeStatus; data?: Uint8Array; reason?: string }> {
  const caller = 'sealJoinEnvelope';
  if (!options || typeof options !== 'object') throw new TypeError(`${caller}: expected one options object`);
  const signer = privateState(options.signer, caller);
  const recipient = publicState(options.recipientKey, caller);
  const problem = joinProblem(options.payload);
  if (problem) throw new TypeError(`${caller}: payload: ${problem}`);
  if (options.recipientKey.fingerprint !== options.payload.recipient.fingerprint) throw new TypeError(`${caller}: the recipient key is not the payload's recipient`);
  const json = encodeJoin(options.payload);
  const signature = signRaw(signer.signingAlg, signer.signingKeyObject, joinTranscript(options.payload.recipient.fingerprint, json));
  try {
    const data = await encrypt({
      message: await createMessage({ binary: concatBytes(json, Uint8Array.of(0), signature), date: new Date(options.payload.issuedAt) }),
      encryptionKeys: recipient.key,
      date: new Date(options.payload.issuedAt),
      format: 'binary',
    });
    return { status: EnvelopeStatus.OK, data: data as Uint8Array };
  } catch (err) {
    return { status: EnvelopeStatus.SEAL_FAILED, reason: (err as Error).message };
  }
}

/**
 * A member: decrypt and check a join envelope. Checks: for our key, signed by the pinned keybot
 * key over our fingerprint, for our account and key, the roster lists us with our key, issued
 * within the window. The epoch rule and what the roster may contain (see the companion's rules in
 * docs/PROTOCOL.md) are the caller's.
 */
export async function openJoinEnvelope(options: {
  data: Uint8Array;
  decryptionKey: PrivateKeyHandle;
  keybotKey: PublicKeyHandle;
  expectedAccount: string;
  now: number;
  maxAgeMs?: number;
  maxSkewMs?: number;
}): Promise<{
  status: EnvelopeStatus;
  payload?: JoinPayload;
  reason?: string;
  /** The envelope holds a version 1 or 2 payload (not checked here: openEnvelope reads those). */
  legacy?: 1 | 2;
}> {
  const caller = 'openJoinEnvelope';
  if (!options || typeof options !== 'object') throw new TypeError(`${caller}: expected one options object`);
  const mine = privateState(options.decryptionKey, caller);
  const keybot = publicState(options.keybotKey, caller);
  let message;
  try {
    message = await readMessage({ binaryMessage: options.data });
  } catch (err) {
    return { status: EnvelopeStatus.MALFORMED, reason: (err as Error).message };
  }
  const ours = mine.key.getKeyIDs();
  if (message.getEncryptionKeyIDs().length === 0) return { status: EnvelopeStatus.MALFORMED, reason: 'not a public-key encrypted message' };
  if (!message.getEncryptionKeyIDs().some((id) => ours.some((o) => o.equals(id, true)))) return { status: EnvelopeStatus.NOT_FOR_ME };
  let literal: Uint8Array;
  try {
    literal = (await decrypt({ message, decryptionKeys: mine.key, format: 'binary' })).data as Uint8Array;
  } catch (err) {
    return { status: EnvelopeStatus.DECRYPT_FAILED, reason: (err as Error).message };
  }
  const parts = splitSigned(literal);
  if (!parts) {
    // A version 1 or 2 payload (JSON alone, its OpenPGP signature around it): say so, so that the
    // caller can open it the older way (openEnvelope) during the transition, or refuse a downgrade.
    const legacy = literal[0] === 0x7b ? parseJson(literal) : undefined;
    if (legacy && (legacy.v === 1 || legacy.v === 2)) return { status: EnvelopeStatus.UNSUPPORTED_VERSION, legacy: legacy.v };
    return { status: EnvelopeStatus.UNSIGNED };
  }
  const myFp = options.decryptionKey.fingerprint;
  if (!verifyRaw(keybot.signingAlg, keybot.signingKeyObject, joinTranscript(myFp, parts.json), parts.signature)) {
    return { status: EnvelopeStatus.BAD_SIGNATURE };
  }
  const w = parseJson(parts.json);
  if (!w) return { status: EnvelopeStatus.MALFORMED };
  if (w.v !== ENVELOPE_V3 || w.t !== 'join') return { status: typeof w.v === 'number' && w.v !== ENVELOPE_V3 ? EnvelopeStatus.UNSUPPORTED_VERSION : EnvelopeStatus.MALFORMED };
  const key = typeof w.key === 'string' ? fromBase64(w.key) : undefined;
  const mk = typeof w.mk === 'string' ? fromBase64(w.mk) : undefined;
  const ops = decodeOps(w.ops);
  // Exactly one of an inline roster (`m`) and a paged one (`r`, `pn`).
  const paged = w.m === undefined && w.r !== undefined;
  const roster = paged ? [] : Array.isArray(w.m) ? w.m.map(fromWireMember) : undefined;
  const hash = paged && typeof w.r === 'string' ? fromBase64(w.r) : undefined;
  const to = Array.isArray(w.to) && w.to.length === 2 ? (w.to as unknown[]) : undefined;
  if (!key || !mk || !ops || !roster || roster.some((m) => !m) || !to || typeof to[0] !== 'string' || typeof to[1] !== 'string') return { status: EnvelopeStatus.MALFORMED };
  if (paged ? !hash || typeof w.pn !== 'number' : w.pn !== undefined) return { status: EnvelopeStatus.MALFORMED };
  const payload: JoinPayload = {
    room: w.room as string,
    epoch: w.epoch as number,
    key,
    issuedAt: w.iat as number,
    memberKey: mk,
    recipient: { account: to[0], fingerprint: to[1] },
    roster: roster as EnvelopeMember[],
    ...(paged ? { rosterPages: { hash: hash!, count: w.pn as number } } : {}),
    ops,
  };
  if (joinProblem(payload)) return { status: EnvelopeStatus.MALFORMED };
  if (casefold(payload.recipient.account) !== casefold(options.expectedAccount) || payload.recipient.fingerprint !== myFp) {
    return { status: EnvelopeStatus.WRONG_RECIPIENT, reason: `for ${payload.recipient.account}` };
  }
  const { now } = options;
  if (payload.issuedAt > now + (options.maxSkewMs ?? 5 * 60_000)) return { status: EnvelopeStatus.NOT_YET_VALID };
  if (payload.issuedAt < now - (options.maxAgeMs ?? 15 * 60_000)) return { status: EnvelopeStatus.EXPIRED };
  return { status: EnvelopeStatus.OK, payload };
}

// ---- roster pages -------------------------------------------------------------------------

/** One verified roster page: a slice of the roster of `room` at `epoch` whose whole hashes to `hash`. */
export interface RosterPage {
  room: string;
  epoch: number;
  hash: Uint8Array;
  /** 1..count */
  index: number;
  count: number;
  members: EnvelopeMember[];
}

/** Canonical roster order (that of rosterHash): by casefolded account. */
const byAccount = (a: EnvelopeMember, b: EnvelopeMember): number => {
  const x = casefold(a.account);
  const y = casefold(b.account);
  return x < y ? -1 : x > y ? 1 : 0;
};

function encodePage(room: string, epoch: number, hash: Uint8Array, index: number, count: number, members: readonly EnvelopeMember[]): Uint8Array {
  return utf8.encode(JSON.stringify({ v: ENVELOPE_V3, t: 'roster', room, epoch, r: toBase64(hash), i: index, n: count, m: members.map(toWireMember) }));
}

/**
 * keybot: the roster of `room` at `epoch` as signed pages (JSON, NUL, keybot's raw signature over
 * the roster-page domain and the JSON), the members in canonical order, each page's JSON at most
 * `maxBytes`. Every member of the epoch gets the same pages; the join envelope names their hash
 * and count. Misuse (a bad roster, one too large for MAX_ROSTER_PAGES) throws.
 */
export function signRosterPages(options: { signer: PrivateKeyHandle; room: string; epoch: number; roster: readonly EnvelopeMember[]; maxBytes?: number }): { hash: Uint8Array; pages: Uint8Array[] } {
  const caller = 'signRosterPages';
  const signer = privateState(options?.signer, caller);
  const { room, epoch } = options;
  if (!isRoomName(room) || !isU32(epoch)) throw new TypeError(`${caller}: room and epoch`);
  if (!Array.isArray(options.roster) || options.roster.length === 0 || options.roster.length > MAX_ROSTER) throw new TypeError(`${caller}: roster must list 1 to ${MAX_ROSTER} members`);
  const problem = memberListProblem(options.roster);
  if (problem) throw new TypeError(`${caller}: roster: ${problem}`);
  const maxBytes = options.maxBytes ?? ROSTER_PAGE_BYTES;
  const hash = rosterHash(options.roster);
  const sorted = [...options.roster].sort(byAccount);
  // Pack by bytes (an RSA member's entry is five times an Ed25519 one's); 200 bytes spare for the page's other fields.
  const slices: EnvelopeMember[][] = [[]];
  let used = 0;
  for (const m of sorted) {
    const size = JSON.stringify(toWireMember(m)).length + 1;
    if (used + size > maxBytes - 200 && slices[slices.length - 1]!.length > 0) {
      slices.push([]);
      used = 0;
    }
    slices[slices.length - 1]!.push(m);
    used += size;
  }
  if (slices.length > MAX_ROSTER_PAGES) throw new TypeError(`${caller}: the roster needs more than ${MAX_ROSTER_PAGES} pages`);
  const pages = slices.map((members, i) => {
    const json = encodePage(room, epoch, hash, i + 1, slices.length, members);
    return concatBytes(json, Uint8Array.of(0), signRaw(signer.signingAlg, signer.signingKeyObject, concatBytes(PAGE_DOMAIN, json)));
  });
  return { hash, pages };
}

/** A member: check keybot's signature and the schema of one roster page. Binding it to a join envelope is assembleRoster's. */
export function verifyRosterPage(options: { data: Uint8Array; keybotKey: PublicKeyHandle }): { status: EnvelopeStatus; page?: RosterPage } {
  const keybot = publicState(options?.keybotKey, 'verifyRosterPage');
  const parts = splitSigned(options.data);
  if (!parts) return { status: EnvelopeStatus.MALFORMED };
  if (!verifyRaw(keybot.signingAlg, keybot.signingKeyObject, concatBytes(PAGE_DOMAIN, parts.json), parts.signature)) return { status: EnvelopeStatus.BAD_SIGNATURE };
  const w = parseJson(parts.json);
  if (!w || w.v !== ENVELOPE_V3 || w.t !== 'roster') return { status: EnvelopeStatus.MALFORMED };
  const hash = typeof w.r === 'string' ? fromBase64(w.r) : undefined;
  const members = Array.isArray(w.m) ? w.m.map(fromWireMember) : undefined;
  const { i, n } = w;
  if (!isRoomName(w.room) || !isU32(w.epoch) || !hash || hash.length !== 32 || !members || members.length === 0 || members.some((m) => !m)) return { status: EnvelopeStatus.MALFORMED };
  if (!Number.isSafeInteger(n) || (n as number) < 1 || (n as number) > MAX_ROSTER_PAGES || !Number.isSafeInteger(i) || (i as number) < 1 || (i as number) > (n as number)) return { status: EnvelopeStatus.MALFORMED };
  if (memberListProblem(members as EnvelopeMember[])) return { status: EnvelopeStatus.MALFORMED };
  return { status: EnvelopeStatus.OK, page: { room: w.room, epoch: w.epoch as number, hash, index: i as number, count: n as number, members: members as EnvelopeMember[] } };
}

export enum RosterStatus {
  OK = 'ok',
  /** A page of another room, epoch or roster than the join envelope names. */
  FOREIGN_PAGE = 'foreign-page',
  /** Two pages for one index, or a page count other than the join envelope's. */
  DUPLICATE_PAGE = 'duplicate-page',
  /** Not every index 1..count is here yet. */
  INCOMPLETE = 'incomplete',
  /** The pages joined are not in canonical order, list someone twice, or do not hash to the named roster. */
  BAD_ROSTER = 'bad-roster',
  /** The roster does not list the recipient with their key. */
  NOT_LISTED = 'not-listed',
}

/**
 * A member: the roster a paged join envelope names, from verified pages (in any arrival order).
 * Every page must be of that room, epoch, roster hash and page count; each index 1..count exactly
 * once; the members joined in index order strictly ascending by casefolded account (one canonical
 * form), none twice; their hash exactly the named one; the recipient listed with their fingerprint.
 */
export function assembleRoster(options: {
  pages: readonly RosterPage[];
  room: string;
  epoch: number;
  hash: Uint8Array;
  count: number;
  recipient: { account: string; fingerprint: string };
}): { status: RosterStatus; roster?: EnvelopeMember[]; reason?: string } {
  const { room, epoch, hash, count } = options;
  const byIndex = new Map<number, RosterPage>();
  for (const p of options.pages) {
    if (casefold(p.room) !== casefold(room) || p.epoch !== epoch || !bytesEqual(p.hash, hash)) return { status: RosterStatus.FOREIGN_PAGE, reason: `a page of ${p.room} epoch ${p.epoch}` };
    if (p.count !== count || byIndex.has(p.index)) return { status: RosterStatus.DUPLICATE_PAGE, reason: `page ${p.index}/${p.count}` };
    byIndex.set(p.index, p);
  }
  const roster: EnvelopeMember[] = [];
  for (let i = 1; i <= count; i++) {
    const p = byIndex.get(i);
    if (!p) return { status: RosterStatus.INCOMPLETE, reason: `page ${i} of ${count} is missing` };
    for (const m of p.members) {
      const last = roster[roster.length - 1];
      if (last && byAccount(last, m) >= 0) return { status: RosterStatus.BAD_ROSTER, reason: `page ${i} is out of order` };
      roster.push(m);
    }
  }
  if (roster.length > MAX_ROSTER || memberListProblem(roster)) return { status: RosterStatus.BAD_ROSTER, reason: 'not a roster' };
  if (!bytesEqual(rosterHash(roster), hash)) return { status: RosterStatus.BAD_ROSTER, reason: 'the pages do not hash to the roster the join envelope names' };
  const me = roster.find((m) => casefold(m.account) === casefold(options.recipient.account));
  if (!me || me.fingerprint !== options.recipient.fingerprint) return { status: RosterStatus.NOT_LISTED };
  return { status: RosterStatus.OK, roster };
}

/** What a reassembled `{`-data from keybot is: an epoch notice or a roster page (by its `t`, unchecked). */
export function signedJsonKind(data: Uint8Array): 'epoch' | 'roster' | undefined {
  const parts = isEpochNotice(data) ? splitSigned(data) : undefined;
  const t = parts ? parseJson(parts.json)?.t : undefined;
  return t === 'epoch' || t === 'roster' ? t : undefined;
}

// ---- epoch notice -------------------------------------------------------------------------

export interface EpochNotice {
  room: string;
  epoch: number;
  /** The epoch this one follows: only a member holding it can derive the new roster. */
  prev: number;
  issuedAt: number;
  /** Hash of the roster after this epoch's changes. */
  roster: Uint8Array;
  /** The signed operations since `prev`, in the order keybot applied them. */
  ops: Uint8Array[];
  /** The roster entries those operations add (signing keys from the directory). */
  added: EnvelopeMember[];
  /** Accounts keybot saw leave since `prev` (PART, QUIT, KICK): fewer readers needs no one's signature. */
  gone: string[];
}

function noticeProblem(n: EpochNotice): string | undefined {
  if (!isRoomName(n.room)) return 'room must be a channel name';
  if (!isU32(n.epoch) || !isU32(n.prev) || n.epoch <= n.prev) return 'epoch must be a u32 greater than prev';
  if (!Number.isSafeInteger(n.issuedAt) || n.issuedAt < 0) return 'issuedAt must be a time in ms';
  if (!(n.roster instanceof Uint8Array) || n.roster.length !== 32) return 'roster must be a 32-byte hash';
  if (!Array.isArray(n.ops) || n.ops.length > MAX_NOTICE_OPS || !n.ops.every((o) => o instanceof Uint8Array && o.length > 0)) return 'ops must be a list of operations';
  if (!Array.isArray(n.added) || n.added.length > MAX_ROSTER) return 'added must be a list of members';
  const problem = memberListProblem(n.added);
  if (problem) return `added: ${problem}`;
  if (!Array.isArray(n.gone) || n.gone.length > MAX_ROSTER || !n.gone.every(isAccountName)) return 'gone must be a list of accounts';
  return undefined;
}

function encodeNotice(n: EpochNotice): Uint8Array {
  return utf8.encode(
    JSON.stringify({
      v: ENVELOPE_V3,
      t: 'epoch',
      room: n.room,
      epoch: n.epoch,
      prev: n.prev,
      iat: n.issuedAt,
      r: toBase64(n.roster),
      ops: n.ops.map(toBase64),
      add: n.added.map(toWireMember),
      gone: n.gone,
    }),
  );
}

/** keybot: the signed notice (JSON, NUL, keybot's raw signature), to send as `SC1E` parts to the room. */
export function signEpochNotice(options: { signer: PrivateKeyHandle; notice: EpochNotice }): { data: Uint8Array; digest: Uint8Array } {
  const signer = privateState(options?.signer, 'signEpochNotice');
  const problem = noticeProblem(options.notice);
  if (problem) throw new TypeError(`signEpochNotice: ${problem}`);
  const json = encodeNotice(options.notice);
  const signature = signRaw(signer.signingAlg, signer.signingKeyObject, concatBytes(NOTICE_DOMAIN, json));
  return { data: concatBytes(json, Uint8Array.of(0), signature), digest: noticeDigest(json) };
}

function noticeDigest(json: Uint8Array): Uint8Array {
  return sha256(NOTICE_DOMAIN, json);
}

/** Does this reassembled envelope data hold an epoch notice (JSON) rather than a join envelope (OpenPGP)? */
export function isEpochNotice(data: Uint8Array): boolean {
  return data.length > 0 && data[0] === 0x7b; // '{': OpenPGP packets start with a byte >= 0x80
}

/** A member: check keybot's signature and the schema of an epoch notice. */
export function verifyEpochNotice(options: { data: Uint8Array; keybotKey: PublicKeyHandle; now: number; maxAgeMs?: number; maxSkewMs?: number }): {
  status: EnvelopeStatus;
  notice?: EpochNotice;
  /** Binds the key lines of this epoch to this notice. */
  digest?: Uint8Array;
} {
  const keybot = publicState(options?.keybotKey, 'verifyEpochNotice');
  const parts = splitSigned(options.data);
  if (!parts) return { status: EnvelopeStatus.MALFORMED };
  if (!verifyRaw(keybot.signingAlg, keybot.signingKeyObject, concatBytes(NOTICE_DOMAIN, parts.json), parts.signature)) return { status: EnvelopeStatus.BAD_SIGNATURE };
  const w = parseJson(parts.json);
  if (!w || w.v !== ENVELOPE_V3 || w.t !== 'epoch') return { status: EnvelopeStatus.MALFORMED };
  const roster = typeof w.r === 'string' ? fromBase64(w.r) : undefined;
  const ops = decodeOps(w.ops);
  const added = Array.isArray(w.add) ? w.add.map(fromWireMember) : undefined;
  if (!roster || !ops || !added || added.some((m) => !m) || !Array.isArray(w.gone)) return { status: EnvelopeStatus.MALFORMED };
  const notice: EpochNotice = {
    room: w.room as string,
    epoch: w.epoch as number,
    prev: w.prev as number,
    issuedAt: w.iat as number,
    roster,
    ops,
    added: added as EnvelopeMember[],
    gone: w.gone as string[],
  };
  if (noticeProblem(notice)) return { status: EnvelopeStatus.MALFORMED };
  if (notice.issuedAt > options.now + (options.maxSkewMs ?? 5 * 60_000)) return { status: EnvelopeStatus.NOT_YET_VALID };
  if (notice.issuedAt < options.now - (options.maxAgeMs ?? 15 * 60_000)) return { status: EnvelopeStatus.EXPIRED };
  return { status: EnvelopeStatus.OK, notice, digest: noticeDigest(parts.json) };
}

/** One change a member can show: "carol added by alice, verified". */
export interface RosterChange {
  action: RoomOp['action'] | 'gone';
  actor?: string;
  targets: string[];
}

/**
 * Derive the roster after an epoch notice from the roster of `notice.prev` (keybot runs the same
 * to compute what it announces). Every operation must verify under its actor's entry in the roster
 * as it stands when the operation applies, at the notice's issue time; every added entry must be
 * named by an operation; then the `gone` accounts leave; the result's hash must be the notice's.
 * Anything else: not OK, and the member refuses the epoch.
 */
export function advanceRoster(options: { roster: readonly EnvelopeMember[]; notice: EpochNotice }): {
  status: RoomOpStatus;
  roster?: EnvelopeMember[];
  changes?: RosterChange[];
  reason?: string;
} {
  const { notice } = options;
  let roster = [...options.roster];
  const changes: RosterChange[] = [];
  const unused = new Map(notice.added.map((m) => [casefold(m.account), m]));
  for (const data of notice.ops) {
    const read = readRoomOp({ data });
    if (read.status !== RoomOpStatus.OK || !read.op) return { status: read.status, reason: 'an operation does not parse' };
    const actor = roster.find((m) => casefold(m.account) === casefold(read.op!.actor.account));
    if (!actor) return { status: RoomOpStatus.NOT_A_MEMBER, reason: `${read.op.actor.account} acted without being a member` };
    if (read.op.action === 'create') return { status: RoomOpStatus.STALE_ROSTER, reason: 'a create inside an epoch of an existing room' };
    const verified = verifyRoomOp({ data, signingKey: actor.signingKey, fingerprint: actor.fingerprint, now: notice.issuedAt });
    if (verified.status !== RoomOpStatus.OK || !verified.op) return { status: verified.status, reason: `an operation by ${actor.account} does not verify` };
    const op = verified.op;
    const added: EnvelopeMember[] = [];
    if (op.action === 'add') {
      for (const t of op.targets) {
        const e = unused.get(casefold(t.account));
        if (!e) return { status: RoomOpStatus.BAD_TARGET, reason: `no entry for ${t.account}` };
        unused.delete(casefold(t.account));
        added.push(e);
      }
    }
    const applied = applyRoomOp({ op, room: notice.room, roster, added });
    if (applied.status !== RoomOpStatus.OK || !applied.roster) return { status: applied.status, reason: applied.reason };
    roster = applied.roster;
    changes.push({ action: op.action, actor: op.actor.account, targets: op.targets.map((t) => t.account) });
  }
  if (unused.size > 0) return { status: RoomOpStatus.BAD_TARGET, reason: `${[...unused.values()].map((m) => m.account).join(', ')} added without an operation` };
  const gone = new Set(notice.gone.map(casefold));
  const left = roster.filter((m) => gone.has(casefold(m.account))).map((m) => m.account);
  if (left.length > 0) {
    roster = roster.filter((m) => !gone.has(casefold(m.account)));
    changes.push({ action: 'gone', targets: left });
  }
  if (!bytesEqual(rosterHash(roster), notice.roster)) return { status: RoomOpStatus.STALE_ROSTER, reason: "the announced roster is not the one the operations give" };
  return { status: RoomOpStatus.OK, roster, changes };
}

// ---- key lines ----------------------------------------------------------------------------

export const KEY_LINE_PREFIX = 'SC1K';

function wrapAad(room: string, epoch: number, account: string, digest: Uint8Array): Uint8Array {
  const e = new Uint8Array(4);
  new DataView(e.buffer).setUint32(0, epoch);
  return concatBytes(WRAP_DOMAIN, utf8.encode(casefold(room)), Uint8Array.of(0), e, utf8.encode(casefold(account)), Uint8Array.of(0), digest);
}

/** keybot: the key line for one member (`SC1K <room> <epoch> <base64 iv||ciphertext||tag>`), sent as a NOTICE to them. */
export function wrapEpochKey(options: { memberKey: Uint8Array; key: Uint8Array; room: string; epoch: number; account: string; digest: Uint8Array }): string {
  const { memberKey, key, room, epoch, account, digest } = options;
  if (memberKey.length !== MEMBER_KEY_BYTES || key.length !== ROOM_KEY_BYTES) throw new TypeError('wrapEpochKey: key sizes');
  const iv = randomBytes(12);
  const sealed = aesGcmSeal(memberKey, iv, key, wrapAad(room, epoch, account, digest));
  return `${KEY_LINE_PREFIX} ${room} ${epoch} ${toBase64(concatBytes(iv, sealed))}`;
}

/** A member: the room key from a key line, or undefined if it does not open (wrong key, room, epoch, account or notice). */
export function unwrapEpochKey(options: { line: string; memberKey: Uint8Array; account: string; digest: Uint8Array }): { room: string; epoch: number; key: Uint8Array } | undefined {
  const m = /^SC1K (#[^\s,:]{1,199}) (\d{1,10}) ([A-Za-z0-9+/=]{80})$/.exec(options.line);
  if (!m) return undefined;
  const room = m[1]!;
  const epoch = Number(m[2]);
  const raw = fromBase64(m[3]!);
  if (!isU32(epoch) || !raw || raw.length !== 12 + ROOM_KEY_BYTES + 16) return undefined;
  const key = aesGcmOpen(options.memberKey, raw.subarray(0, 12), raw.subarray(12), wrapAad(room, epoch, options.account, options.digest));
  return key ? { room, epoch, key } : undefined;
}

/** The room and epoch a key line is for, without opening it (to pair it with its notice). */
export function peekKeyLine(line: string): { room: string; epoch: number } | undefined {
  const m = /^SC1K (#[^\s,:]{1,199}) (\d{1,10}) /.exec(line);
  return m ? { room: m[1]!, epoch: Number(m[2]) } : undefined;
}
