/**
 * The key service: rooms, epochs and who gets which key. It sits between the IRC layer (which
 * feeds it membership events and command requests) and crypto/delivery (which seal and send
 * envelopes). It never builds human-readable replies: commands.ts turns its results into text.
 *
 * KeyService is the facade the command table (commands.ts) and the session (main.ts) use; each
 * of its jobs lives in one part, all sharing one ServiceContext (context.ts: options, rooms, keys):
 * - epochs.ts: when a room gets a new epoch (membership changes, bursts, rotation, the epoch
 *   number rule, and the restart rule: no epoch before `notBefore`), and sending its key
 *   (rekey, `key` resend) through crypto and delivery.
 * - invites.ts: `invite`: opening a room, checking invitees, placing and pinning them.
 * - operations.ts: the member-signed operations (`invite`, `leave`, `remove`): propose, verify, carry out.
 * - removals.ts: the daemon's side of signed departures, evictions, the "key changed" removal, and how members read each.
 * - recovery.ts: taking over the daemon's rooms after a restart, with keybot's pins and pending invites.
 * IRC events and the simple requests (online, status, rooms) are handled here.
 *
 * Rooms outlive a connection (docs/PROTOCOL.md "Rooms that outlive a connection", where the
 * directory's persistentRooms says so, i.e. sealchatd): a room's roster (Room.members) is its
 * members by account, online or offline; a QUIT makes a member offline and no epoch; a member's
 * JOIN at login gets the current key again; an offline invitee is pending (Room.pending,
 * invites.ts) until their JOIN at login. On an ordinary network a QUIT is a departure, as a PART.
 *
 * Member keys are pinned per room (Room.pins, docs/PROTOCOL.md "Member fingerprints"): the
 * directory (the daemon) is asked for each member's key at every rekey, but a member whose
 * registered fingerprint differs from the one they had when placed is never keyed under the new
 * key: keybot removes them with "key changed" and keys the others. Only an invite by a member
 * pins a new fingerprint. The pins are kept in the remembered rooms (snapshot, recover).
 */
import { casefold, isValidAccountName, SERVICE_ROOM_PREFIX } from '../protocol/names.js';
import { createLogger } from '../util/log.js';
import { isServiceRoom, ServiceContext, type KeyServiceOptions } from './context.js';
import type { PresenceChange } from './directory.js';
import { Epochs, type ResendResult } from './epochs.js';
import { Invites, type AddToRoomResult, type Authorised, type CancelResult, type OpenRoomResult } from './invites.js';
import { Operations, type ProposeDepartureResult, type ProposeResult, type SignedResult } from './operations.js';
import { Recovery } from './recovery.js';
import { Removals } from './removals.js';
import type { RememberedRoom, Room, RoomRegistry } from './rooms.js';

export { isServiceRoom, type KeyServiceOptions } from './context.js';
export { keyEventText, type ResendResult } from './epochs.js';
export { MAX_INVITEES, newRoomName, type AddToRoomResult, type Authorised, type CancelResult, type OpenRoomResult, type Refusal, type RefusalReason } from './invites.js';
export type { ProposeDepartureResult, ProposeResult, RemoveRefusal, RemoveRefusalReason, SignedResult } from './operations.js';

const log = createLogger('keybot');

export type StatusResult =
  | { status: 'unknown'; name: string }
  | { status: 'known'; name: string; online: boolean; fingerprint: string; usable: boolean; detail?: string };

export interface RoomSummary {
  room: string;
  /** Undefined until the first key is out. */
  epoch: number | undefined;
  members: string[];
}

export class KeyService {
  private readonly removals: Removals;
  private readonly epochs: Epochs;
  private readonly invites: Invites;
  private readonly recovery: Recovery;
  private readonly operations: Operations;

  private readonly ctx: ServiceContext;

  constructor(opts: KeyServiceOptions) {
    this.ctx = new ServiceContext(opts);
    this.removals = new Removals(this.ctx);
    this.epochs = new Epochs(this.ctx, this.removals);
    this.invites = new Invites(this.ctx, this.epochs);
    this.recovery = new Recovery(this.ctx, this.invites, this.removals, (room) => this.settle(room));
    this.operations = new Operations(this.ctx, this.invites, this.removals, this.epochs, opts.proposalTtlMs);
    this.operations.onExpired = (requester, text) => this.ctx.opts.transport.notice(requester, text);
  }

  /** keybot's own nick on IRC. */
  get selfNick(): string {
    return this.ctx.opts.transport.nick;
  }

  get fingerprint(): string {
    return this.ctx.opts.signer.fingerprint;
  }

  /** keybot's armored public key (what members pin, by fingerprint). */
  get publicKeyArmored(): string {
    return this.ctx.opts.signer.publicKey.armored;
  }

  /** The rooms keybot operates (tests and the session read them). */
  get rooms(): RoomRegistry {
    return this.ctx.rooms;
  }

  // ---- requests (from commands) --------------------------------------------------------------

  /**
   * `invite [#room] <user>...` from IRC: propose the operation to the requester's companion for
   * signing (operations.ts); the invite happens when the signed operation comes back.
   */
  proposeInvite(requester: string, roomName: string | undefined, invitees: string[]): Promise<ProposeResult> {
    return this.operations.propose(requester, roomName, invitees);
  }

  /** One `SC1O` part of a signed operation from `nick` (account `account`). */
  signedOperationPart(nick: string, account: string, line: string): Promise<SignedResult> {
    return this.operations.signedPart(nick, account, line);
  }

  /**
   * Open a room WITHOUT a member's signature: only for keybot's own tests of placement; nothing
   * on IRC reaches it (the `invite` command proposes, operations.ts).
   */
  openRoom(requester: string, invitees: string[]): Promise<OpenRoomResult> {
    return this.invites.openRoom(requester, invitees);
  }

  /**
   * Add users WITHOUT checking a member's signature (`auth`, if given, is taken as verified): as
   * openRoom, for keybot's own tests only.
   */
  addToRoom(requester: string, roomName: string, invitees: string[], auth?: Authorised): Promise<AddToRoomResult> {
    return this.invites.addToRoom(requester, roomName, invitees, auth);
  }

  /** Accounts online now, keybot excluded, sorted. */
  async online(): Promise<string[]> {
    const names = await this.ctx.opts.directory.listOnline();
    return names.filter((n) => !this.ctx.isSelf(n)).sort((a, b) => casefold(a).localeCompare(casefold(b)));
  }

  async status(name: string): Promise<StatusResult> {
    if (!isValidAccountName(name)) return { status: 'unknown', name };
    const user = await this.ctx.opts.directory.lookupUser(name);
    if (!user) return { status: 'unknown', name };
    const key = await this.ctx.keys.lookup(user.name);
    return {
      status: 'known',
      name: user.name,
      online: user.online,
      fingerprint: user.fingerprint,
      usable: key.ok,
      detail: key.ok ? undefined : key.detail,
    };
  }

  roomsOf(requester: string): RoomSummary[] {
    return this.ctx.rooms
      .roomsOf(requester)
      .filter((r) => r.ready)
      .map((r) => ({ room: r.name, epoch: r.current?.epoch, members: [...r.members.values()].sort() }));
  }

  /** `leave <#room>`: propose the requester's signed `leave` (operations.ts); they leave once it comes back signed. */
  proposeLeave(requester: string, roomName: string): ProposeDepartureResult {
    return this.operations.proposeLeave(requester, roomName);
  }

  /** `remove <#room> <user>...`: propose the requester's signed `remove` (operations.ts). */
  proposeRemove(requester: string, roomName: string, names: string[]): Promise<ProposeDepartureResult> {
    return this.operations.proposeRemove(requester, roomName, names);
  }

  /** `cancel <#room> <user>`: drop a pending invite (any member). */
  cancelInvite(requester: string, roomName: string, name: string): Promise<CancelResult> {
    return this.invites.cancel(requester, roomName, name);
  }

  /** `key <#room>`: re-send the current epoch's envelope to a member who missed it. */
  resendKey(requester: string, roomName: string): Promise<ResendResult> {
    return this.epochs.resendKey(requester, roomName);
  }

  // ---- events (from the IRC connection) -------------------------------------------------------

  /** keybot joined a room: it is ours once its NAMES arrive (and its roster is known). */
  selfJoined(roomName: string): void {
    if (!isServiceRoom(roomName, this.ctx.opts.roomPrefix)) {
      log.warn(`joined ${roomName}, which is not a keybot room; leaving it`);
      this.ctx.opts.transport.part(roomName, `keybot only operates ${this.ctx.opts.roomPrefix ?? SERVICE_ROOM_PREFIX}* rooms`);
      return;
    }
    this.ctx.rooms.ensure(roomName);
  }

  /** The end of a NAMES list (after keybot's own JOIN, or asked for after a restart). */
  namesReceived(roomName: string, nicks: string[]): void {
    if (!isServiceRoom(roomName, this.ctx.opts.roomPrefix) || !nicks.some((n) => this.ctx.isSelf(n))) return;
    const room = this.ctx.rooms.ensure(roomName);
    const others = nicks.filter((n) => !this.ctx.isSelf(n));
    room.namesSeen = true;
    room.setPresent(others);
    if (this.ctx.opts.directory.persistentRooms && !room.rosterKnown && this.recovery.done) {
      // keybot opens its rooms itself and learns the others from the daemon at its recovery: a
      // room it is put into otherwise is none of its own, and whoever is in it is keyed by nobody.
      log.warn(`${room.name}: put into a room keybot neither opened nor recovered; leaving it`);
      this.ctx.leaveRoom(room, 'keybot did not open this room');
      return;
    }
    if (!this.ctx.opts.directory.persistentRooms) {
      // Membership ends with the connection (an ordinary network): whoever is in it is the
      // roster. A room keybot remembers (its pins came back from the room memory): whoever is in
      // it but was never keyed there got in while keybot was away, by a join keybot did not make.
      let members = others;
      if (room.pins.size > 0) {
        for (const n of others.filter((x) => !room.pins.has(casefold(x)))) this.removals.intruder(room, n);
        members = others.filter((n) => room.pins.has(casefold(n)));
      }
      room.setMembers(members);
      room.rosterKnown = true;
    }
    this.settle(room);
  }

  /**
   * The room's NAMES and roster are both known: it is ready. Whoever is in the channel must be
   * explained: a member (online now), a pending invitee (their invite is carried out now), or
   * an intruder (removed, never keyed). Then the room gets the epoch it is due.
   */
  private settle(room: Room): void {
    if (!room.namesSeen || !room.rosterKnown) return;
    room.markReady();
    for (const f of room.present) {
      if (room.members.has(f) || room.intruders.has(f) || room.expectedJoins.has(f)) continue;
      if (room.pending.has(f)) void this.invites.admit(room, f);
      else this.removals.intruder(room, f);
    }
    if (room.members.size === 0 && room.holds === 0) {
      this.ctx.leaveRoom(room, 'empty');
      return;
    }
    this.epochs.requestRekey(room);
  }

  /**
   * A JOIN of someone else. Explained are only: a JOIN keybot asked for (a placement after a
   * verified invite), a member's own JOIN at login (the daemon places members back in their
   * rooms: they get the current key again, no new epoch), and a pending invitee's JOIN at
   * login (their invite is carried out now). Anyone else is an intruder.
   */
  memberJoined(roomName: string, nick: string): void {
    const room = this.ctx.rooms.get(roomName);
    if (!room) return;
    const f = casefold(nick);
    room.present.add(f);
    // Not ready yet: settle() judges everyone present once the roster is known.
    if (!room.ready) return;
    const expected = room.takeExpectedJoin(nick);
    if (expected) {
      if (room.addMember(nick)) this.epochs.requestRekey(room, room.current ? (expected.reason ?? `${nick} joined`) : undefined);
      return;
    }
    if (room.members.has(f)) {
      // Back at login: the envelopes sealed while they were away came from their mailbox; the
      // current one again, in case (epochs.ts checks the pin: a swapped key is removed, not keyed).
      // A key whose rotation was skipped while nobody was online is replaced instead.
      if (this.epochs.rotationDue(room)) this.epochs.requestRekey(room, 'scheduled rotation', true);
      else this.epochs.resendKey(nick, room.name).catch((err: unknown) => log.warn(`${room.name}: cannot re-send the key to ${nick}: ${(err as Error).message}`));
      return;
    }
    if (room.pending.has(f)) {
      void this.invites.admit(room, nick);
      return;
    }
    this.removals.intruder(room, nick);
  }

  /** A PART (`kicked` false) or KICK (`kicked` true) of someone else, online or not. */
  memberLeft(roomName: string, nick: string, kicked: boolean): void {
    const room = this.ctx.rooms.get(roomName);
    if (!room) return;
    const f = casefold(nick);
    room.present.delete(f);
    if (room.pending.delete(f)) this.ctx.changed();
    const why = this.removals.departure(room, nick, kicked);
    if (room.removeMember(nick)) {
      this.epochs.requestRekey(room, `${nick} ${why}`);
      // A member who left can add nobody any more: the invites they signed that wait for a login lapse.
      this.invites.actorLeft(room, nick);
    }
    // An intruder is gone: a fresh epoch lets the members' companions send again (they stop when a stranger joins).
    else if (room.intruders.delete(f)) this.epochs.requestRekey(room, `${nick} ${why}`, true);
  }

  /**
   * A QUIT (or a ping timeout). Where rooms outlive a connection, a member who quits is offline,
   * still a member: no epoch (docs/PROTOCOL.md "Rooms that outlive a connection"). Elsewhere a
   * QUIT is a departure, as a PART.
   */
  memberQuit(nick: string): void {
    const f = casefold(nick);
    for (const room of this.ctx.rooms.all()) {
      room.present.delete(f);
      // Their companion's connection ended: it holds no key to follow an epoch notice with (it
      // gets a join envelope at its next login, epochs.ts resendKey).
      room.holders.delete(f);
      if (room.intruders.delete(f)) this.epochs.requestRekey(room, `${nick} was removed (not invited by a member)`, true);
    }
    if (this.ctx.opts.directory.persistentRooms) return;
    for (const room of this.ctx.rooms.roomsOf(nick)) {
      this.removals.quit(room, nick);
      if (room.removeMember(nick)) {
        this.epochs.requestRekey(room, `${nick} quit`);
        this.invites.actorLeft(room, nick);
      }
    }
  }

  /** keybot itself left or was kicked: forget the room and its key. */
  selfLeft(roomName: string): void {
    if (this.ctx.rooms.delete(roomName)) log.info(`${roomName}: no longer operated by keybot`);
  }

  modesChanged(roomName: string, by: string, changes: Array<{ mode: string }>): void {
    const room = this.ctx.rooms.get(roomName);
    if (!room) return;
    room.applyModes(changes);
    if (room.ready && !this.ctx.isSelf(by) && (!room.modes.has('i') || !room.modes.has('s'))) {
      log.warn(`${room.name}: ${by} changed modes; setting +is again`);
      this.ctx.opts.transport.setModes(room.name, '+is');
    }
  }

  /** A PRIVMSG/NOTICE line to the room from a member. */
  roomMessage(roomName: string, nick: string): void {
    const room = this.ctx.rooms.get(roomName);
    if (!room || this.ctx.isSelf(nick) || !room.current) return;
    room.messagesSinceRekey++;
    const limit = this.ctx.o.rotateAfterMessages;
    if (limit > 0 && room.messagesSinceRekey >= limit && !room.forced) {
      this.epochs.requestRekey(room, `${room.messagesSinceRekey} messages`, true);
    }
  }

  // ---- restart --------------------------------------------------------------------------------

  /**
   * Take over every `#sc-*` room the daemon lists and rekey each (recovery.ts); `known`: what
   * keybot remembers of its rooms (pins, pending invites). Returns how many rooms were recovered.
   */
  recover(known: RememberedRoom[] = []): Promise<number> {
    return this.recovery.recover(known);
  }

  /**
   * The rooms this session operates: roster, pins and pending invites (no keys), for the next
   * session and the room memory on disk.
   */
  snapshot(): RememberedRoom[] {
    return this.recovery.snapshot();
  }

  /** Someone came online: parse their key ahead of need (an invite may name them next). */
  presence(change: PresenceChange): void {
    if (!change.online || this.ctx.stopped) return;
    this.ctx.keys.warm([change.name]);
  }

  /** Parse the keys of everyone online now ahead of need, in the background (session start). */
  async warmKeys(): Promise<void> {
    const online = await this.ctx.opts.directory.listOnline();
    if (!this.ctx.stopped) this.ctx.keys.warm(online.filter((n) => !this.ctx.isSelf(n)));
  }

  /** Stop everything: timers cleared, keys wiped. */
  shutdown(): void {
    this.ctx.stopped = true;
    this.operations.stop();
    this.ctx.keys.stopWarming();
    this.ctx.rooms.clear();
  }
}
