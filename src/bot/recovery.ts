/**
 * Recovery after a restart of keybot or of the daemon (docs/PROTOCOL.md "Rooms that outlive a
 * connection", "Faults"). The daemon keeps its rooms and their members by account across its
 * own restarts and places keybot in each at login, so a new session learns rooms and rosters
 * from the daemon (`channel.list`, with `accounts`: joined, offline, pending) and takes from
 * keybot's room memory only what the daemon cannot vouch for: the member pins and the signed
 * operations of pending invites. Nothing is re-created, and no rejoin window is needed: members
 * come back when they log in, placed by the daemon.
 *
 * The daemon is not trusted to add readers. With a memory of the room, its roster is the
 * daemon's as far as keybot keyed it there: an account the daemon lists that keybot never keyed
 * in the room (nor holds a pending invite for) got in while keybot was away, and is removed as
 * an intruder; a pending account keybot holds no signed operation for is dropped. Pins come
 * back, so a member whose registered key was swapped meanwhile is removed ("key changed"), not
 * keyed. Without a memory of the room (no file) keybot keys whoever the daemon lists, as before,
 * and pins them at their first key.
 */
import { casefold, isValidAccountName } from '../protocol/names.js';
import { createLogger } from '../util/log.js';
import { isServiceRoom, type ServiceContext } from './context.js';
import type { Invites } from './invites.js';
import type { Removals } from './removals.js';
import type { RememberedRoom, Room } from './rooms.js';

const log = createLogger('keybot');

export class Recovery {
  /** The rooms on the network are known (recover ran): a room keybot is put into later is a new one. */
  done = false;

  constructor(
    private readonly ctx: ServiceContext,
    private readonly invites: Invites,
    private readonly removals: Removals,
    /** A room's roster became known: judge who is present and rekey it (service.ts). */
    private readonly rosterKnown: (room: Room) => void,
  ) {}

  /**
   * Take over every `#sc-*` room the daemon lists: its roster (with `known`, what keybot
   * remembers of its rooms: pins and pending invites, the checks above), keybot in it with op,
   * and a new epoch for its members. Returns how many rooms were recovered.
   */
  async recover(known: RememberedRoom[] = []): Promise<number> {
    const memory = new Map(known.map((r) => [casefold(r.name), r]));
    const all = await this.ctx.opts.directory.listRooms();
    let count = 0;
    for (const info of all) {
      if (!isServiceRoom(info.name) || this.ctx.stopped) continue;
      const selfIn = info.members.some((m) => this.ctx.isSelf(m));
      const accounts = info.accounts?.filter((a) => !this.ctx.isSelf(a.account) && isValidAccountName(a.account));
      // A daemon that keeps no accounts for the channel: the members present are the roster.
      const roster = accounts ? accounts.filter((a) => a.state !== 'pending').map((a) => a.account) : info.members.filter((m) => !this.ctx.isSelf(m));
      const waiting = accounts ? accounts.filter((a) => a.state === 'pending').map((a) => a.account) : [];
      const mem = memory.get(casefold(info.name));
      memory.delete(casefold(info.name));
      if (roster.length === 0) {
        for (const w of waiting) this.drop(info.name, w, 'the room has no members left');
        if (selfIn || this.ctx.rooms.get(info.name)) this.ctx.opts.transport.part(info.name, 'room is empty');
        this.ctx.rooms.delete(info.name);
        continue;
      }
      const room = this.ctx.rooms.ensure(info.name);
      for (const [account, fp] of Object.entries(mem?.fingerprints ?? {})) room.pins.set(casefold(account), fp);
      const listed = new Set([...roster, ...waiting].map((a) => casefold(a)));
      // Only invites with the signed operation that made them (checked again when carried out).
      for (const p of mem?.pending ?? []) if (p.op && listed.has(casefold(p.account))) room.pending.set(casefold(p.account), { ...p });
      const remembered = mem ? new Set(mem.members.map((m) => casefold(m))) : undefined;
      const strangers: string[] = [];
      const admit: string[] = [];
      for (const a of roster) {
        const f = casefold(a);
        if (room.pending.has(f)) admit.push(a); // logged in while keybot was away
        else if (!remembered || remembered.has(f)) room.members.set(f, a);
        else strangers.push(a);
      }
      for (const w of waiting) if (!room.pending.has(casefold(w))) this.drop(info.name, w, 'keybot holds no signed invite for them');
      room.version++;
      room.pendingReasons.push('keybot restarted');
      room.forced = true;
      try {
        if (!selfIn) await this.ctx.opts.directory.putInRoom(info.name, this.ctx.self);
        // Already in it (placed at login, or another session of ours kept it): ask for NAMES.
        else this.ctx.opts.transport.requestNames(info.name);
        const modes = info.modes.replace(/^\+/, '');
        if (!modes.includes('i') || !modes.includes('s')) this.ctx.opts.transport.setModes(info.name, '+is');
        count++;
      } catch (err) {
        log.warn(`${info.name}: cannot re-enter: ${(err as Error).message}`);
        this.ctx.rooms.delete(info.name);
        continue;
      }
      for (const s of strangers) this.removals.intruder(room, s);
      for (const a of admit) void this.invites.admit(room, a);
      room.rosterKnown = true;
      this.rosterKnown(room);
    }
    this.done = true;
    if (count) log.info(`recovered ${count} room${count === 1 ? '' : 's'}`);
    const gone = [...memory.values()].filter((r) => isServiceRoom(r.name));
    if (gone.length > 0) log.info(`${gone.length} remembered room${gone.length === 1 ? '' : 's'} no longer on the network (emptied or removed meanwhile); not re-created`);
    return count;
  }

  /**
   * The rooms this session operates: roster, pins and pending invites (names, public
   * fingerprints and signed operations; never keys), for the next session and the room memory.
   */
  snapshot(): RememberedRoom[] {
    const out: RememberedRoom[] = [];
    for (const room of this.ctx.rooms.all()) {
      if (!room.rosterKnown || (room.members.size === 0 && room.pending.size === 0)) continue;
      out.push({
        name: room.name,
        members: [...room.members.values()],
        fingerprints: Object.fromEntries(room.pins),
        pending: [...room.pending.values()].map((p) => ({ ...p })),
      });
    }
    return out;
  }

  private drop(room: string, account: string, why: string): void {
    log.warn(`${room}: ${account} is pending there, but ${why}; dropping them`);
    this.ctx.opts.directory.removeFromRoom(room, account, `invite dropped: ${why}`).catch((err: unknown) => log.warn(`${room}: cannot drop ${account}: ${(err as Error).message}`));
  }
}
