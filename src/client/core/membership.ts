/**
 * A companion's view of room membership, as IRC shows it: which rooms we are in, and what a
 * JOIN, PART, KICK or QUIT means for the room keys (docs/PROTOCOL.md "Faults").
 *
 * Owned by CompanionSession (session.ts), so SealClient and the proxy (which see the lines on their
 * own connection) and the plugin agent (whose plugins report them with `membership` requests) all
 * apply the same rules:
 *  - we join a room: it is one of ours, text for it may wait for its key;
 *  - we leave it (PART, or KICK of us): our keys for it are wiped at once, and text held for it
 *    is given up (keybot rekeys the others);
 *  - someone else joins or leaves (PART, KICK): KeyTrust (outbox.ts) decides whether the room's
 *    current key may still be sent under; until the next epoch, text is held by the Outbox, never sent;
 *  - someone QUITs: nothing. Offline is not leaving (docs/PROTOCOL.md "Rooms that outlive a
 *    connection"): they stay a member, listed in every epoch and keyed through the daemon's
 *    mailbox, and keep the key either way; their JOIN at their next login (they are listed) is
 *    no change either. Our own JOINs at login (the daemon places us back) are ordinary self-joins.
 *
 * No I/O: the owner reports what the returned Unsent texts mean to the user.
 */
import { casefold } from '../../protocol/names.js';
import type { RoomCryptoEngine } from './engine.js';
import type { Outbox, Unsent } from './outbox.js';

/** What happened, as IRC reports it. A KICK names the member who was removed as `nick`. */
export type MembershipKind = 'join' | 'part' | 'kick' | 'quit';

export interface MembershipChange {
  kind: MembershipKind;
  /** The room (not used for `quit`, which concerns every room). */
  room?: string;
  nick: string;
}

export class RoomMembership {
  /** Folded room → the room as the server spelled it. */
  private readonly joined = new Map<string, string>();
  private readonly self: string;

  constructor(
    private readonly engine: RoomCryptoEngine,
    private readonly outbox: Outbox,
  ) {
    this.self = casefold(engine.account);
  }

  /** Is `nick` us? */
  isSelf(nick: string): boolean {
    return casefold(nick) === this.self;
  }

  /** Are we in `room` (as far as the JOINs and PARTs we were told about go)? */
  has(room: string): boolean {
    return this.joined.has(casefold(room));
  }

  /** The rooms we are in. */
  rooms(): string[] {
    return [...this.joined.values()];
  }

  /** Count `room` as joined without a JOIN (a plugin loaded while already in it). */
  add(room: string): void {
    this.joined.set(casefold(room), room);
  }

  /** The connection is gone: no rooms, no suspensions (the keys went with it). */
  clear(): void {
    this.joined.clear();
    this.outbox.trust.reset();
  }

  /**
   * Apply one change. Returns the held texts given up because we left their room (tell the
   * user: they were NOT sent), and whether the change was about us.
   */
  apply(change: MembershipChange): { self: boolean; unsent: Unsent[] } {
    const { kind, nick } = change;
    const self = this.isSelf(nick);
    if (kind === 'quit') {
      // Our own QUIT ends the connection, which its owner handles. A member who quit is offline,
      // still a member, still holding the key: it may still be sent under.
      return { self, unsent: [] };
    }
    const room = change.room;
    if (room === undefined || room === '') return { self, unsent: [] };
    let unsent: Unsent[] = [];
    if (kind === 'join') {
      if (self) this.joined.set(casefold(room), room);
      this.outbox.trust.joined(room, nick);
    } else {
      if (self) {
        this.joined.delete(casefold(room));
        // We are out: wipe our keys now; keybot rekeys the others.
        this.engine.forgetRoom(room);
        unsent = this.outbox.drop(`you left ${room}; nothing was sent`, room);
      }
      this.outbox.trust.left(room, nick);
    }
    return { self, unsent };
  }
}
