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
 * `leave <#room>` and `remove <#room> <user>...` go the same way (docs/PROTOCOL.md "Room
 * operations", "Departures"): keybot proposes a `leave` (the requester) or a `remove` (the
 * members named, with the fingerprints of the room's current epoch) for the roster of that
 * epoch; once signed and verified under the requester's entry in it, keybot takes them out of
 * the roster at once (so no later epoch keys them, whatever the daemon does), records the
 * operation for the next epoch notice (members' companions verify it and show "bob removed by
 * alice, verified"), has the daemon remove them (a KICK whose reason names the remover) and
 * rekeys. Any member may remove any other member: rooms have no roles, any member may add
 * anyone, and a removal is signed and shown to everyone as who did it.
 *
 * A proposal not signed in time is reported to the requester and forgotten: a plain IRC client
 * cannot sign, so nothing happens. A proposal is used once (its nonce), so a signed operation
 * seen on the wire cannot be replayed.
 */
import { randomBytes } from 'node:crypto';
import {
  bytesEqual,
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
import { casefold, isValidAccountName } from '../protocol/names.js';
import { createLogger } from '../util/log.js';
import type { ServiceContext } from './context.js';
import type { Epochs } from './epochs.js';
import { newRoomName, type AddToRoomResult, type Invitee, type Invites, type OpenRoomResult, type Refusal } from './invites.js';
import type { Removals } from './removals.js';
import type { Room } from './rooms.js';

const log = createLogger('keybot');

/** How long a proposal waits for its signature (a companion answers in milliseconds). */
export const DEFAULT_PROPOSAL_TTL_MS = 30_000;
/** Proposals one account may have outstanding. */
const MAX_PROPOSALS_PER_ACCOUNT = 8;

interface Proposal {
  requester: string;
  op: RoomOp;
  json: Uint8Array;
  timer: NodeJS.Timeout;
}

/** The keybot command an operation carries out, as the requester typed it. */
export type OpCommand = 'invite' | 'leave' | 'remove';

export function commandOf(action: RoomOp['action']): OpCommand {
  return action === 'create' || action === 'add' ? 'invite' : action;
}

/** Why someone named in `remove` is not proposed for removal. */
export type RemoveRefusalReason = 'self' | 'service' | 'invalid_name' | 'unknown' | 'not_member' | 'pending' | 'not_keyed' | 'too_many';

export interface RemoveRefusal {
  name: string;
  reason: RemoveRefusalReason;
}

export type ProposeDepartureResult =
  /** Sent to the requester for signing; `refused` (remove only) are those named who cannot be removed. */
  | { status: 'proposed'; room: string; refused: RemoveRefusal[] }
  | { status: 'not_member' }
  /** The requester is not in the room's current epoch yet: there is no roster entry to sign under. */
  | { status: 'key_pending'; room: string }
  /** Everyone named is refused. */
  | { status: 'nobody_to_remove'; room: string; refused: RemoveRefusal[] }
  | { status: 'busy' };

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
  /** `command`: what was refused, as the requester typed it (invite when unknown). */
  | { status: 'refused'; command: OpCommand; reason: string }
  | { status: 'opened'; result: OpenRoomResult }
  | { status: 'added'; result: AddToRoomResult }
  | { status: 'left'; room: string }
  | { status: 'removed'; room: string; removed: string[] };

export class Operations {
  private readonly proposals = new Map<string, Proposal>();
  private readonly parts = new PartsReassembler({ maxBytes: 16 * 1024, maxPendingPerSender: 2, timeoutMs: 30_000 });
  /** Called when a proposal expires unsigned: tell the requester. */
  onExpired: (requester: string, text: string) => void = () => undefined;

  constructor(
    private readonly ctx: ServiceContext,
    private readonly invites: Invites,
    private readonly removals: Removals,
    private readonly epochs: Epochs,
    private readonly ttlMs = DEFAULT_PROPOSAL_TTL_MS,
  ) {}

  private busy(requester: string): boolean {
    return [...this.proposals.values()].filter((p) => casefold(p.requester) === casefold(requester)).length >= MAX_PROPOSALS_PER_ACCOUNT;
  }

  /** `invite [#room] <user>...`: check it and propose the operation for the requester to sign. */
  async propose(requester: string, roomName: string | undefined, invitees: string[]): Promise<ProposeResult> {
    if (this.busy(requester)) return { status: 'busy' };
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
    if (!this.offer(requester, op, `invite of ${names.join(', ')}`)) return { status: 'busy' };
    return { status: 'proposed', ...(roomName !== undefined ? { room: op.room } : {}), names, refused };
  }

  /**
   * `leave <#room>`: propose the requester's `leave` for the roster of the room's current epoch.
   * A non-member learns nothing about the room (the same answer as for a room that does not exist).
   */
  proposeLeave(requester: string, roomName: string): ProposeDepartureResult {
    if (this.busy(requester)) return { status: 'busy' };
    const at = this.actorIn(requester, roomName);
    if (at.status !== 'ok') return at;
    const { room, cur, me } = at;
    const op: RoomOp = {
      action: 'leave',
      room: room.name,
      roster: rosterHash(cur.members),
      actor: { account: me.account, fingerprint: me.fingerprint },
      targets: [],
      issuedAt: Date.now(),
      nonce: randomBytes(ROOM_OP_NONCE_BYTES),
    };
    if (!this.offer(requester, op, `leave of ${room.name}`)) return { status: 'busy' };
    return { status: 'proposed', room: room.name, refused: [] };
  }

  /**
   * `remove <#room> <user>...`: propose removing the members named, each with the fingerprint of
   * the room's current epoch (the key the room pinned for them), for that epoch's roster. Refused:
   * the requester (they `leave`), keybot, names that are no account or no member, a pending
   * invitee (they `cancel`), and a member not keyed yet (whose entry is on its way).
   */
  async proposeRemove(requester: string, roomName: string, names: string[]): Promise<ProposeDepartureResult> {
    if (this.busy(requester)) return { status: 'busy' };
    const at = this.actorIn(requester, roomName);
    if (at.status !== 'ok') return at;
    const { room, cur, me } = at;
    const refused: RemoveRefusal[] = [];
    const targets: EnvelopeMember[] = [];
    const seen = new Set<string>();
    for (const name of names) {
      const f = casefold(name);
      if (seen.has(f)) continue;
      seen.add(f);
      if (!isValidAccountName(name)) refused.push({ name, reason: 'invalid_name' });
      else if (f === casefold(requester)) refused.push({ name, reason: 'self' });
      else if (this.ctx.isSelf(name)) refused.push({ name, reason: 'service' });
      else {
        const entry = cur.members.find((m) => casefold(m.account) === f);
        if (entry && room.hasMember(name)) targets.push(entry);
        else if (room.hasMember(name)) refused.push({ name: room.members.get(f) ?? name, reason: 'not_keyed' });
        else if (room.pending.has(f)) refused.push({ name: room.pending.get(f)!.account, reason: 'pending' });
        else refused.push({ name, reason: (await this.ctx.opts.directory.lookupUser(name)) ? 'not_member' : 'unknown' });
      }
    }
    for (const t of targets.slice(MAX_OP_TARGETS)) refused.push({ name: t.account, reason: 'too_many' });
    if (targets.length === 0) return { status: 'nobody_to_remove', room: room.name, refused };
    // The lookups took time: the roster may have moved meanwhile; propose for the one there is now.
    if (this.ctx.rooms.get(room.name) !== room || room.current !== cur) return { status: 'key_pending', room: room.name };
    const op: RoomOp = {
      action: 'remove',
      room: room.name,
      roster: rosterHash(cur.members),
      actor: { account: me.account, fingerprint: me.fingerprint },
      targets: targets.slice(0, MAX_OP_TARGETS).map((m) => ({ account: m.account, fingerprint: m.fingerprint })),
      issuedAt: Date.now(),
      nonce: randomBytes(ROOM_OP_NONCE_BYTES),
    };
    if (!this.offer(requester, op, `removal of ${op.targets.map((t) => t.account).join(', ')} from ${room.name}`)) return { status: 'busy' };
    return { status: 'proposed', room: room.name, refused };
  }

  /** The room and the requester's entry in its current epoch, for a departure. */
  private actorIn(
    requester: string,
    roomName: string,
  ): { status: 'ok'; room: Room; cur: NonNullable<Room['current']>; me: EnvelopeMember } | { status: 'not_member' } | { status: 'key_pending'; room: string } {
    const room = this.ctx.rooms.get(roomName);
    if (!room || !room.ready || !room.hasMember(requester)) return { status: 'not_member' };
    const cur = room.current;
    const me = cur?.members.find((m) => casefold(m.account) === casefold(requester));
    if (!cur || !me) return { status: 'key_pending', room: room.name };
    return { status: 'ok', room, cur, me };
  }

  /** Send `op` to the requester as `SC1Q` parts and keep it for its signature; false if it cannot be framed. */
  private offer(requester: string, op: RoomOp, what: string): boolean {
    const json = encodeRoomOp(op);
    const framed = frameParts({ data: json, kind: 'proposal' });
    if (framed.status !== FrameStatus.OK) return false;
    const id = Buffer.from(op.nonce).toString('base64');
    const timer = setTimeout(() => {
      if (!this.proposals.delete(id)) return;
      const cmd = commandOf(op.action);
      this.onExpired(
        requester,
        `${what} not done: your client did not sign it within ${Math.round(this.ttlMs / 1000)} s. ` +
          'Rooms change only with the signature of a member\'s own key; use a sealchat companion (sealchat chat, sealchat proxy, or the WeeChat/irssi plugin with sealchat agent)' +
          (cmd === 'leave' ? `. Without one, /part ${op.room} takes you out too (the others see it unsigned)` : ''),
      );
    }, this.ttlMs);
    timer.unref();
    this.proposals.set(id, { requester, op, json, timer });
    this.ctx.opts.transport.notices(framed.parts.map((text) => ({ target: requester, text })));
    return true;
  }

  /** One `SC1O` part from `nick` (account `account`): a signed operation, once complete. */
  async signedPart(nick: string, account: string, line: string): Promise<SignedResult> {
    const r = this.parts.accept({ sender: nick, line, now: Date.now() });
    if (r.status === PartStatus.INCOMPLETE || r.status === PartStatus.DUPLICATE) return { status: 'incomplete' };
    if (r.status !== PartStatus.COMPLETE || r.kind !== 'op' || !r.data) return { status: 'refused', command: 'invite', reason: `the signed operation did not arrive whole (${r.status})` };
    return this.signed(account, r.data);
  }

  /** A complete signed operation from `account`: verify it against the proposal and the room, then carry it out. */
  async signed(account: string, data: Uint8Array): Promise<SignedResult> {
    const read = readRoomOp({ data });
    if (read.status !== RoomOpStatus.OK || !read.op) return { status: 'refused', command: 'invite', reason: `not a signed room operation (${read.status})` };
    const command = commandOf(read.op.action);
    const refused = (reason: string): SignedResult => ({ status: 'refused', command, reason });
    const id = Buffer.from(read.op.nonce).toString('base64');
    const proposal = this.proposals.get(id);
    const json = data.subarray(0, data.indexOf(0));
    if (!proposal || casefold(proposal.requester) !== casefold(account) || !bytesEqual(proposal.json, json)) {
      log.warn(`refused a signed operation from ${account}: it matches no proposal of mine (expired, used, or changed)`);
      const what = command === 'invite' ? 'an invite' : `a ${command}`;
      return refused(`it is not ${what} I proposed to you, or it was changed, expired or used already; ${command} again`);
    }
    this.proposals.delete(id);
    clearTimeout(proposal.timer);
    const op = proposal.op;
    // The key keybot trusts for the actor: the room's roster entry, or the directory's for a new room.
    let actorKey: EnvelopeMember | undefined;
    let roster: EnvelopeMember[] = [];
    const room = op.action !== 'create' ? this.ctx.rooms.get(op.room) : undefined;
    if (op.action === 'create') {
      const me = await this.ctx.keys.lookup(account);
      if (me.ok) actorKey = me.member;
    } else {
      // A member keybot already took out (a signed remove, a PART) may still be listed in the
      // current epoch until the next one: they act no more.
      roster = room?.hasMember(account) ? (room.current?.members ?? []) : [];
      actorKey = roster.find((m) => casefold(m.account) === casefold(account));
    }
    if (!actorKey) return refused(op.action !== 'create' ? `you are not a keyed member of ${op.room}` : 'your account has no usable key');
    const verified = verifyRoomOp({ data, signingKey: actorKey.signingKey, fingerprint: actorKey.fingerprint, now: Date.now() });
    if (verified.status !== RoomOpStatus.OK) {
      log.warn(`${op.room}: refused an operation by ${account}: ${verified.status}`);
      return refused(`the signature does not verify under your key (${verified.status})`);
    }
    if (op.action === 'leave' || op.action === 'remove') {
      const applied = applyRoomOp({ op, room: op.room, roster });
      if (!room || applied.status !== RoomOpStatus.OK) return refused(`it no longer applies to ${op.room} (${applied.reason ?? applied.status}); ${command} again`);
      return this.depart(room, op, data.slice());
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
      return refused(`it no longer applies to ${op.room} (${applied.reason ?? applied.status}); invite again`);
    }
    const names = op.targets.map((t) => t.account);
    const auth = { fingerprints, op: data.slice() };
    if (op.action === 'create') return { status: 'opened', result: await this.invites.openRoom(account, names, { ...auth, name: op.room }) };
    return { status: 'added', result: await this.invites.addToRoom(account, op.room, names, auth) };
  }

  /**
   * Carry out a verified `leave` or `remove`: the members it takes out leave keybot's roster now
   * (synchronously with the check, so no epoch sealed from here on lists them, whatever the daemon
   * does with the KICK), the invites they signed that wait for a login lapse, the operation goes
   * into the next epoch notice, the daemon removes them, and the room is rekeyed.
   */
  private async depart(room: Room, op: RoomOp, data: Uint8Array): Promise<SignedResult> {
    const actor = room.members.get(casefold(op.actor.account)) ?? op.actor.account;
    const gone = (op.action === 'leave' ? [op.actor.account] : op.targets.map((t) => t.account)).map((a) => room.members.get(casefold(a)) ?? a);
    room.recordOp(data, []);
    for (const nick of gone) if (room.removeMember(nick)) this.invites.actorLeft(room, nick);
    const why = op.action === 'leave' ? `${actor} left` : `${gone.join(', ')} removed by ${actor}`;
    this.epochs.requestRekey(room, why);
    log.info(`${room.name}: ${why} (signed)`);
    await Promise.all(
      gone.map((nick) => this.removals.removeSigned(room, nick, op.action === 'leave' ? 'left (signed with their key)' : `removed by ${actor} (signed with ${actor}'s key)`)),
    );
    if (op.action === 'leave') return { status: 'left', room: room.name };
    for (const nick of gone) {
      this.ctx.opts.transport.notice(nick, `you were removed from ${room.name} by ${actor}, who signed it with their key; a member may invite you again`);
    }
    return { status: 'removed', room: room.name, removed: gone };
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
