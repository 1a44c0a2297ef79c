/**
 * Recovery after a restart (docs/PROTOCOL.md "Faults"): a new session re-enters every `#sc-*`
 * channel that still exists and rekeys it for whoever is in it (`recover`). When the daemon
 * itself restarted, its channels are gone: the owner (main.ts) then hands over the rooms the lost
 * session remembered (names and members, never keys), and each is re-created under the same name
 * for the remembered members who are online, or who come online within `rejoinWindowMs`. Its
 * first epoch waits up to `restoreGatherMs` for the members still missing (their companions
 * reconnect with backoff), so that what is said first reaches everyone who is coming back. Nobody
 * who was not a member is ever placed; members who do not come back in time are dropped.
 * The pins are kept in the remembered rooms (snapshot, recover).
 */
import { casefold, isValidAccountName } from '../protocol/names.js';
import { createLogger } from '../util/log.js';
import { isServiceRoom, type ServiceContext } from './context.js';
import type { Epochs } from './epochs.js';
import type { Invites, Refusal } from './invites.js';
import type { RememberedRoom, Room } from './rooms.js';

const log = createLogger('keybot');

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

export class Recovery {
  /** Rooms being re-created after a daemon restart, by casefolded name. */
  private readonly restoring = new Map<string, Restoring>();

  constructor(
    private readonly ctx: ServiceContext,
    private readonly invites: Invites,
    private readonly epochs: Epochs,
  ) {}

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
    const all = await this.ctx.opts.directory.listRooms();
    let count = 0;
    for (const info of all) {
      if (!isServiceRoom(info.name)) continue;
      const selfIn = info.members.some((m) => this.ctx.isSelf(m));
      const others = info.members.filter((m) => !this.ctx.isSelf(m));
      if (others.length === 0) {
        if (selfIn) this.ctx.opts.transport.part(info.name, 'room is empty');
        continue;
      }
      const room = this.ctx.rooms.ensure(info.name);
      for (const [account, fp] of Object.entries(pinsOf.get(room.folded) ?? {})) room.pins.set(casefold(account), fp);
      room.pendingReasons.push('keybot restarted');
      room.forced = true;
      try {
        await this.ctx.opts.directory.putInRoom(info.name, this.ctx.self);
        // Already in it (another session of ours kept it): no JOIN burst will come, so ask.
        if (selfIn) this.ctx.opts.transport.requestNames(info.name);
        const modes = info.modes.replace(/^\+/, '');
        if (!modes.includes('i') || !modes.includes('s')) this.ctx.opts.transport.setModes(info.name, '+is');
        count++;
      } catch (err) {
        log.warn(`${info.name}: cannot re-enter: ${(err as Error).message}`);
        this.ctx.rooms.delete(info.name);
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
    for (const room of this.ctx.rooms.all()) {
      if (room.ready && room.members.size > 0) {
        out.set(room.folded, { name: room.name, members: [...room.members.values()], fingerprints: Object.fromEntries(room.pins) });
      }
    }
    for (const [folded, r] of this.restoring) {
      // Not yet re-created: the next keybot must go on restoring it (RememberedRoom.restorePending).
      const entry = out.get(folded) ?? { name: r.name, members: [], fingerprints: {}, restorePending: true };
      for (const nick of r.expected.values()) if (!entry.members.some((m) => casefold(m) === casefold(nick))) entry.members.push(nick);
      entry.fingerprints = { ...Object.fromEntries(r.pins), ...entry.fingerprints };
      if (entry.members.length > 0) out.set(folded, entry);
    }
    return [...out.values()];
  }

  /** Someone came online: if they belong to a room being restored, put them back in it. */
  cameOnline(name: string): void {
    const f = casefold(name);
    for (const entry of this.restoring.values()) {
      if (entry.expected.has(f)) void this.rejoin(entry, [name]);
    }
  }

  /** Stop restoring: timers cleared. */
  stop(): void {
    for (const r of this.restoring.values()) {
      clearTimeout(r.timer);
      clearTimeout(r.gather?.timer);
    }
    this.restoring.clear();
  }

  // ---- restoring rooms lost with the daemon ---------------------------------------------------

  /** Start restoring rooms the daemon lost: their members who are online now go back in at once. */
  private async restore(lost: RememberedRoom[]): Promise<number> {
    const entries: Restoring[] = [];
    for (const r of lost) {
      const expected = new Map<string, string>();
      for (const m of r.members) if (!this.ctx.isSelf(m) && isValidAccountName(m)) expected.set(casefold(m), m);
      if (expected.size === 0 || this.restoring.has(casefold(r.name))) continue;
      const pins = new Map<string, string>();
      for (const [account, fp] of Object.entries(r.fingerprints ?? {})) pins.set(casefold(account), fp);
      const entry: Restoring = { name: r.name, expected, timer: undefined, chain: Promise.resolve(), gather: undefined, pins };
      entry.timer = setTimeout(() => this.endRestoring(entry, 'the rejoin window closed'), this.ctx.o.rejoinWindowMs);
      entry.timer.unref();
      this.restoring.set(casefold(r.name), entry);
      entries.push(entry);
    }
    if (entries.length === 0) return 0;
    this.ctx.changed();
    log.info(`restoring ${entries.length} room${entries.length === 1 ? '' : 's'} lost with the daemon; their members have ${Math.round(this.ctx.o.rejoinWindowMs / 1000)} s to come back`);
    const online = new Set((await this.ctx.opts.directory.listOnline()).map((n) => casefold(n)));
    await Promise.all(entries.map((e) => this.rejoin(e, [...e.expected.values()].filter((n) => online.has(casefold(n))))));
    return entries.length;
  }

  /**
   * Put remembered members who are online again back into their room, re-creating the room
   * (same name, +is, keybot op) if it does not exist yet; then rekey. Never rejects.
   */
  private rejoin(entry: Restoring, nicks: string[]): Promise<void> {
    const step = entry.chain.then(async () => {
      if (this.ctx.stopped || this.restoring.get(casefold(entry.name)) !== entry) return;
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
      const existing = this.ctx.rooms.get(entry.name);
      const room = existing ?? this.ctx.rooms.ensure(entry.name);
      // Remembered members come back under the fingerprints they were pinned to.
      for (const [account, fp] of entry.pins) if (!room.pins.has(account)) room.pins.set(account, fp);
      room.holds++;
      try {
        if (!existing) {
          room.pendingReasons.push('room restored after a server restart');
          room.forced = true;
          await this.ctx.opts.directory.putInRoom(entry.name, this.ctx.self);
          await room.until(() => room.ready, this.ctx.o.echoTimeoutMs, 'own JOIN and NAMES');
          this.ctx.opts.transport.setModes(entry.name, '+is');
          await room.until(() => room.modes.has('i') && room.modes.has('s'), this.ctx.o.echoTimeoutMs, 'MODE +is');
        }
        await this.invites.place(room, back, refused);
      } catch (err) {
        log.warn(`${entry.name}: restoring failed: ${(err as Error).message}`);
        if (!existing) {
          for (const nick of [...room.members.values()]) {
            await this.ctx.opts.directory.removeFromRoom(entry.name, nick, 'the room could not be restored').catch(() => undefined);
          }
          this.ctx.leaveRoom(room, 'could not restore the room');
          this.endRestoring(entry, 'it could not be re-created');
        }
        return;
      } finally {
        room.holds--;
      }
      // Gone offline again in the meantime: they may still come back within the window.
      for (const r of refused) if (r.reason === 'offline') entry.expected.set(casefold(r.name), r.name);
      if (this.ctx.rooms.get(room.name) !== room) return;
      if (room.members.size === 0) {
        // Nobody could be placed after all: the next one to come online re-creates it.
        this.endGather(entry);
        this.ctx.leaveRoom(room, 'nobody came back');
        return;
      }
      const placed = back.filter((n) => room.hasMember(n));
      log.info(`${entry.name}: ${placed.length} remembered member${placed.length === 1 ? '' : 's'} back in the room`);
      if (!existing && entry.expected.size > 0 && !entry.gather) {
        // Hold the first epoch briefly for the others, so that what is said first reaches them too.
        room.holds++;
        const timer = setTimeout(() => this.endGather(entry), this.ctx.o.restoreGatherMs);
        timer.unref();
        entry.gather = { room, timer };
      }
      if (entry.expected.size === 0) this.endRestoring(entry);
      this.epochs.requestRekey(room);
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
    if (this.ctx.stopped || this.ctx.rooms.get(g.room.name) !== g.room) return;
    if (g.room.members.size === 0 && g.room.holds === 0) this.ctx.leaveRoom(g.room, 'empty');
    else this.epochs.requestRekey(g.room);
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
    this.ctx.changed();
  }
}
