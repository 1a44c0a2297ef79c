/**
 * Removals keybot causes, and how the room reads them: a member's signed `leave` or `remove`
 * (operations.ts verifies it and takes them out of the roster; the daemon's removal follows
 * here), a member without a usable key, and a member whose registered key no longer matches their
 * pin (see the pins rule in service.ts). keybot marks the removals it asks for, so the KICK that
 * echoes one reads "X was removed (key changed)" rather than "X was removed".
 */
import { casefold } from '../protocol/names.js';
import { createLogger } from '../util/log.js';
import type { ServiceContext } from './context.js';
import { DirectoryError } from './directory.js';
import type { Room } from './rooms.js';

const log = createLogger('keybot');

export class Removals {
  constructor(private readonly ctx: ServiceContext) {}

  /** Removals keybot caused because a member's registered key changed ("room nick" marks). */
  private readonly keyChanged = new Set<string>();
  /** Removals of people who joined without a verified invite ("room nick" marks). */
  private readonly intruded = new Set<string>();

  /**
   * A verified `leave` or `remove` took `nick` out of the roster (operations.ts): have the daemon
   * remove them too (a KICK with `reason`, which names who signed it). keybot no longer keys them
   * either way; someone the daemon fails to remove is a stranger in the room from now on.
   */
  async removeSigned(room: Room, nick: string, reason: string): Promise<void> {
    try {
      await this.ctx.opts.directory.removeFromRoom(room.name, nick, reason);
    } catch (err) {
      // Gone already (a PART, a QUIT on an ordinary network, an operator's removal): nothing to do.
      if (err instanceof DirectoryError && err.code === 'not_found') return;
      log.warn(`${room.name}: cannot remove ${nick} (${reason}): ${(err as Error).message}; they get no key all the same`);
    }
  }

  /** Why `nick` left `room` by a PART (`kicked` false) or KICK (`kicked` true), as members read it. */
  departure(room: Room, nick: string, kicked: boolean): string {
    const mark = `${room.folded} ${casefold(nick)}`;
    const keyChanged = this.keyChanged.delete(mark);
    if (this.intruded.delete(mark)) return 'was removed (not invited by a member)';
    return keyChanged ? 'was removed (key changed)' : kicked ? 'was removed' : 'left';
  }

  /** `nick` quit: a key-change removal of them in `room` is over. */
  quit(room: Room, nick: string): void {
    this.keyChanged.delete(`${room.folded} ${casefold(nick)}`);
    this.intruded.delete(`${room.folded} ${casefold(nick)}`);
  }

  /**
   * The directory names another key for `nick` than the one they were pinned to in `room`:
   * remove them ("key changed"), tell the room and them, and never key them under the new key.
   */
  removeForKeyChange(room: Room, nick: string, pinned: string, now: string): void {
    const mark = `${room.folded} ${casefold(nick)}`;
    const first = !this.keyChanged.has(mark);
    this.keyChanged.add(mark);
    this.evict(room, nick, 'key changed');
    if (!first) return;
    log.warn(`${room.name}: ${nick}'s registered key changed (pinned ${pinned}, directory now ${now}); removed, not keyed`);
    this.ctx.opts.transport.notice(
      room.name,
      `${nick} removed: their registered key changed (was ${pinned}, now ${now}); they get no key. ` +
        `A member may invite ${nick} again after checking the new fingerprint with them.`,
    );
    this.ctx.opts.transport.notice(
      nick,
      `you were removed from ${room.name}: the key registered for your account changed (was ${pinned}, now ${now}). ` +
        'If you did not change it, your account\'s key was replaced by someone else; a member must invite you again.',
    );
  }

  /**
   * `nick` joined `room` without keybot placing them (no verified operation explains it: the
   * daemon operator's `channel.join`, a forged server-side join): they are removed and never
   * keyed, and the members are told. The KICK's echo brings a fresh epoch (service.ts), so the
   * members' companions, which stopped sending when a stranger joined, may send again.
   */
  intruder(room: Room, nick: string): void {
    room.intruders.add(casefold(nick));
    this.keyChanged.delete(`${room.folded} ${casefold(nick)}`);
    this.intruded.add(`${room.folded} ${casefold(nick)}`);
    log.warn(`${room.name}: ${nick} joined without a member's signed invite; removing them`);
    this.ctx.opts.transport.notice(
      room.name,
      `${nick} joined without an invite signed by a member (a join keybot did not make); removed, they get no key`,
    );
    this.evict(room, nick, 'not invited by a member of the room');
  }

  evict(room: Room, nick: string, reason: string): void {
    log.warn(`${room.name}: removing ${nick}: ${reason}`);
    this.ctx.opts.directory.removeFromRoom(room.name, nick, reason).catch((err) => log.warn(`${room.name}: cannot remove ${nick}: ${(err as Error).message}`));
  }
}
