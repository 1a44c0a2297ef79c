/**
 * Operations: membership changes keybot carries out only when a member signed them
 * (docs/PROTOCOL.md "Room operations"; issue 11). The daemon's word for who sent `invite` is not
 * enough: whoever controls the daemon, or holds only a member's password, could otherwise add a
 * reader. So `invite` is two steps:
 *
 *  1. keybot checks the invite as before (who can be placed now) and PROPOSES the operation it
 *     would carry out: `create` (a new room, the name keybot chose) or `add`, the roster hash of
 *     the room's current epoch, the requester with the fingerprint the directory gives, each
 *     invitee with theirs, the time and a fresh nonce. It sends the JSON to the requester as
 *     `SC1Q` NOTICE parts and remembers it for `proposalTtlMs`.
 *  2. The requester's companion (SealClient, the proxy, the plugins' agent) checks the proposal
 *     against what its user typed and the roster it holds, signs it unchanged with the user's
 *     key, and sends it back as `SC1O` PRIVMSG parts. keybot accepts it only if it is exactly a
 *     proposal it made to that account and still holds, the signature verifies under the key
 *     keybot trusts for the actor (the roster entry of the room's current epoch for `add`, the
 *     directory's key for `create`) and it still applies to the room's roster (applyRoomOp).
 *     Then the invitees are placed with the fingerprints the operation names, and the operation
 *     is relayed to the room for every member's companion to check.
 *
 * A proposal not signed in time is reported to the requester and forgotten: a plain IRC client
 * cannot sign, so nothing happens. A proposal is used once (its nonce), so a signed operation
 * seen on the wire cannot be replayed.
 */
import { randomBytes } from 'node:crypto';
import {
  EMPTY_ROSTER_HASH,
  FrameStatus,
  MAX_OP_TARGETS,
  PartStatus,
  PartsReassembler,
  ROOM_OP_NONCE_BYTES,
  RoomOpStatus,
  applyRoomOp,
  encodeRoomOp,
  frameParts,
  readRoomOp,
  rosterHash,
  verifyRoomOp,
  type EnvelopeMember,
  type RoomOp,
} from '../crypto/index.js';
import { casefold } from '../protocol/names.js';
import { createLogger } from '../util/log.js';
import type { ServiceContext } from './context.js';
import { newRoomName, type AddToRoomResult, type Invitee, type Invites, type OpenRoomResult, type Refusal } from './invites.js';

const log = createLogger('keybot');

/** How long a proposal waits for its signature (a companion answers in milliseconds). */
export const DEFAULT_PROPOSAL_TTL_MS = 30_000;
/** Proposals one account may have outstanding. */
const MAX_PROPOSALS_PER_ACCOUNT = 8;

interface Proposal {
  requester: string;
  op: RoomOp;
  json: Uint8Array;
  /** What the invitees were called in the command, for the expiry notice. */
  names: string[];
  timer: NodeJS.Timeout;
}

export type ProposeResult =
  /** Sent to the requester for signing; `refused` are the invitees who cannot be placed now. */
  | { status: 'proposed'; room?: string; names: string[]; refused: Refusal[] }
  | Exclude<OpenRoomResult, { status: 'opened' }>
  | { status: 'not_member' }
  /** The room has no epoch yet: there is no roster to sign against. */
  | { status: 'key_pending'; room: string }
  /** Everyone named is refused (already in, offline...). */
  | { status: 'nobody_to_add'; room: string; refused: Refusal[] }
  | { status: 'busy' };

export type SignedResult =
  | { status: 'incomplete' }
  | { status: 'refused'; reason: string }
  | { status: 'opened'; result: OpenRoomResult }
  | { status: 'added'; result: AddToRoomResult };

export class Operations {
  private readonly proposals = new Map<string, Proposal>();
  private readonly parts = new PartsReassembler({ maxBytes: 16 * 1024, maxPendingPerSender: 2, timeoutMs: 30_000 });
  /** Called when a proposal expires unsigned: tell the requester. */
  onExpired: (requester: string, text: string) => void = () => undefined;

  constructor(
    private readonly ctx: ServiceContext,
    private readonly invites: Invites,
    private readonly ttlMs = DEFAULT_PROPOSAL_TTL_MS,
  ) {}

  /** `invite [#room] <user>...`: check it and propose the operation for the requester to sign. */
  async propose(requester: string, roomName: string | undefined, invitees: string[]): Promise<ProposeResult> {
    const mine = [...this.proposals.values()].filter((p) => casefold(p.requester) === casefold(requester)).length;
    if (mine >= MAX_PROPOSALS_PER_ACCOUNT) return { status: 'busy' };
    const now = Date.now();
    let op: RoomOp;
    let refused: Refusal[];
    let names: string[];
    if (roomName === undefined) {
      const c = await this.invites.checkOpen(requester, invitees);
      if (c.status !== 'ok') return c;
      let name: string;
      do name = newRoomName(this.ctx.opts.roomPrefix);
      while (this.ctx.rooms.get(name) || [...this.proposals.values()].some((p) => casefold(p.op.room) === casefold(name)));
      const available = capTargets(c.available, c.refused);
      refused = c.refused;
      names = available.map((a) => a.nick);
      op = {
        action: 'create',
        room: name,
        roster: EMPTY_ROSTER_HASH,
        actor: { account: c.me.account, fingerprint: c.me.key.fingerprint },
        targets: available.map((a) => ({ account: a.nick, fingerprint: a.fingerprint })),
        issuedAt: now,
        nonce: randomBytes(ROOM_OP_NONCE_BYTES),
      };
    } else {
      const c = await this.invites.checkAdd(requester, roomName, invitees);
      if (c.status !== 'ok') return c;
      const cur = c.room.current;
      const me = cur?.members.find((m) => casefold(m.account) === casefold(requester));
      if (!cur || !me) return { status: 'key_pending', room: c.room.name };
      if (c.available.length === 0) return { status: 'nobody_to_add', room: c.room.name, refused: c.refused };
      const available = capTargets(c.available, c.refused);
      refused = c.refused;
      names = available.map((a) => a.nick);
      op = {
        action: 'add',
        room: c.room.name,
        roster: rosterHash(cur.members),
        actor: { account: me.account, fingerprint: me.fingerprint },
        targets: available.map((a) => ({ account: a.nick, fingerprint: a.fingerprint })),
        issuedAt: now,
        nonce: randomBytes(ROOM_OP_NONCE_BYTES),
      };
    }
    const json = encodeRoomOp(op);
    const framed = frameParts({ data: json, kind: 'proposal' });
    if (framed.status !== FrameStatus.OK) return { status: 'busy' };
    const id = Buffer.from(op.nonce).toString('base64');
    const timer = setTimeout(() => {
      if (!this.proposals.delete(id)) return;
      this.onExpired(
        requester,
        `invite of ${names.join(', ')} not done: your client did not sign it within ${Math.round(this.ttlMs / 1000)} s. ` +
          'Rooms change only with the signature of a member\'s own key; use a sealchat companion (sealchat chat, sealchat proxy, or the WeeChat/irssi plugin with sealchat agent)',
      );
    }, this.ttlMs);
    timer.unref();
    this.proposals.set(id, { requester, op, json, names, timer });
    this.ctx.opts.transport.notices(framed.parts.map((text) => ({ target: requester, text })));
    return { status: 'proposed', ...(roomName !== undefined ? { room: op.room } : {}), names, refused };
  }

  /** One `SC1O` part from `nick` (account `account`): a signed operation, once complete. */
  async signedPart(nick: string, account: string, line: string): Promise<SignedResult> {
    const r = this.parts.accept({ sender: nick, line, now: Date.now() });
    if (r.status === PartStatus.INCOMPLETE || r.status === PartStatus.DUPLICATE) return { status: 'incomplete' };
    if (r.status !== PartStatus.COMPLETE || r.kind !== 'op' || !r.data) return { status: 'refused', reason: `the signed operation did not arrive whole (${r.status})` };
    return this.signed(account, r.data);
  }

  /** A complete signed operation from `account`: verify it against the proposal and the room, then carry it out. */
  async signed(account: string, data: Uint8Array): Promise<SignedResult> {
    const read = readRoomOp({ data });
    if (read.status !== RoomOpStatus.OK || !read.op) return { status: 'refused', reason: `not a signed room operation (${read.status})` };
    const id = Buffer.from(read.op.nonce).toString('base64');
    const proposal = this.proposals.get(id);
    const json = data.subarray(0, data.indexOf(0));
    if (!proposal || casefold(proposal.requester) !== casefold(account) || !sameBytes(proposal.json, json)) {
      log.warn(`refused a signed operation from ${account}: it matches no proposal of mine (expired, used, or changed)`);
      return { status: 'refused', reason: 'it is not an invite I proposed to you, or it was changed, expired or used already; invite again' };
    }
    this.proposals.delete(id);
    clearTimeout(proposal.timer);
    const op = proposal.op;
    // The key keybot trusts for the actor: the room's roster entry, or the directory's for a new room.
    let actorKey: EnvelopeMember | undefined;
    let roster: EnvelopeMember[] = [];
    const room = op.action === 'add' ? this.ctx.rooms.get(op.room) : undefined;
    if (op.action === 'create') {
      const me = await this.ctx.keys.lookup(account);
      if (me.ok) actorKey = me.member;
    } else {
      roster = room?.current?.members ?? [];
      actorKey = roster.find((m) => casefold(m.account) === casefold(account));
    }
    if (!actorKey) return { status: 'refused', reason: op.action === 'add' ? `you are not a keyed member of ${op.room}` : 'your account has no usable key' };
    const verified = verifyRoomOp({ data, signingKey: actorKey.signingKey, fingerprint: actorKey.fingerprint, now: Date.now() });
    if (verified.status !== RoomOpStatus.OK) {
      log.warn(`${op.room}: refused an operation by ${account}: ${verified.status}`);
      return { status: 'refused', reason: `the signature does not verify under your key (${verified.status})` };
    }
    // The entries the targets get: the directory's now, which must carry the fingerprints signed.
    const added: EnvelopeMember[] = [];
    for (const t of op.targets) {
      const k = await this.ctx.keys.lookup(t.account);
      if (k.ok) added.push(k.member);
    }
    const kept = added.filter((m) => op.targets.some((t) => casefold(t.account) === casefold(m.account) && t.fingerprint === m.fingerprint));
    const fingerprints = new Map(op.targets.map((t) => [casefold(t.account), t.fingerprint]));
    const applied = applyRoomOp({
      op: { ...op, targets: op.targets.filter((t) => kept.some((m) => casefold(m.account) === casefold(t.account))) },
      room: op.room,
      roster,
      added: kept,
      ...(op.action === 'create' ? { actorEntry: actorKey } : {}),
    });
    if (applied.status !== RoomOpStatus.OK) {
      return { status: 'refused', reason: `it no longer applies to ${op.room} (${applied.reason ?? applied.status}); invite again` };
    }
    const names = op.targets.map((t) => t.account);
    const auth = { fingerprints, op: data.slice() };
    if (op.action === 'create') return { status: 'opened', result: await this.invites.openRoom(account, names, { ...auth, name: op.room }) };
    return { status: 'added', result: await this.invites.addToRoom(account, op.room, names, auth) };
  }

  /** Forget every proposal (shutdown). */
  stop(): void {
    for (const p of this.proposals.values()) clearTimeout(p.timer);
    this.proposals.clear();
  }
}

/**
 * One operation names at most MAX_OP_TARGETS people (docs/PROTOCOL.md "Room operations"): the
 * rest are refused with that reason, to be invited into the room once it holds the first ones.
 */
function capTargets(available: Invitee[], refused: Refusal[]): Invitee[] {
  for (const a of available.slice(MAX_OP_TARGETS)) {
    refused.push({ name: a.nick, reason: 'too_many', detail: `one invite adds at most ${MAX_OP_TARGETS} people` });
  }
  return available.slice(0, MAX_OP_TARGETS);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
