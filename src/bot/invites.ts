/**
 * Invites: opening a room and placing people in it. Each invitee is checked (a usable key, online,
 * not already in), placed by a server-side join, and pinned to the fingerprint they had when
 * checked (see the pins rule in service.ts); the room's rekey is held until everyone placed has
 * joined, so an invite makes one epoch.
 */
import { casefold, SERVICE_ROOM_PREFIX } from '../protocol/names.js';
import { createLogger } from '../util/log.js';
import type { ServiceContext } from './context.js';
import { DirectoryError, type Placement } from './directory.js';
import type { Epochs } from './epochs.js';
import type { KeyProblem, MemberKey } from './keybook.js';
import type { Room } from './rooms.js';
import { randomBytes } from 'node:crypto';
import { FrameStatus, frameParts, type EnvelopeMember } from '../crypto/index.js';

const log = createLogger('keybot');

/**
 * Most invitees one command may name: as many as fit in one IRC line (RFC 1459 §2.3: 512 bytes
 * with CRLF) after `PRIVMSG keybot :invite `, with the shortest names (one character and a
 * space each). So a person can name everyone they can type in one line, and a 50-member room
 * opens with one command in one epoch; the bound keeps one command's work finite all the same.
 */
export const MAX_INVITEES = Math.floor((510 - 'PRIVMSG keybot :invite '.length + 1) / 2);

/** An invitee who can be placed, with the fingerprint they are pinned to if placed. */
export interface Invitee {
  nick: string;
  fingerprint: string;
  /** The roster entry the directory gives (account, fingerprint, signing key). */
  member: EnvelopeMember;
}

/** Why an invitee was not placed in a room. */
export type RefusalReason = KeyProblem | 'offline' | 'already_member' | 'failed' | 'key_changed' | 'too_many';

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
  | { status: 'opened'; room: string; joined: string[]; refused: Refusal[] }
  /** Nobody else could be placed: no room was opened. */
  | { status: 'nobody'; refused: Refusal[] }
  /** The requester cannot hold a key themselves. */
  | { status: 'requester_unusable'; problem: KeyProblem; detail?: string };

export type AddToRoomResult =
  | { status: 'added'; room: string; joined: string[]; refused: Refusal[] }
  | { status: 'not_member' };

/** A fresh room name: `#sc-` and 10 base32 characters (50 random bits). */
export function newRoomName(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  const bytes = randomBytes(10);
  let s = '';
  for (const b of bytes) s += alphabet[b & 31];
  return SERVICE_ROOM_PREFIX + s;
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

    let name = auth?.name ?? newRoomName();
    while (!auth?.name && this.ctx.rooms.get(name)) name = newRoomName();
    if (this.ctx.rooms.get(name)) return { status: 'nobody', refused: [...refused, ...available.map((a) => ({ name: a.nick, reason: 'failed' as const, detail: `${name} exists already` }))] };
    const room = this.ctx.rooms.ensure(name);
    room.holds++;
    room.pendingReasons.push('room opened');
    let joined: string[] = [];
    try {
      await this.ctx.opts.directory.putInRoom(name, this.ctx.self);
      await room.until(() => room.ready, this.ctx.o.echoTimeoutMs, 'own JOIN and NAMES');
      // Invite-only and secret before anyone else is in (only keybot, the op, could change them).
      this.ctx.opts.transport.setModes(name, '+is');
      await room.until(() => room.modes.has('i') && room.modes.has('s'), this.ctx.o.echoTimeoutMs, 'MODE +is');
      // The requester first: if they cannot be placed (gone offline), nobody else is.
      room.expectJoin(me.account, this.ctx.o.echoTimeoutMs);
      await this.ctx.opts.directory.putInRoom(name, me.account);
      this.pin(room, me.account, me.key.fingerprint);
      joined = await this.place(room, available.map((a) => a.nick), refused);
      this.pinPlaced(room, available, joined, me.account);
      if (joined.length === 0) {
        await this.ctx.opts.directory.removeFromRoom(name, me.account, 'nobody else could join').catch(() => undefined);
        this.ctx.leaveRoom(room, 'nobody joined');
        return { status: 'nobody', refused };
      }
      if (auth) this.relay(room, auth.op);
    } catch (err) {
      log.warn(`${name}: opening failed: ${(err as Error).message}`);
      // Nobody stays behind in a room keybot does not operate.
      for (const nick of [...room.members.values()]) {
        await this.ctx.opts.directory.removeFromRoom(name, nick, 'the room could not be opened').catch(() => undefined);
      }
      this.ctx.leaveRoom(room, 'could not open the room');
      throw err;
    } finally {
      room.holds--;
      // The invite gathered its JOINs already: nothing more to settle.
      this.epochs.requestRekey(room, undefined, false, true);
    }
    log.info(`${name}: opened by ${me.account} with ${joined.length + 1} members`);
    return { status: 'opened', room: name, joined, refused };
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
    if (available.length > 0) {
      room.holds++;
      try {
        joined = await this.place(room, available.map((a) => a.nick), refused, requester);
        // An invite by a member is the one visible act that pins (or re-pins) an account's key.
        this.pinPlaced(room, available, joined, requester);
        if (auth && joined.length > 0) this.relay(room, auth.op);
      } finally {
        room.holds--;
        this.epochs.requestRekey(room, undefined, false, true);
      }
    }
    return { status: 'added', room: room.name, joined, refused };
  }

  private async checkInvitee(name: string, room?: Room, auth?: Authorised): Promise<Refusal | Invitee> {
    const k: MemberKey = await this.ctx.keys.lookup(name);
    if (!k.ok) return { name, reason: k.problem, detail: k.detail };
    if (room && room.hasMember(k.account)) return { name: k.account, reason: 'already_member' };
    if (!k.online) return { name: k.account, reason: 'offline' };
    const signed = auth?.fingerprints.get(casefold(k.account));
    if (auth && signed !== k.key.fingerprint) {
      return { name: k.account, reason: 'key_changed', detail: `the invite named key ${signed ?? 'none'}, the directory now has ${k.key.fingerprint}` };
    }
    return { nick: k.account, fingerprint: k.key.fingerprint, member: k.member };
  }

  /**
   * Relay the signed operation to the room (`SC1O` NOTICE parts), after its placements and
   * before the epoch they cause: each member's companion checks it against the roster it holds
   * and shows who added whom (docs/PROTOCOL.md "Room operations").
   */
  private relay(room: Room, op: Uint8Array): void {
    const framed = frameParts({ data: op, kind: 'op' });
    if (framed.status !== FrameStatus.OK) return;
    this.ctx.opts.transport.notices(framed.parts.map((text) => ({ target: room.name, text })));
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
   * Server-side join each nick, all in one directory call; those who could not be placed go
   * into `refused`, each by name. Returns the placed.
   */
  async place(room: Room, nicks: string[], refused: Refusal[], by?: string): Promise<string[]> {
    const placed: string[] = [];
    if (nicks.length === 0) return placed;
    for (const n of nicks) room.expectJoin(n, this.ctx.o.echoTimeoutMs * 2, by !== undefined ? `${n} added by ${by}` : undefined);
    let outcomes: Placement[];
    try {
      outcomes = await this.ctx.opts.directory.putManyInRoom(room.name, nicks);
    } catch (err) {
      if (!(err instanceof DirectoryError)) throw err;
      outcomes = nicks.map((nick) => ({ nick, ok: false as const, error: err }));
    }
    for (const o of outcomes) {
      if (o.ok) placed.push(o.nick);
      else refused.push({ name: o.nick, reason: o.error.code === 'offline' ? 'offline' : 'failed', detail: o.error.message });
    }
    // Hold the rekey until the JOINs are seen, so they make one epoch (someone may also have
    // quit meanwhile: then give up waiting, the quit makes its own epoch).
    await room
      .until(() => placed.every((n) => room.hasMember(n)), this.ctx.o.echoTimeoutMs, 'JOIN echoes')
      .catch(() => undefined);
    return placed;
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

