/**
 * Invites: opening a room and placing people in it. Each invitee is checked (a usable key, not
 * already in), placed by the directory (`room.add`), and pinned to the fingerprint they had when
 * checked (see the pins rule in service.ts); the room's rekey is held until everyone placed has
 * joined, so an invite makes one epoch.
 *
 * Where rooms outlive a connection (docs/PROTOCOL.md "Rooms that outlive a connection"), an
 * invitee who is offline becomes a **pending** member: the daemon joins them at their next
 * login. keybot keeps the signed operation that added them (Room.pending, also in the room
 * memory); their JOIN at login is explained by it (`admit`), and only then are they pinned and
 * keyed: the operation is relayed to the room again, then a new epoch includes them. A pending
 * invite lapses when the member who signed it leaves first, and any member may `cancel` it.
 */
import { casefold, SERVICE_ROOM_PREFIX } from '../protocol/names.js';
import { createLogger } from '../util/log.js';
import type { ServiceContext } from './context.js';
import { DirectoryError, type Placement } from './directory.js';
import type { Epochs } from './epochs.js';
import type { KeyProblem, MemberKey } from './keybook.js';
import type { PendingInvite, Room } from './rooms.js';
import { randomBytes } from 'node:crypto';
import { RoomOpStatus, readRoomOp, verifyRoomOp, type EnvelopeMember } from '../crypto/index.js';

const log = createLogger('keybot');

/**
 * Most invitees one command may name: as many as fit in one IRC line (RFC 1459 §2.3: 512 bytes
 * with CRLF) after `PRIVMSG keybot :invite `, with the shortest names (one character and a
 * space each). So a person can name everyone they can type in one line, and a 50-member room
 * opens with one command in one epoch; the bound keeps one command's work finite all the same.
 */
export const MAX_INVITEES = Math.floor((510 - 'PRIVMSG keybot :invite '.length + 1) / 2);

/**
 * How long an invite of someone offline waits for their login (30 days, the daemon's default
 * history.maxAgeDays): an older one lapses at their login instead of adding them
 * (docs/PROTOCOL.md "Rooms that outlive a connection", ### keybot).
 */
export const PENDING_INVITE_MAX_AGE_MS = 30 * 24 * 3600_000;

/** An invitee who can be placed, with the fingerprint they are pinned to if placed. */
export interface Invitee {
  nick: string;
  online: boolean;
  fingerprint: string;
  /** The roster entry the directory gives (account, fingerprint, signing key). */
  member: EnvelopeMember;
}

/** Why an invitee was not placed in a room. */
export type RefusalReason = KeyProblem | 'offline' | 'already_member' | 'already_invited' | 'failed' | 'key_changed' | 'too_many';

/**
 * What a verified operation (operations.ts) fixes for the invite it authorises: the room's name
 * (for a new room, the one keybot proposed), the fingerprint each invitee is keyed with, and the
 * signed operation itself, which keybot relays to the room before the epoch so every member's
 * companion can check who added whom.
 */
export interface Authorised {
  name?: string;
  /** Casefolded account → the fingerprint the signed operation names. */
  fingerprints: ReadonlyMap<string, string>;
  /** The signed operation (`SC1O` data). */
  op: Uint8Array;
}

export interface Refusal {
  name: string;
  reason: RefusalReason;
  /** More about the reason (why a key is unusable), for people. */
  detail?: string;
}

export type OpenRoomResult =
  /** `pending`: invitees who were offline; they join at their next login. */
  | { status: 'opened'; room: string; joined: string[]; pending: string[]; refused: Refusal[] }
  /** Nobody else could be placed: no room was opened. */
  | { status: 'nobody'; refused: Refusal[] }
  /** The requester cannot hold a key themselves. */
  | { status: 'requester_unusable'; problem: KeyProblem; detail?: string };

export type AddToRoomResult =
  | { status: 'added'; room: string; joined: string[]; pending: string[]; refused: Refusal[] }
  | { status: 'not_member' };

export type CancelResult =
  | { status: 'cancelled'; room: string; name: string }
  /** Nobody of that name is invited and waiting to log in. */
  | { status: 'not_pending'; room: string; name: string }
  | { status: 'not_member' };

/** A fresh room name: `prefix` (`#sc-` unless told otherwise) and 10 base32 characters (50 random bits). */
export function newRoomName(prefix: string = SERVICE_ROOM_PREFIX): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  const bytes = randomBytes(10);
  let s = '';
  for (const b of bytes) s += alphabet[b & 31];
  return prefix + s;
}

export class Invites {
  constructor(
    private readonly ctx: ServiceContext,
    private readonly epochs: Epochs,
  ) {}

  /**
   * Who of `invitees` could be placed in a new room now (the requester left out), without
   * opening it: what keybot proposes for the requester to sign (operations.ts).
   */
  async checkOpen(requester: string, invitees: string[], auth?: Authorised): Promise<
    | { status: 'ok'; me: MemberKey & { ok: true }; available: Invitee[]; refused: Refusal[] }
    | Exclude<OpenRoomResult, { status: 'opened' }>
  > {
    const me = await this.ctx.keys.lookup(requester);
    if (!me.ok) return { status: 'requester_unusable', problem: me.problem, detail: me.detail };
    const names = uniqueNames(invitees).filter((n) => casefold(n) !== casefold(requester));
    const checked = await Promise.all(names.map((n) => this.checkInvitee(n, undefined, auth)));
    const refused = checked.filter((c): c is Refusal => 'reason' in c);
    const available = checked.filter((c): c is Invitee => !('reason' in c));
    if (available.length === 0) return { status: 'nobody', refused };
    return { status: 'ok', me, available, refused };
  }

  /**
   * A new room with the requester and every invitee who can join now. `auth`: the verified
   * operation that authorises it (operations.ts): its room name and fingerprints are used, and
   * the operation is relayed to the room before the first epoch.
   */
  async openRoom(requester: string, invitees: string[], auth?: Authorised): Promise<OpenRoomResult> {
    const checked = await this.checkOpen(requester, invitees, auth);
    if (checked.status !== 'ok') return checked;
    const { me, available, refused } = checked;

    let name = auth?.name ?? newRoomName(this.ctx.opts.roomPrefix);
    while (!auth?.name && this.ctx.rooms.get(name)) name = newRoomName(this.ctx.opts.roomPrefix);
    if (this.ctx.rooms.get(name)) return { status: 'nobody', refused: [...refused, ...available.map((a) => ({ name: a.nick, reason: 'failed' as const, detail: `${name} exists already` }))] };
    const room = this.ctx.rooms.ensure(name);
    // keybot opens it: its roster is exactly who keybot places (a NAMES list adds nobody).
    room.rosterKnown = true;
    room.holds++;
    room.pendingReasons.push('room opened');
    let joined: string[] = [];
    let pending: string[] = [];
    try {
      await this.ctx.opts.directory.putInRoom(name, this.ctx.self);
      await room.until(() => room.ready, this.ctx.o.echoTimeoutMs, 'own JOIN and NAMES');
      // Invite-only and secret before anyone else is in (only keybot, the op, could change them).
      this.ctx.opts.transport.setModes(name, '+is');
      await room.until(() => room.modes.has('i') && room.modes.has('s'), this.ctx.o.echoTimeoutMs, 'MODE +is');
      // The requester first: if they cannot be placed (gone offline), nobody else is.
      room.expectJoin(me.account, this.ctx.o.echoTimeoutMs);
      const [placedMe] = await this.ctx.opts.directory.putManyInRoom(name, [me.account]);
      if (!placedMe?.ok || placedMe.pending) throw new Error(`${me.account} could not be placed (${placedMe?.ok ? 'offline' : placedMe?.error.message})`);
      this.pin(room, me.account, me.key.fingerprint);
      ({ placed: joined, pending } = await this.place(room, available.map((a) => a.nick), refused));
      this.pinPlaced(room, available, joined, me.account);
      this.keepPending(room, available, pending, me.account, auth);
      if (joined.length === 0 && pending.length === 0) {
        await this.ctx.opts.directory.removeFromRoom(name, me.account, 'nobody else could join').catch(() => undefined);
        this.ctx.leaveRoom(room, 'nobody joined');
        return { status: 'nobody', refused };
      }
      if (auth) this.relay(room, auth.op);
    } catch (err) {
      log.warn(`${name}: opening failed: ${(err as Error).message}`);
      // Nobody stays behind in a room keybot does not operate.
      for (const nick of [...room.members.values(), ...[...room.pending.values()].map((p) => p.account)]) {
        await this.ctx.opts.directory.removeFromRoom(name, nick, 'the room could not be opened').catch(() => undefined);
      }
      room.pending.clear();
      this.ctx.leaveRoom(room, 'could not open the room');
      throw err;
    } finally {
      room.holds--;
      // The invite gathered its JOINs already: nothing more to settle.
      this.epochs.requestRekey(room, undefined, false, true);
    }
    log.info(`${name}: opened by ${me.account} with ${joined.length + 1} members${pending.length ? ` and ${pending.length} pending` : ''}`);
    return { status: 'opened', room: name, joined, pending, refused };
  }

  /** Who of `invitees` could be added to `roomName` now, without adding them (operations.ts). */
  async checkAdd(
    requester: string,
    roomName: string,
    invitees: string[],
    auth?: Authorised,
  ): Promise<{ status: 'ok'; room: Room; available: Invitee[]; refused: Refusal[] } | { status: 'not_member' }> {
    const room = this.ctx.rooms.get(roomName);
    if (!room || !room.ready || !room.hasMember(requester)) return { status: 'not_member' };
    const checked = await Promise.all(uniqueNames(invitees).map((n) => this.checkInvitee(n, room, auth)));
    const refused = checked.filter((c): c is Refusal => 'reason' in c);
    const available = checked.filter((c): c is Invitee => !('reason' in c));
    return { status: 'ok', room, available, refused };
  }

  /** `invite <#room> <user>...`: add users to a room the requester is in (`auth`: see openRoom). */
  async addToRoom(requester: string, roomName: string, invitees: string[], auth?: Authorised): Promise<AddToRoomResult> {
    const checked = await this.checkAdd(requester, roomName, invitees, auth);
    if (checked.status !== 'ok') return checked;
    const { room, available, refused } = checked;
    let joined: string[] = [];
    let pending: string[] = [];
    if (available.length > 0) {
      room.holds++;
      try {
        ({ placed: joined, pending } = await this.place(room, available.map((a) => a.nick), refused, requester));
        // An invite by a member is the one visible act that pins (or re-pins) an account's key.
        this.pinPlaced(room, available, joined, requester);
        this.keepPending(room, available, pending, requester, auth);
        if (auth && joined.length > 0) this.relay(room, auth.op);
      } finally {
        room.holds--;
        this.epochs.requestRekey(room, undefined, false, true);
      }
    }
    return { status: 'added', room: room.name, joined, pending, refused };
  }

  /**
   * A pending member's JOIN at login (or found joined at a recovery): carry out the invite that
   * added them, if it still holds. The member who signed it must still be in the room, and the
   * directory must still name the key the operation names; then they are pinned, the operation
   * is relayed to the room (so every member's companion can check who added them) and a new
   * epoch includes them. Otherwise they are removed, never keyed.
   */
  async admit(room: Room, nick: string): Promise<void> {
    const f = casefold(nick);
    const p = room.pending.get(f);
    if (!p || room.admitting.has(f)) return;
    room.admitting.add(f);
    room.holds++;
    try {
      const k = await this.ctx.keys.lookup(p.account);
      // Still the same invite of the same room (a cancel or a departure may have come meanwhile)?
      if (this.ctx.rooms.get(room.name) !== room || room.pending.get(f) !== p) return;
      if (!room.hasMember(p.by)) {
        this.lapsed(room, p, `${p.by}, who invited them, is no longer in the room`);
        return;
      }
      if (Date.now() - p.at > PENDING_INVITE_MAX_AGE_MS) {
        this.lapsed(room, p, `the invite is older than ${PENDING_INVITE_MAX_AGE_MS / (24 * 3600_000)} days; invite them again`);
        return;
      }
      if (!k.ok || k.key.fingerprint !== p.fingerprint) {
        this.lapsed(room, p, `their registered key changed since ${p.by} invited them (the invite named ${p.fingerprint}, now ${k.ok ? k.key.fingerprint : 'none usable'})`);
        return;
      }
      const unsound = p.op ? await this.unsound(room, p, p.op) : undefined;
      if (this.ctx.rooms.get(room.name) !== room || room.pending.get(f) !== p) return;
      if (unsound) {
        this.lapsed(room, p, unsound);
        return;
      }
      room.pending.delete(f);
      this.pin(room, p.account, p.fingerprint, p.by);
      if (p.op) this.relay(room, p.op);
      room.addMember(k.account);
      this.epochs.requestRekey(room, `${k.account} added by ${p.by}`);
      log.info(`${room.name}: ${k.account}, invited by ${p.by} while offline, is in the room`);
    } catch (err) {
      log.warn(`${room.name}: cannot admit ${p.account}: ${(err as Error).message}; removing them`);
      if (room.pending.get(f) === p) this.lapsed(room, p, 'keybot could not check their key');
    } finally {
      room.admitting.delete(f);
      room.holds--;
      this.ctx.changed();
      this.epochs.requestRekey(room, undefined, false, true);
    }
  }

  /**
   * Why the signed operation kept for a pending invite does not authorise it (it may have come
   * back from the room memory on disk, which keybot does not take on trust), or undefined: it
   * must verify under the actor's key as pinned in the room, name this room, be made by the
   * invite's actor and add the invitee with the fingerprint kept.
   */
  private async unsound(room: Room, p: PendingInvite, op: Uint8Array): Promise<string | undefined> {
    const read = readRoomOp({ data: op });
    if (read.status !== RoomOpStatus.OK || !read.op) return `the invite kept for them is not a signed operation (${read.status})`;
    if (casefold(read.op.actor.account) !== casefold(p.by)) return `the invite kept for them was not made by ${p.by}`;
    const pinned = room.pins.get(casefold(p.by));
    const actor = await this.ctx.keys.lookup(p.by);
    if (!actor.ok || pinned === undefined || actor.key.fingerprint !== pinned) return `${p.by}'s key is not the one pinned in the room`;
    // Its time window was checked when it was accepted; what is checked here is who signed what.
    const verified = verifyRoomOp({ data: op, signingKey: actor.member.signingKey, fingerprint: pinned, now: read.op.issuedAt });
    if (verified.status !== RoomOpStatus.OK) return `the invite kept for them does not verify under ${p.by}'s key (${verified.status})`;
    if (casefold(read.op.room) !== room.folded) return 'the invite kept for them names another room';
    if (!read.op.targets.some((t) => casefold(t.account) === casefold(p.account) && t.fingerprint === p.fingerprint)) return 'the invite kept for them does not name them with that key';
    return undefined;
  }

  /** `actor` left `room`: the invites they signed that are still pending lapse. */
  actorLeft(room: Room, actor: string): void {
    for (const p of [...room.pending.values()]) {
      if (casefold(p.by) === casefold(actor)) this.lapsed(room, p, `${p.by}, who invited them, left before they logged in`);
    }
  }

  /** `cancel <#room> <user>`: any member drops a pending invite. */
  async cancel(requester: string, roomName: string, name: string): Promise<CancelResult> {
    const room = this.ctx.rooms.get(roomName);
    if (!room || !room.ready || !room.hasMember(requester)) return { status: 'not_member' };
    const p = room.pending.get(casefold(name));
    if (!p) return { status: 'not_pending', room: room.name, name };
    room.pending.delete(casefold(name));
    this.ctx.changed();
    try {
      await this.ctx.opts.directory.removeFromRoom(room.name, p.account, `invite cancelled by ${requester}`);
    } catch (err) {
      if (!(err instanceof DirectoryError) || err.code !== 'not_found') throw err;
    }
    this.ctx.opts.transport.notice(room.name, `the invite of ${p.account} (by ${p.by}) was cancelled by ${requester}; they will not join`);
    log.info(`${room.name}: ${requester} cancelled the pending invite of ${p.account}`);
    return { status: 'cancelled', room: room.name, name: p.account };
  }

  /** A pending invite that no longer holds: dropped at the directory too (or its member removed). */
  private lapsed(room: Room, p: PendingInvite, why: string): void {
    room.pending.delete(casefold(p.account));
    this.ctx.changed();
    log.warn(`${room.name}: the pending invite of ${p.account} lapsed: ${why}`);
    this.ctx.opts.transport.notice(room.name, `the invite of ${p.account} by ${p.by} lapsed (${why}); they get no key`);
    this.ctx.opts.directory
      .removeFromRoom(room.name, p.account, `invite lapsed: ${why}`)
      .catch((err: unknown) => log.warn(`${room.name}: cannot remove ${p.account}: ${(err as Error).message}`));
  }

  /** Keep the invites of those placed as pending (offline), with the operation that signed them. */
  private keepPending(room: Room, invitees: Invitee[], pending: string[], by: string, auth?: Authorised): void {
    for (const n of pending) {
      const i = invitees.find((x) => casefold(x.nick) === casefold(n));
      if (!i) continue;
      room.pending.set(casefold(i.nick), { account: i.nick, fingerprint: i.fingerprint, by, ...(auth ? { op: auth.op } : {}), at: Date.now() });
    }
    if (pending.length > 0) this.ctx.changed();
  }

  private async checkInvitee(name: string, room?: Room, auth?: Authorised): Promise<Refusal | Invitee> {
    const k: MemberKey = await this.ctx.keys.lookup(name);
    if (!k.ok) return { name, reason: k.problem, detail: k.detail };
    if (room && room.hasMember(k.account)) return { name: k.account, reason: 'already_member' };
    if (room && room.pending.has(casefold(k.account))) return { name: k.account, reason: 'already_invited' };
    // Offline is no obstacle where rooms outlive a connection: they become a pending member.
    if (!k.online && !this.ctx.opts.directory.persistentRooms) return { name: k.account, reason: 'offline' };
    const signed = auth?.fingerprints.get(casefold(k.account));
    if (auth && signed !== k.key.fingerprint) {
      return { name: k.account, reason: 'key_changed', detail: `the invite named key ${signed ?? 'none'}, the directory now has ${k.key.fingerprint}` };
    }
    return { nick: k.account, online: k.online, fingerprint: k.key.fingerprint, member: k.member };
  }

  /**
   * Record the signed operation for the epoch it causes, after its placements: the epoch notice
   * carries it to the room, and the join envelopes of those it added name it, so each member's
   * companion checks it against the roster it holds and shows who added whom (docs/PROTOCOL.md
   * "Room operations", "Envelope version 3").
   */
  private relay(room: Room, op: Uint8Array): void {
    const read = readRoomOp({ data: op });
    const parsed = read.op;
    room.recordOp(op, parsed ? [...parsed.targets.map((t) => t.account), ...(parsed.action === 'create' ? [parsed.actor.account] : [])] : []);
  }

  /** Pin an account's fingerprint in a room (a placement by keybot or an invite by a member). */
  private pin(room: Room, account: string, fingerprint: string, by?: string): void {
    const f = casefold(account);
    const before = room.pins.get(f);
    room.pins.set(f, fingerprint);
    if (before !== undefined && before !== fingerprint) {
      log.warn(`${room.name}: ${account} invited back${by ? ` by ${by}` : ''} with a new key ${fingerprint} (was ${before})`);
    }
  }

  /** Pin the invitees who were placed, with the fingerprint they had when checked. */
  private pinPlaced(room: Room, invitees: Invitee[], placed: string[], by: string): void {
    const done = new Set(placed.map((n) => casefold(n)));
    for (const i of invitees) if (done.has(casefold(i.nick))) this.pin(room, i.nick, i.fingerprint, by);
  }

  /**
   * Place each nick, all in one directory call; those who could not be placed go into
   * `refused`, each by name. Returns the placed (joined now) and the pending (offline: they join
   * at their next login; the caller keeps their invite).
   */
  async place(room: Room, nicks: string[], refused: Refusal[], by?: string): Promise<{ placed: string[]; pending: string[] }> {
    const placed: string[] = [];
    const pending: string[] = [];
    if (nicks.length === 0) return { placed, pending };
    for (const n of nicks) room.expectJoin(n, this.ctx.o.echoTimeoutMs * 2, by !== undefined ? `${n} added by ${by}` : undefined);
    let outcomes: Placement[];
    try {
      outcomes = await this.ctx.opts.directory.putManyInRoom(room.name, nicks);
    } catch (err) {
      if (!(err instanceof DirectoryError)) throw err;
      outcomes = nicks.map((nick) => ({ nick, ok: false as const, error: err }));
    }
    for (const o of outcomes) {
      // Pending, unless their JOIN came first after all (they logged in meanwhile).
      if (o.ok && o.pending && !room.hasMember(o.nick)) {
        pending.push(o.nick);
        room.expectedJoins.delete(casefold(o.nick));
      } else if (o.ok) placed.push(o.nick);
      else refused.push({ name: o.nick, reason: o.error.code === 'offline' ? 'offline' : 'failed', detail: o.error.message });
    }
    // Hold the rekey until the JOINs are seen, so they make one epoch (someone may also have
    // quit meanwhile: then give up waiting, the quit makes its own epoch).
    await room
      .until(() => placed.every((n) => room.hasMember(n)), this.ctx.o.echoTimeoutMs, 'JOIN echoes')
      .catch(() => undefined);
    return { placed, pending };
  }
}

/** Case-insensitively unique names, first spelling kept, at most MAX_INVITEES. */
function uniqueNames(names: string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const n of names) {
    const f = casefold(n);
    if (seen.has(f)) continue;
    seen.add(f);
    out.push(n);
  }
  return out.slice(0, MAX_INVITEES);
}

