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
 * - removals.ts: `leave`, evictions, the "key changed" removal, and how members read each.
 * - recovery.ts: re-entering rooms after a restart, and re-creating those lost with the daemon.
 * IRC events and the simple requests (online, status, rooms) are handled here.
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
import { Invites, type AddToRoomResult, type OpenRoomResult } from './invites.js';
import { Operations, type ProposeResult, type SignedResult } from './operations.js';
import { Recovery } from './recovery.js';
import { Removals, type LeaveResult } from './removals.js';
import type { RememberedRoom, RoomRegistry } from './rooms.js';

export { isServiceRoom, type KeyServiceOptions } from './context.js';
export { keyEventText, type ResendResult } from './epochs.js';
export { MAX_INVITEES, newRoomName, type AddToRoomResult, type OpenRoomResult, type Refusal, type RefusalReason } from './invites.js';
export type { LeaveResult } from './removals.js';
export type { ProposeResult, SignedResult } from './operations.js';

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
    this.recovery = new Recovery(this.ctx, this.invites, this.epochs);
    this.operations = new Operations(this.ctx, this.invites, opts.proposalTtlMs);
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

  /** Add users WITHOUT a member's signature: as openRoom, for keybot's own tests only. */
  addToRoom(requester: string, roomName: string, invitees: string[]): Promise<AddToRoomResult> {
    return this.invites.addToRoom(requester, roomName, invitees);
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

  /** `leave <#room>`: take the requester out; the remaining members get a new key. */
  leave(requester: string, roomName: string): Promise<LeaveResult> {
    return this.removals.leave(requester, roomName);
  }

  /** `key <#room>`: re-send the current epoch's envelope to a member who missed it. */
  resendKey(requester: string, roomName: string): Promise<ResendResult> {
    return this.epochs.resendKey(requester, roomName);
  }

  // ---- events (from the IRC connection) -------------------------------------------------------

  /** keybot joined a room: it is ours once its NAMES arrive. */
  selfJoined(roomName: string): void {
    if (!isServiceRoom(roomName)) {
      log.warn(`joined ${roomName}, which is not a keybot room; leaving it`);
      this.ctx.opts.transport.part(roomName, `keybot only operates ${SERVICE_ROOM_PREFIX}* rooms`);
      return;
    }
    this.ctx.rooms.ensure(roomName);
  }

  /** The end of a NAMES list (after keybot's own JOIN, or asked for after a restart). */
  namesReceived(roomName: string, nicks: string[]): void {
    if (!isServiceRoom(roomName) || !nicks.some((n) => this.ctx.isSelf(n))) return;
    const room = this.ctx.rooms.ensure(roomName);
    room.ready = true;
    let others = nicks.filter((n) => !this.ctx.isSelf(n));
    // A room keybot remembers (its pins came back from the room memory): whoever is in it but
    // was never keyed there got in while keybot was away, by a join keybot did not make.
    if (room.pins.size > 0) {
      const strangers = others.filter((n) => !room.pins.has(casefold(n)));
      others = others.filter((n) => room.pins.has(casefold(n)));
      for (const n of strangers) this.removals.intruder(room, n);
    }
    room.setMembers(others);
    if (room.members.size === 0 && room.holds === 0) {
      this.ctx.leaveRoom(room, 'empty');
      return;
    }
    this.epochs.requestRekey(room);
  }

  memberJoined(roomName: string, nick: string): void {
    const room = this.ctx.rooms.get(roomName);
    if (!room) return;
    // Only JOINs keybot asked for (placements after a verified invite, restores) make members.
    const expected = room.ready ? room.takeExpectedJoin(nick) : {};
    if (!expected) {
      this.removals.intruder(room, nick);
      return;
    }
    if (room.addMember(nick)) this.epochs.requestRekey(room, room.current ? (expected.reason ?? `${nick} joined`) : undefined);
  }

  /** A PART (`kicked` false) or KICK (`kicked` true) of someone else. */
  memberLeft(roomName: string, nick: string, kicked: boolean): void {
    const room = this.ctx.rooms.get(roomName);
    if (!room) return;
    const why = this.removals.departure(room, nick, kicked);
    if (room.removeMember(nick)) this.epochs.requestRekey(room, `${nick} ${why}`);
    // An intruder is gone: a fresh epoch lets the members' companions send again (they stop when a stranger joins).
    else if (room.intruders.delete(casefold(nick))) this.epochs.requestRekey(room, `${nick} ${why}`, true);
  }

  memberQuit(nick: string): void {
    for (const room of this.ctx.rooms.all()) {
      if (room.intruders.delete(casefold(nick))) this.epochs.requestRekey(room, `${nick} was removed (not invited by a member)`, true);
    }
    for (const room of this.ctx.rooms.roomsOf(nick)) {
      this.removals.quit(room, nick);
      if (room.removeMember(nick)) this.epochs.requestRekey(room, `${nick} quit`);
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
   * Re-enter every `#sc-*` room on the network and rekey each; re-create each `remembered` room
   * that no longer exists (see recovery.ts). Returns how many rooms were recovered or are being
   * restored.
   */
  recover(remembered: RememberedRoom[] = [], known: RememberedRoom[] = remembered): Promise<number> {
    return this.recovery.recover(remembered, known);
  }

  /**
   * The rooms this session operates and their members (and members still expected back in a
   * restored room), for the next session in case the daemon restarted. Names only, no keys.
   */
  snapshot(): RememberedRoom[] {
    return this.recovery.snapshot();
  }

  /**
   * Someone came online: parse their key ahead of need (an invite may name them next), and if
   * they belong to a room being restored, put them back in it.
   */
  presence(change: PresenceChange): void {
    if (!change.online || this.ctx.stopped) return;
    this.ctx.keys.warm([change.name]);
    this.recovery.cameOnline(change.name);
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
    this.recovery.stop();
    this.ctx.rooms.clear();
  }
}
