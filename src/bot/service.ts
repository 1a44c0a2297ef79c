/**
 * The key service: rooms, epochs and who gets which key. It sits between the IRC layer (which
 * feeds it membership events and command requests) and crypto/delivery (which seal and send
 * envelopes). It never builds human-readable replies: commands.ts turns its results into text.
 *
 * Epochs (DESIGN.md "keybot", docs/PROTOCOL.md "Key envelopes"):
 * - Every membership change keybot observes in a room (JOIN, PART, QUIT, KICK; a ping timeout
 *   arrives as QUIT) starts a new epoch with a fresh key, sent to the current members only;
 *   so does reaching rotateAfterMessages room lines or rotateAfterMs.
 * - Bursts coalesce: a change waits `settleMs` for more (at most `maxSettleMs` after the first),
 *   and an invite holds the rekey until everyone it places has joined. Envelopes are sealed
 *   asynchronously, then sent in one synchronous block only if the membership did not move in
 *   the meantime, so nobody keybot has seen leave ever receives a newer key.
 * - Epoch numbers follow the PROTOCOL rule `max(last + 1, floor(now / 1000))`. Epochs of one
 *   room are at least `minEpochIntervalMs` (1 s) apart, so they never run ahead of the clock;
 *   after a restart the first epoch waits until the second after the start (`notBefore`), so it
 *   is newer than anything the previous instance issued, with no state on disk.
 *
 * Recovery (docs/PROTOCOL.md "Faults"): a new session re-enters every `#sc-*` channel that still
 * exists and rekeys it for whoever is in it (`recover`). When the daemon itself restarted, its
 * channels are gone: the owner (main.ts) then hands over the rooms the lost session remembered
 * (names and members, never keys), and each is re-created under the same name for the
 * remembered members who are online, or who come online within `rejoinWindowMs`. Its first
 * epoch waits up to `restoreGatherMs` for the members still missing (their companions reconnect
 * with backoff), so that what is said first reaches everyone who is coming back. Nobody who
 * was not a member is ever placed; members who do not come back in time are dropped.
 *
 * Member keys are pinned per room (Room.pins, docs/PROTOCOL.md "Member fingerprints"): the
 * directory (the daemon) is asked for each member's key at every rekey, but a member whose
 * registered fingerprint differs from the one they had when placed is never keyed under the new
 * key: keybot removes them with "key changed" and keys the others. Only an invite by a member
 * pins a new fingerprint. The pins are kept in the remembered rooms (snapshot, recover).
 */
import { generateRoomKey, type PrivateKeyHandle } from '../crypto/index.js';
import { casefold, isValidAccountName, SERVICE_ROOM_PREFIX } from '../ircd/names.js';
import { createLogger } from '../util/log.js';
import { sealEnvelopes, sendEnvelopes, type EnvelopeRecipient, type Transport } from './delivery.js';
import { DirectoryError, type Placement, type PresenceChange, type UserDirectory } from './directory.js';
import { KeyBook, type KeyProblem, type MemberKey } from './keybook.js';
import { RoomRegistry, type RememberedRoom, type Room } from './rooms.js';
import { randomBytes } from 'node:crypto';

const log = createLogger('keybot');

const MAX_U32 = 0xffff_ffff;
/**
 * Most invitees one command may name: as many as fit in one IRC line (RFC 1459 §2.3: 512 bytes
 * with CRLF) after `PRIVMSG keybot :invite `, with the shortest names (one character and a
 * space each). So a person can name everyone they can type in one line, and a 50-member room
 * opens with one command in one epoch; the bound keeps one command's work finite all the same.
 */
export const MAX_INVITEES = Math.floor((510 - 'PRIVMSG keybot :invite '.length + 1) / 2);

export interface KeyServiceOptions {
  directory: UserDirectory;
  transport: Transport;
  /** keybot's unlocked OpenPGP key: signs every envelope. */
  signer: PrivateKeyHandle;
  /** New epoch after this many room lines (0 = never). */
  rotateAfterMessages: number;
  /** New epoch after this long (0 = never). */
  rotateAfterMs: number;
  /** Quiet time that ends a burst of changes (default 50 ms). */
  settleMs?: number;
  /** A burst never delays its rekey longer than this (default 500 ms). */
  maxSettleMs?: number;
  /** Least time between two epochs of one room (default 1000 ms; see the header). */
  minEpochIntervalMs?: number;
  /** No epoch before this time, ms since the Unix epoch (the restart rule; default 0). */
  notBefore?: number;
  /** How long to wait for the server's echo of a JOIN, NAMES or MODE (default 5000 ms). */
  echoTimeoutMs?: number;
  /** Wait after a failed rekey before trying again (default 2000 ms). */
  retryMs?: number;
  /** How long remembered members may come back into a room re-created after a daemon restart (default 120 s). */
  rejoinWindowMs?: number;
  /** How long a re-created room's first epoch waits for members still missing (default 10 s). */
  restoreGatherMs?: number;
}

/** A room lost with the daemon, being re-created for its remembered members. */
interface Restoring {
  name: string;
  /** Remembered members not (yet) back in it: casefolded → nick. */
  expected: Map<string, string>;
  timer: NodeJS.Timeout | undefined;
  /** Its steps run one at a time. */
  chain: Promise<void>;
  /** The fingerprints its members were pinned to (casefolded account → fingerprint). */
  pins: Map<string, string>;
  /** While set, the re-created room holds its first epoch for the members still missing. */
  gather: { room: Room; timer: NodeJS.Timeout } | undefined;
}

/** An invitee who can be placed, with the fingerprint they are pinned to if placed. */
interface Invitee {
  nick: string;
  fingerprint: string;
}

/** Why an invitee was not placed in a room. */
export type RefusalReason = KeyProblem | 'offline' | 'already_member' | 'failed';

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

export type StatusResult =
  | { status: 'unknown'; name: string }
  | { status: 'known'; name: string; online: boolean; fingerprint: string; usable: boolean; detail?: string };

export interface RoomSummary {
  room: string;
  /** Undefined until the first key is out. */
  epoch: number | undefined;
  members: string[];
}

export type LeaveResult = { status: 'left'; room: string } | { status: 'not_member' };

export type ResendResult =
  | { status: 'sent'; room: string; epoch: number }
  | { status: 'not_member' }
  /** The requester is in the room but not in the current epoch yet: a new key is on its way. */
  | { status: 'pending'; room: string };

export function isServiceRoom(name: string): boolean {
  return casefold(name).startsWith(SERVICE_ROOM_PREFIX) && name.length > SERVICE_ROOM_PREFIX.length;
}

/** A fresh room name: `#sc-` and 10 base32 characters (50 random bits). */
export function newRoomName(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  const bytes = randomBytes(10);
  let s = '';
  for (const b of bytes) s += alphabet[b & 31];
  return SERVICE_ROOM_PREFIX + s;
}

export class KeyService {
  readonly rooms = new RoomRegistry();
  private readonly keys: KeyBook;
  private readonly o: Required<Omit<KeyServiceOptions, 'directory' | 'transport' | 'signer'>>;
  /** Departures keybot itself caused at a member's request ("leave"), so members read "X left". */
  private readonly leaving = new Set<string>();
  /** Removals keybot caused because a member's registered key changed ("room nick" marks). */
  private readonly keyChanged = new Set<string>();
  /** Rooms being re-created after a daemon restart, by casefolded name. */
  private readonly restoring = new Map<string, Restoring>();
  private stopped = false;

  constructor(private readonly opts: KeyServiceOptions) {
    this.keys = new KeyBook(opts.directory);
    this.o = {
      rotateAfterMessages: opts.rotateAfterMessages,
      rotateAfterMs: opts.rotateAfterMs,
      settleMs: opts.settleMs ?? 50,
      maxSettleMs: opts.maxSettleMs ?? 500,
      minEpochIntervalMs: opts.minEpochIntervalMs ?? 1000,
      notBefore: opts.notBefore ?? 0,
      echoTimeoutMs: opts.echoTimeoutMs ?? 5000,
      retryMs: opts.retryMs ?? 2000,
      rejoinWindowMs: opts.rejoinWindowMs ?? 120_000,
      restoreGatherMs: opts.restoreGatherMs ?? 10_000,
    };
  }

  /** keybot's own nick on IRC. */
  get selfNick(): string {
    return this.opts.transport.nick;
  }

  private get self(): string {
    return this.opts.transport.nick;
  }

  private isSelf(nick: string): boolean {
    return casefold(nick) === casefold(this.self);
  }

  get fingerprint(): string {
    return this.opts.signer.fingerprint;
  }

  /** keybot's armored public key (what members pin, by fingerprint). */
  get publicKeyArmored(): string {
    return this.opts.signer.publicKey.armored;
  }

  // ---- requests (from commands) --------------------------------------------------------------

  /** `invite <user>...`: a new room with the requester and every invitee who can join now. */
  async openRoom(requester: string, invitees: string[]): Promise<OpenRoomResult> {
    const me = await this.keys.lookup(requester);
    if (!me.ok) return { status: 'requester_unusable', problem: me.problem, detail: me.detail };
    const names = uniqueNames(invitees).filter((n) => casefold(n) !== casefold(requester));
    const checked = await Promise.all(names.map((n) => this.checkInvitee(n)));
    const refused = checked.filter((c): c is Refusal => 'reason' in c);
    const available = checked.filter((c): c is Invitee => !('reason' in c));
    if (available.length === 0) return { status: 'nobody', refused };

    let name = newRoomName();
    while (this.rooms.get(name)) name = newRoomName();
    const room = this.rooms.ensure(name);
    room.holds++;
    room.pendingReasons.push('room opened');
    let joined: string[] = [];
    try {
      await this.opts.directory.putInRoom(name, this.self);
      await room.until(() => room.ready, this.o.echoTimeoutMs, 'own JOIN and NAMES');
      // Invite-only and secret before anyone else is in (only keybot, the op, could change them).
      this.opts.transport.setModes(name, '+is');
      await room.until(() => room.modes.has('i') && room.modes.has('s'), this.o.echoTimeoutMs, 'MODE +is');
      // The requester first: if they cannot be placed (gone offline), nobody else is.
      await this.opts.directory.putInRoom(name, me.account);
      this.pin(room, me.account, me.key.fingerprint);
      joined = await this.place(room, available.map((a) => a.nick), refused);
      this.pinPlaced(room, available, joined, me.account);
      if (joined.length === 0) {
        await this.opts.directory.removeFromRoom(name, me.account, 'nobody else could join').catch(() => undefined);
        this.leaveRoom(room, 'nobody joined');
        return { status: 'nobody', refused };
      }
    } catch (err) {
      log.warn(`${name}: opening failed: ${(err as Error).message}`);
      // Nobody stays behind in a room keybot does not operate.
      for (const nick of [...room.members.values()]) {
        await this.opts.directory.removeFromRoom(name, nick, 'the room could not be opened').catch(() => undefined);
      }
      this.leaveRoom(room, 'could not open the room');
      throw err;
    } finally {
      room.holds--;
      // The invite gathered its JOINs already: nothing more to settle.
      this.requestRekey(room, undefined, false, true);
    }
    log.info(`${name}: opened by ${me.account} with ${joined.length + 1} members`);
    return { status: 'opened', room: name, joined, refused };
  }

  /** `invite <#room> <user>...`: add users to a room the requester is in. */
  async addToRoom(requester: string, roomName: string, invitees: string[]): Promise<AddToRoomResult> {
    const room = this.rooms.get(roomName);
    if (!room || !room.ready || !room.hasMember(requester)) return { status: 'not_member' };
    const checked = await Promise.all(uniqueNames(invitees).map((n) => this.checkInvitee(n, room)));
    const refused = checked.filter((c): c is Refusal => 'reason' in c);
    const available = checked.filter((c): c is Invitee => !('reason' in c));
    let joined: string[] = [];
    if (available.length > 0) {
      room.holds++;
      try {
        joined = await this.place(room, available.map((a) => a.nick), refused);
        // An invite by a member is the one visible act that pins (or re-pins) an account's key.
        this.pinPlaced(room, available, joined, requester);
      } finally {
        room.holds--;
        this.requestRekey(room, undefined, false, true);
      }
    }
    return { status: 'added', room: room.name, joined, refused };
  }

  /** Accounts online now, keybot excluded, sorted. */
  async online(): Promise<string[]> {
    const names = await this.opts.directory.listOnline();
    return names.filter((n) => !this.isSelf(n)).sort((a, b) => casefold(a).localeCompare(casefold(b)));
  }

  async status(name: string): Promise<StatusResult> {
    if (!isValidAccountName(name)) return { status: 'unknown', name };
    const user = await this.opts.directory.lookupUser(name);
    if (!user) return { status: 'unknown', name };
    const key = await this.keys.lookup(user.name);
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
    return this.rooms
      .roomsOf(requester)
      .filter((r) => r.ready)
      .map((r) => ({ room: r.name, epoch: r.current?.epoch, members: [...r.members.values()].sort() }));
  }

  /** `leave <#room>`: take the requester out; the remaining members get a new key. */
  async leave(requester: string, roomName: string): Promise<LeaveResult> {
    const room = this.rooms.get(roomName);
    if (!room || !room.hasMember(requester)) return { status: 'not_member' };
    const mark = `${room.folded} ${casefold(requester)}`;
    this.leaving.add(mark);
    try {
      await this.opts.directory.removeFromRoom(room.name, requester, 'left (via keybot)');
    } catch (err) {
      this.leaving.delete(mark);
      if (err instanceof DirectoryError && err.code === 'not_found') return { status: 'not_member' };
      throw err;
    }
    return { status: 'left', room: room.name };
  }

  /** `key <#room>`: re-send the current epoch's envelope to a member who missed it. */
  async resendKey(requester: string, roomName: string): Promise<ResendResult> {
    const room = this.rooms.get(roomName);
    if (!room || !room.hasMember(requester)) return { status: 'not_member' };
    const cur = room.current;
    const listed = cur?.members.find((m) => casefold(m.account) === casefold(requester));
    if (!cur || !listed) {
      this.requestRekey(room);
      return { status: 'pending', room: room.name };
    }
    const k = await this.keys.lookup(requester);
    const pinned = room.pins.get(casefold(listed.account)) ?? listed.fingerprint;
    if (k.ok && k.key.fingerprint !== pinned) {
      // The directory now names another key than the one this member was placed with.
      if (this.rooms.get(room.name) === room && room.hasMember(requester)) this.removeForKeyChange(room, requester, pinned, k.key.fingerprint);
      return { status: 'pending', room: room.name };
    }
    if (!k.ok || k.key.fingerprint !== listed.fingerprint) {
      // The member's key changed since this epoch: only a new epoch can list the new one.
      this.requestRekey(room, `${requester} changed keys`, true);
      return { status: 'pending', room: room.name };
    }
    const key = cur.key.slice();
    try {
      const { sealed } = await sealEnvelopes({
        signer: this.opts.signer,
        room: room.name,
        epoch: cur.epoch,
        key,
        members: cur.members,
        recipients: [{ nick: requester, account: k.account, key: k.key }],
        issuedAt: Date.now(),
      });
      // Only if that epoch is still current and the requester still in the room.
      if (room.current !== cur || !room.hasMember(requester) || sealed.length === 0) return { status: 'pending', room: room.name };
      sendEnvelopes(this.opts.transport, sealed);
    } finally {
      key.fill(0);
    }
    log.info(`${room.name}: re-sent epoch ${cur.epoch} to 1 member`);
    return { status: 'sent', room: room.name, epoch: cur.epoch };
  }

  // ---- events (from the IRC connection) -------------------------------------------------------

  /** keybot joined a room: it is ours once its NAMES arrive. */
  selfJoined(roomName: string): void {
    if (!isServiceRoom(roomName)) {
      log.warn(`joined ${roomName}, which is not a keybot room; leaving it`);
      this.opts.transport.part(roomName, `keybot only operates ${SERVICE_ROOM_PREFIX}* rooms`);
      return;
    }
    this.rooms.ensure(roomName);
  }

  /** The end of a NAMES list (after keybot's own JOIN, or asked for after a restart). */
  namesReceived(roomName: string, nicks: string[]): void {
    if (!isServiceRoom(roomName) || !nicks.some((n) => this.isSelf(n))) return;
    const room = this.rooms.ensure(roomName);
    room.ready = true;
    room.setMembers(nicks.filter((n) => !this.isSelf(n)));
    if (room.members.size === 0 && room.holds === 0) {
      this.leaveRoom(room, 'empty');
      return;
    }
    this.requestRekey(room);
  }

  memberJoined(roomName: string, nick: string): void {
    const room = this.rooms.get(roomName);
    if (!room) return;
    if (room.addMember(nick)) this.requestRekey(room, room.current ? `${nick} joined` : undefined);
  }

  /** A PART (`kicked` false) or KICK (`kicked` true) of someone else. */
  memberLeft(roomName: string, nick: string, kicked: boolean): void {
    const room = this.rooms.get(roomName);
    if (!room) return;
    const mark = `${room.folded} ${casefold(nick)}`;
    const asked = this.leaving.delete(mark);
    const keyChanged = this.keyChanged.delete(mark);
    const why = keyChanged ? 'was removed (key changed)' : kicked && !asked ? 'was removed' : 'left';
    if (room.removeMember(nick)) this.requestRekey(room, `${nick} ${why}`);
  }

  memberQuit(nick: string): void {
    for (const room of this.rooms.roomsOf(nick)) {
      this.keyChanged.delete(`${room.folded} ${casefold(nick)}`);
      if (room.removeMember(nick)) this.requestRekey(room, `${nick} quit`);
    }
  }

  /** keybot itself left or was kicked: forget the room and its key. */
  selfLeft(roomName: string): void {
    if (this.rooms.delete(roomName)) log.info(`${roomName}: no longer operated by keybot`);
  }

  modesChanged(roomName: string, by: string, changes: Array<{ mode: string }>): void {
    const room = this.rooms.get(roomName);
    if (!room) return;
    room.applyModes(changes);
    if (room.ready && !this.isSelf(by) && (!room.modes.has('i') || !room.modes.has('s'))) {
      log.warn(`${room.name}: ${by} changed modes; setting +is again`);
      this.opts.transport.setModes(room.name, '+is');
    }
  }

  /** A PRIVMSG/NOTICE line to the room from a member. */
  roomMessage(roomName: string, nick: string): void {
    const room = this.rooms.get(roomName);
    if (!room || this.isSelf(nick) || !room.current) return;
    room.messagesSinceRekey++;
    const limit = this.o.rotateAfterMessages;
    if (limit > 0 && room.messagesSinceRekey >= limit && !room.forced) {
      this.requestRekey(room, `${room.messagesSinceRekey} messages`, true);
    }
  }

  // ---- restart --------------------------------------------------------------------------------

  /**
   * Re-enter every `#sc-*` room on the network (getting op back) and rekey each for its current
   * members; re-create each `remembered` room that no longer exists (the daemon restarted) for
   * its remembered members. Returns how many rooms were recovered or are being restored.
   * `known` (default `remembered`): what the lost session remembered of every room, whose member
   * fingerprints are pinned again in the rooms re-entered or re-created here.
   */
  async recover(remembered: RememberedRoom[] = [], known: RememberedRoom[] = remembered): Promise<number> {
    const pinsOf = new Map<string, Record<string, string>>();
    for (const r of known) if (r.fingerprints) pinsOf.set(casefold(r.name), r.fingerprints);
    const all = await this.opts.directory.listRooms();
    let count = 0;
    for (const info of all) {
      if (!isServiceRoom(info.name)) continue;
      const selfIn = info.members.some((m) => this.isSelf(m));
      const others = info.members.filter((m) => !this.isSelf(m));
      if (others.length === 0) {
        if (selfIn) this.opts.transport.part(info.name, 'room is empty');
        continue;
      }
      const room = this.rooms.ensure(info.name);
      for (const [account, fp] of Object.entries(pinsOf.get(room.folded) ?? {})) room.pins.set(casefold(account), fp);
      room.pendingReasons.push('keybot restarted');
      room.forced = true;
      try {
        await this.opts.directory.putInRoom(info.name, this.self);
        // Already in it (another session of ours kept it): no JOIN burst will come, so ask.
        if (selfIn) this.opts.transport.requestNames(info.name);
        const modes = info.modes.replace(/^\+/, '');
        if (!modes.includes('i') || !modes.includes('s')) this.opts.transport.setModes(info.name, '+is');
        count++;
      } catch (err) {
        log.warn(`${info.name}: cannot re-enter: ${(err as Error).message}`);
        this.rooms.delete(info.name);
      }
    }
    if (count) log.info(`recovering ${count} room${count === 1 ? '' : 's'}`);
    const present = new Set(all.filter((i) => isServiceRoom(i.name)).map((i) => casefold(i.name)));
    const lost = remembered.filter((r) => isServiceRoom(r.name) && !present.has(casefold(r.name)));
    if (lost.length > 0) count += await this.restore(lost.map((r) => ({ ...r, fingerprints: r.fingerprints ?? pinsOf.get(casefold(r.name)) })));
    return count;
  }

  /**
   * The rooms this session operates and their members (and members still expected back in a
   * restored room), for the next session in case the daemon restarted. Names only, no keys.
   */
  snapshot(): RememberedRoom[] {
    const out = new Map<string, RememberedRoom>();
    for (const room of this.rooms.all()) {
      if (room.ready && room.members.size > 0) {
        out.set(room.folded, { name: room.name, members: [...room.members.values()], fingerprints: Object.fromEntries(room.pins) });
      }
    }
    for (const [folded, r] of this.restoring) {
      const entry = out.get(folded) ?? { name: r.name, members: [], fingerprints: {} };
      for (const nick of r.expected.values()) if (!entry.members.some((m) => casefold(m) === casefold(nick))) entry.members.push(nick);
      entry.fingerprints = { ...Object.fromEntries(r.pins), ...entry.fingerprints };
      if (entry.members.length > 0) out.set(folded, entry);
    }
    return [...out.values()];
  }

  /**
   * Someone came online: parse their key ahead of need (an invite may name them next), and if
   * they belong to a room being restored, put them back in it.
   */
  presence(change: PresenceChange): void {
    if (!change.online || this.stopped) return;
    this.keys.warm([change.name]);
    const f = casefold(change.name);
    for (const entry of this.restoring.values()) {
      if (entry.expected.has(f)) void this.rejoin(entry, [change.name]);
    }
  }

  /** Parse the keys of everyone online now ahead of need, in the background (session start). */
  async warmKeys(): Promise<void> {
    const online = await this.opts.directory.listOnline();
    if (!this.stopped) this.keys.warm(online.filter((n) => !this.isSelf(n)));
  }

  /** Stop everything: timers cleared, keys wiped. */
  shutdown(): void {
    this.stopped = true;
    this.keys.stopWarming();
    for (const r of this.restoring.values()) {
      clearTimeout(r.timer);
      clearTimeout(r.gather?.timer);
    }
    this.restoring.clear();
    this.rooms.clear();
  }

  // ---- restoring rooms lost with the daemon ---------------------------------------------------

  /** Start restoring rooms the daemon lost: their members who are online now go back in at once. */
  private async restore(lost: RememberedRoom[]): Promise<number> {
    const entries: Restoring[] = [];
    for (const r of lost) {
      const expected = new Map<string, string>();
      for (const m of r.members) if (!this.isSelf(m) && isValidAccountName(m)) expected.set(casefold(m), m);
      if (expected.size === 0 || this.restoring.has(casefold(r.name))) continue;
      const pins = new Map<string, string>();
      for (const [account, fp] of Object.entries(r.fingerprints ?? {})) pins.set(casefold(account), fp);
      const entry: Restoring = { name: r.name, expected, timer: undefined, chain: Promise.resolve(), gather: undefined, pins };
      entry.timer = setTimeout(() => this.endRestoring(entry, 'the rejoin window closed'), this.o.rejoinWindowMs);
      entry.timer.unref();
      this.restoring.set(casefold(r.name), entry);
      entries.push(entry);
    }
    if (entries.length === 0) return 0;
    log.info(`restoring ${entries.length} room${entries.length === 1 ? '' : 's'} lost with the daemon; their members have ${Math.round(this.o.rejoinWindowMs / 1000)} s to come back`);
    const online = new Set((await this.opts.directory.listOnline()).map((n) => casefold(n)));
    await Promise.all(entries.map((e) => this.rejoin(e, [...e.expected.values()].filter((n) => online.has(casefold(n))))));
    return entries.length;
  }

  /**
   * Put remembered members who are online again back into their room, re-creating the room
   * (same name, +is, keybot op) if it does not exist yet; then rekey. Never rejects.
   */
  private rejoin(entry: Restoring, nicks: string[]): Promise<void> {
    const step = entry.chain.then(async () => {
      if (this.stopped || this.restoring.get(casefold(entry.name)) !== entry) return;
      // Only remembered members, each once (the list is re-checked here, one step at a time).
      const back: string[] = [];
      for (const n of nicks) {
        const nick = entry.expected.get(casefold(n));
        if (nick === undefined) continue;
        entry.expected.delete(casefold(n));
        back.push(nick);
      }
      if (back.length === 0) return;
      const refused: Refusal[] = [];
      const existing = this.rooms.get(entry.name);
      const room = existing ?? this.rooms.ensure(entry.name);
      // Remembered members come back under the fingerprints they were pinned to.
      for (const [account, fp] of entry.pins) if (!room.pins.has(account)) room.pins.set(account, fp);
      room.holds++;
      try {
        if (!existing) {
          room.pendingReasons.push('room restored after a server restart');
          room.forced = true;
          await this.opts.directory.putInRoom(entry.name, this.self);
          await room.until(() => room.ready, this.o.echoTimeoutMs, 'own JOIN and NAMES');
          this.opts.transport.setModes(entry.name, '+is');
          await room.until(() => room.modes.has('i') && room.modes.has('s'), this.o.echoTimeoutMs, 'MODE +is');
        }
        await this.place(room, back, refused);
      } catch (err) {
        log.warn(`${entry.name}: restoring failed: ${(err as Error).message}`);
        if (!existing) {
          for (const nick of [...room.members.values()]) {
            await this.opts.directory.removeFromRoom(entry.name, nick, 'the room could not be restored').catch(() => undefined);
          }
          this.leaveRoom(room, 'could not restore the room');
          this.endRestoring(entry, 'it could not be re-created');
        }
        return;
      } finally {
        room.holds--;
      }
      // Gone offline again in the meantime: they may still come back within the window.
      for (const r of refused) if (r.reason === 'offline') entry.expected.set(casefold(r.name), r.name);
      if (this.rooms.get(room.name) !== room) return;
      if (room.members.size === 0) {
        // Nobody could be placed after all: the next one to come online re-creates it.
        this.endGather(entry);
        this.leaveRoom(room, 'nobody came back');
        return;
      }
      const placed = back.filter((n) => room.hasMember(n));
      log.info(`${entry.name}: ${placed.length} remembered member${placed.length === 1 ? '' : 's'} back in the room`);
      if (!existing && entry.expected.size > 0 && !entry.gather) {
        // Hold the first epoch briefly for the others, so that what is said first reaches them too.
        room.holds++;
        const timer = setTimeout(() => this.endGather(entry), this.o.restoreGatherMs);
        timer.unref();
        entry.gather = { room, timer };
      }
      if (entry.expected.size === 0) this.endRestoring(entry);
      this.requestRekey(room);
    });
    entry.chain = step.catch((err: unknown) => log.warn(`${entry.name}: ${(err as Error).message}`));
    return entry.chain;
  }

  /** A re-created room stops holding its first epoch for missing members: rekey it now. */
  private endGather(entry: Restoring): void {
    const g = entry.gather;
    if (!g) return;
    entry.gather = undefined;
    clearTimeout(g.timer);
    g.room.holds--;
    if (this.stopped || this.rooms.get(g.room.name) !== g.room) return;
    if (g.room.members.size === 0 && g.room.holds === 0) this.leaveRoom(g.room, 'empty');
    else this.requestRekey(g.room);
  }

  /** Stop waiting for a restored room's missing members: they are no longer members. */
  private endRestoring(entry: Restoring, why?: string): void {
    this.endGather(entry);
    if (this.restoring.get(casefold(entry.name)) !== entry) return;
    clearTimeout(entry.timer);
    this.restoring.delete(casefold(entry.name));
    if (why && entry.expected.size > 0) {
      log.info(`${entry.name}: ${entry.expected.size} remembered member${entry.expected.size === 1 ? '' : 's'} dropped (${why})`);
    }
    entry.expected.clear();
  }

  // ---- internals ------------------------------------------------------------------------------

  private async checkInvitee(name: string, room?: Room): Promise<Refusal | Invitee> {
    const k: MemberKey = await this.keys.lookup(name);
    if (!k.ok) return { name, reason: k.problem, detail: k.detail };
    if (room && room.hasMember(k.account)) return { name: k.account, reason: 'already_member' };
    if (!k.online) return { name: k.account, reason: 'offline' };
    return { nick: k.account, fingerprint: k.key.fingerprint };
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
   * The directory names another key for `nick` than the one they were pinned to in `room`:
   * remove them ("key changed"), tell the room and them, and never key them under the new key.
   */
  private removeForKeyChange(room: Room, nick: string, pinned: string, now: string): void {
    const mark = `${room.folded} ${casefold(nick)}`;
    const first = !this.keyChanged.has(mark);
    this.keyChanged.add(mark);
    this.evict(room, nick, 'key changed');
    if (!first) return;
    log.warn(`${room.name}: ${nick}'s registered key changed (pinned ${pinned}, directory now ${now}); removed, not keyed`);
    this.opts.transport.notice(
      room.name,
      `${nick} removed: their registered key changed (was ${pinned}, now ${now}); they get no key. ` +
        `A member may invite ${nick} again after checking the new fingerprint with them.`,
    );
    this.opts.transport.notice(
      nick,
      `you were removed from ${room.name}: the key registered for your account changed (was ${pinned}, now ${now}). ` +
        'If you did not change it, your account\'s key was replaced by someone else; a member must invite you again.',
    );
  }

  /**
   * Server-side join each nick, all in one directory call; those who could not be placed go
   * into `refused`, each by name. Returns the placed.
   */
  private async place(room: Room, nicks: string[], refused: Refusal[]): Promise<string[]> {
    const placed: string[] = [];
    if (nicks.length === 0) return placed;
    let outcomes: Placement[];
    try {
      outcomes = await this.opts.directory.putManyInRoom(room.name, nicks);
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
      .until(() => placed.every((n) => room.hasMember(n)), this.o.echoTimeoutMs, 'JOIN echoes')
      .catch(() => undefined);
    return placed;
  }

  /**
   * Ask for a new epoch: now-ish for membership changes, always when `forced`. `settled`: the
   * changes are complete (an invite placed its users and saw their JOINs), so the rekey need not
   * wait `settleMs` for more; it still takes whatever else is pending along, and still keeps
   * `minEpochIntervalMs` and `notBefore`.
   */
  private requestRekey(room: Room, reason?: string, forced = false, settled = false): void {
    if (reason && !room.pendingReasons.includes(reason)) room.pendingReasons.push(reason);
    if (forced) room.forced = true;
    if (settled) room.settled = true;
    if (this.stopped || !room.ready || room.holds > 0 || room.rekeying) return;
    if (!this.rekeyDue(room)) return;
    this.schedule(room, 0);
  }

  private rekeyDue(room: Room): boolean {
    return room.forced || !room.current || room.keyedVersion !== room.version;
  }

  private schedule(room: Room, extraDelay: number): void {
    const now = Date.now();
    room.firstPendingAt ??= now;
    const settled = room.settled ? now : Math.min(now + this.o.settleMs, room.firstPendingAt + this.o.maxSettleMs);
    const spaced = room.current ? room.current.startedAt + this.o.minEpochIntervalMs : 0;
    const at = Math.max(settled, spaced, this.o.notBefore, now + extraDelay);
    clearTimeout(room.settleTimer);
    this.runAt(room, at);
  }

  /**
   * Run the rekey at wall-clock time `at`, not before: Node's timers run on a monotonic clock and
   * may fire a millisecond before Date.now() reaches the target, which would put an epoch 1 ms
   * inside `minEpochIntervalMs` or before `notBefore`.
   */
  private runAt(room: Room, at: number): void {
    room.settleTimer = setTimeout(() => {
      const early = at - Date.now();
      if (early > 0) this.runAt(room, at);
      else void this.run(room);
    }, Math.max(0, at - Date.now()));
  }

  private async run(room: Room): Promise<void> {
    room.settleTimer = undefined;
    if (this.stopped || this.rooms.get(room.name) !== room || room.rekeying || room.holds > 0) return;
    if (!this.rekeyDue(room)) return;
    room.rekeying = true;
    room.settled = false;
    let failed = false;
    try {
      await this.rekey(room);
    } catch (err) {
      failed = true;
      log.warn(`${room.name}: rekey failed: ${(err as Error).message}`);
    } finally {
      room.rekeying = false;
    }
    if (!this.stopped && this.rooms.get(room.name) === room && room.ready && room.holds === 0 && this.rekeyDue(room)) {
      this.schedule(room, failed ? this.o.retryMs : 0);
    }
  }

  /** Make one new epoch and send it, unless the membership moves while the envelopes are sealed. */
  private async rekey(room: Room): Promise<void> {
    const version = room.version;
    const nicks = [...room.members.values()];
    if (nicks.length === 0) {
      this.leaveRoom(room, 'empty');
      return;
    }
    const found = await Promise.all(nicks.map(async (nick) => ({ nick, k: await this.keys.lookup(nick) })));
    if (this.rooms.get(room.name) !== room || room.version !== version) return;

    const usable: Array<EnvelopeRecipient & { member: (MemberKey & { ok: true })['member'] }> = [];
    for (const { nick, k } of found) {
      if (!k.ok) {
        this.evict(room, nick, `no usable key (${k.detail ?? k.problem})`);
        continue;
      }
      const pinned = room.pins.get(casefold(k.account));
      if (pinned !== undefined && pinned !== k.key.fingerprint) {
        this.removeForKeyChange(room, nick, pinned, k.key.fingerprint);
        continue;
      }
      usable.push({ nick, account: k.account, key: k.key, member: k.member });
    }
    if (usable.length === 0) return; // the evictions will bring the next change

    const startedAt = Date.now();
    const epoch = Math.min(MAX_U32, Math.max((room.current?.epoch ?? 0) + 1, Math.floor(startedAt / 1000)));
    const key = generateRoomKey();
    const members = usable.map((u) => u.member);
    const { sealed, failed } = await sealEnvelopes({
      signer: this.opts.signer,
      room: room.name,
      epoch,
      key,
      members,
      recipients: usable,
      issuedAt: startedAt,
    });
    if (failed.length > 0 || this.rooms.get(room.name) !== room || room.version !== version) {
      for (const f of failed) this.evict(room, f.nick, `no usable key (${f.reason})`);
      key.fill(0);
      return;
    }
    // From here to the end: synchronous, so no IRC event can change the room in between.
    const reasons = room.pendingReasons.join(', ') || 'new epoch';
    room.install({ epoch, key, members, startedAt }, version);
    // First keyed here without a placement by keybot (a restart, a join keybot did not make): pin now.
    for (const m of members) if (!room.pins.has(casefold(m.account))) room.pins.set(casefold(m.account), m.fingerprint);
    sendEnvelopes(this.opts.transport, sealed);
    this.opts.transport.notice(room.name, keyEventText(epoch, members.map((m) => m.account), reasons));
    this.armRotation(room);
    log.info(`${room.name}: epoch ${epoch} for ${members.length} member${members.length === 1 ? '' : 's'} (${reasons})`);
  }

  private evict(room: Room, nick: string, reason: string): void {
    log.warn(`${room.name}: removing ${nick}: ${reason}`);
    this.opts.directory.removeFromRoom(room.name, nick, reason).catch((err) => log.warn(`${room.name}: cannot remove ${nick}: ${(err as Error).message}`));
  }

  private armRotation(room: Room): void {
    clearTimeout(room.rotateTimer);
    room.rotateTimer = undefined;
    if (this.o.rotateAfterMs <= 0) return;
    room.rotateTimer = setTimeout(() => this.requestRekey(room, 'scheduled rotation', true), this.o.rotateAfterMs);
    room.rotateTimer.unref();
  }

  /** keybot is the last one (or opening failed): leave, so the channel disappears. */
  private leaveRoom(room: Room, why: string): void {
    this.opts.transport.part(room.name, why);
    this.rooms.delete(room.name);
    log.info(`${room.name}: left (${why})`);
  }
}

/** The channel NOTICE that announces an epoch (members see why their key changed). */
export function keyEventText(epoch: number, accounts: string[], reasons: string): string {
  const who = accounts.length <= 10 ? accounts.join(', ') : `${accounts.length} members`;
  return `new key: epoch ${epoch} for ${who} (${reasons})`;
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

