/**
 * Rooms that outlive a connection (docs/PROTOCOL.md): who belongs to each room by account, the
 * room's history, and each account's mailbox. Held in memory, so that login placement, relay
 * and CHATHISTORY never wait for the store, and written behind to the store (store/rooms.ts) in
 * batches: a relayed line costs an array push here, its write happens at most FLUSH_MS later
 * together with everything else that changed meanwhile.
 *
 * Retention (config `history`): per room the newest `maxMessages` lines, per account the newest
 * `mailboxMax` mailbox lines, and nothing older than `maxAgeDays` — checked on every read, so a
 * line past its age is never served even before the sweep drops it.
 */
import { casefold } from '../../protocol/names.js';
import type { Logger } from '../../util/log.js';
import type { HistoryConfig } from '../config/schema.js';
import {
  HISTORY_CHUNK, type RoomMemberRecord, type RoomRecord, type RoomStore, type StoredLine,
} from '../store/index.js';

const DAY_MS = 86_400_000;
/** Longest a change waits in memory before it is written. */
const FLUSH_MS = 50;

/** A line to store, before it gets its sequence number. */
export type NewLine = Omit<StoredLine, 's'>;

export class RoomRegistry {
  /**
   * The time source of membership intervals and retention (ms since the epoch). Relayed lines
   * carry their own time; tests move this clock to age them without waiting.
   */
  now: () => number = () => Date.now();
  private readonly rooms = new Map<string, RoomRecord>();
  private readonly history = new Map<string, StoredLine[]>();
  private readonly nextSeq = new Map<string, number>();
  private readonly mail = new Map<string, StoredLine[]>();
  private mailSeq = 0;
  private readonly dirtyRooms = new Set<string>();
  private readonly dirtyChunks = new Map<string, Set<number>>();
  private readonly dirtyMail = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    readonly limits: HistoryConfig,
    private readonly store: RoomStore | null,
    private readonly log: Logger,
  ) {}

  /** A registry over a store, with what it holds loaded (and past-retention lines dropped). */
  static async open(store: RoomStore, limits: HistoryConfig, log: Logger): Promise<RoomRegistry> {
    const reg = new RoomRegistry(limits, store, log);
    const loaded = await store.load();
    for (const room of loaded.rooms) reg.rooms.set(casefold(room.name), room);
    for (const [folded, lines] of loaded.history) {
      if (!reg.rooms.has(folded) || lines.length === 0) continue;
      reg.history.set(folded, lines);
      reg.nextSeq.set(folded, lines[lines.length - 1]!.s + 1);
    }
    for (const [account, lines] of loaded.mailboxes) {
      reg.mail.set(account, lines);
      for (const l of lines) if (l.s >= reg.mailSeq) reg.mailSeq = l.s + 1;
    }
    reg.sweep();
    return reg;
  }

  // ---- rooms and membership -----------------------------------------------------------------

  isRoom(folded: string): boolean {
    return this.rooms.has(folded);
  }

  get(folded: string): RoomRecord | undefined {
    return this.rooms.get(folded);
  }

  all(): RoomRecord[] {
    return [...this.rooms.values()];
  }

  /** The room's record, made if it is new (a channel becomes a room at its first `room.add`). */
  ensure(name: string): RoomRecord {
    const folded = casefold(name);
    let room = this.rooms.get(folded);
    if (!room) {
      room = { name, members: {} };
      this.rooms.set(folded, room);
      this.touchRoom(folded);
    }
    return room;
  }

  member(roomFolded: string, accountFolded: string): RoomMemberRecord | undefined {
    return this.rooms.get(roomFolded)?.members[accountFolded];
  }

  /** Rooms in which the account is a member or pending: where its login places it. */
  roomsOf(accountFolded: string): RoomRecord[] {
    const out: RoomRecord[] = [];
    for (const room of this.rooms.values()) {
      const m = room.members[accountFolded];
      if (m && m.state !== 'left') out.push(room);
    }
    return out;
  }

  /** Display name of an account that has a place in some room, or undefined. */
  knownAccount(accountFolded: string): string | undefined {
    for (const room of this.rooms.values()) {
      const m = room.members[accountFolded];
      if (m && m.state !== 'left') return m.account;
    }
    return undefined;
  }

  /** An offline account is added: pending, unless it is a member already. */
  addPending(roomFolded: string, account: string): void {
    const room = this.rooms.get(roomFolded);
    if (!room) return;
    const folded = casefold(account);
    const m = room.members[folded];
    if (m?.state === 'member' || m?.state === 'pending') return;
    room.members[folded] = { account, state: 'pending', intervals: m?.intervals ?? [] };
    this.touchRoom(roomFolded);
  }

  /** The account is in the room now: a member from now on (a new interval unless one is open). */
  startMembership(roomFolded: string, account: string): void {
    const room = this.rooms.get(roomFolded);
    if (!room) return;
    const folded = casefold(account);
    const m = room.members[folded];
    if (m?.state === 'member') return;
    const intervals = m?.intervals ?? [];
    // From the next millisecond: a line relayed in the same millisecond as the join, maybe just
    // before it, is never served to this member (fail closed; it saw any such line live anyway).
    intervals.push([this.now() + 1, null]);
    room.members[folded] = { account, state: 'member', intervals };
    this.touchRoom(roomFolded);
  }

  /**
   * The account's place in the room ends (PART, KICK, removal): a member's interval closes and
   * its history stays readable; a pending place without history is forgotten. False if it had none.
   */
  endMembership(roomFolded: string, accountFolded: string): boolean {
    const room = this.rooms.get(roomFolded);
    const m = room?.members[accountFolded];
    if (!room || !m || m.state === 'left') return false;
    const now = this.now();
    for (const iv of m.intervals) if (iv[1] === null) iv[1] = now;
    if (m.intervals.length === 0) delete room.members[accountFolded];
    else m.state = 'left';
    this.touchRoom(roomFolded);
    return true;
  }

  /** An account was deleted: forget it everywhere, its intervals and mailbox too. */
  forgetAccount(accountFolded: string): void {
    for (const [folded, room] of this.rooms) {
      if (!room.members[accountFolded]) continue;
      delete room.members[accountFolded];
      this.touchRoom(folded);
    }
    if (this.mail.delete(accountFolded)) this.touchMail(accountFolded);
  }

  // ---- history ------------------------------------------------------------------------------

  /**
   * Keep a line relayed to a room (the caller checked `isRoom`). The line is kept as given, with
   * its sequence number `s` set here: one object per relayed line, not a copy of it.
   */
  record(roomFolded: string, line: StoredLine): void {
    const s = this.nextSeq.get(roomFolded) ?? 0;
    this.nextSeq.set(roomFolded, s + 1);
    let list = this.history.get(roomFolded);
    if (!list) this.history.set(roomFolded, (list = []));
    line.s = s;
    list.push(line);
    this.touchChunk(roomFolded, Math.floor(s / HISTORY_CHUNK));
    // Trim in steps of a chunk, not per line: reads apply the exact bound (live()).
    if (list.length >= this.limits.maxMessages + HISTORY_CHUNK) this.prune(roomFolded);
  }

  /**
   * The room's lines that `accountFolded` may read, oldest first: within retention and inside
   * one of its own membership intervals. Null when it may read none of the room (never a
   * member, or only pending): CHATHISTORY answers INVALID_TARGET.
   */
  readable(roomFolded: string, accountFolded: string): StoredLine[] | null {
    const m = this.member(roomFolded, accountFolded);
    if (!m || m.intervals.length === 0) return null;
    const ivs = m.intervals;
    return this.live(roomFolded).filter((l) => ivs.some(([from, to]) => l.t >= from && (to === null || l.t < to)));
  }

  /** Rooms whose history `accountFolded` may read, with their readable lines. */
  readableRooms(accountFolded: string): Array<{ room: RoomRecord; lines: StoredLine[] }> {
    const out: Array<{ room: RoomRecord; lines: StoredLine[] }> = [];
    for (const [folded, room] of this.rooms) {
      const lines = this.readable(folded, accountFolded);
      if (lines) out.push({ room, lines });
    }
    return out;
  }

  /** Lines within retention (count and age), oldest first. */
  private live(roomFolded: string): StoredLine[] {
    const list = this.history.get(roomFolded);
    if (!list) return [];
    return list.slice(this.firstLive(list, this.limits.maxMessages));
  }

  private firstLive(list: StoredLine[], max: number): number {
    const cutoff = this.now() - this.limits.maxAgeDays * DAY_MS;
    let i = Math.max(0, list.length - max);
    while (i < list.length && list[i]!.t < cutoff) i++;
    return i;
  }

  /** Drop a room's lines past retention from memory and (behind) from the store. */
  private prune(roomFolded: string): void {
    const list = this.history.get(roomFolded);
    if (!list) return;
    const drop = this.firstLive(list, this.limits.maxMessages);
    if (drop === 0) return;
    const first = list[0]!.s;
    list.splice(0, drop);
    const newFirst = list[0]?.s ?? first + drop;
    // Every chunk that held a dropped line is rewritten (or deleted when it is empty now).
    for (let n = Math.floor(first / HISTORY_CHUNK); n <= Math.floor(newFirst / HISTORY_CHUNK); n++) this.touchChunk(roomFolded, n);
  }

  // ---- mailbox ------------------------------------------------------------------------------

  /** Keep a line for an offline account, oldest dropped beyond `mailboxMax`. */
  storeMail(accountFolded: string, line: NewLine): void {
    let list = this.mail.get(accountFolded);
    if (!list) this.mail.set(accountFolded, (list = []));
    list.push({ s: this.mailSeq++, ...line });
    if (list.length > this.limits.mailboxMax) list.splice(0, list.length - this.limits.mailboxMax);
    this.touchMail(accountFolded);
  }

  /** The account's mailbox within retention, oldest first; it is emptied. */
  takeMail(accountFolded: string): StoredLine[] {
    const list = this.mail.get(accountFolded);
    if (!list) return [];
    this.mail.delete(accountFolded);
    this.touchMail(accountFolded);
    return list.slice(this.firstLive(list, this.limits.mailboxMax));
  }

  /** Casefolded accounts that have a mailbox. */
  mailAccounts(): string[] {
    return [...this.mail.keys()];
  }

  /** Lines waiting in an account's mailbox (for tests and operators). */
  mailCount(accountFolded: string): number {
    return this.mail.get(accountFolded)?.length ?? 0;
  }

  /** Drop everything past its age (the server calls this now and then). */
  sweep(): void {
    for (const folded of this.history.keys()) this.prune(folded);
    for (const [account, list] of this.mail) {
      const drop = this.firstLive(list, this.limits.mailboxMax);
      if (drop === 0) continue;
      list.splice(0, drop);
      if (list.length === 0) this.mail.delete(account);
      this.touchMail(account);
    }
  }

  // ---- writing behind -----------------------------------------------------------------------

  private touchRoom(folded: string): void {
    this.dirtyRooms.add(folded);
    this.schedule();
  }

  private touchChunk(folded: string, n: number): void {
    let set = this.dirtyChunks.get(folded);
    if (!set) this.dirtyChunks.set(folded, (set = new Set()));
    set.add(n);
    this.schedule();
  }

  private touchMail(account: string): void {
    this.dirtyMail.add(account);
    this.schedule();
  }

  private schedule(): void {
    if (this.timer || !this.store) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.flush();
    }, FLUSH_MS);
    this.timer.unref();
  }

  /** Write everything changed so far; resolves when it is in the store. */
  flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    this.flushing = this.flushing.then(() => this.writeDirty());
    return this.flushing;
  }

  private async writeDirty(): Promise<void> {
    const store = this.store;
    if (!store) return;
    const rooms = [...this.dirtyRooms];
    const chunks = [...this.dirtyChunks];
    const mail = [...this.dirtyMail];
    this.dirtyRooms.clear();
    this.dirtyChunks.clear();
    this.dirtyMail.clear();
    const writes: Array<Promise<void>> = [];
    for (const folded of rooms) {
      const room = this.rooms.get(folded);
      writes.push(room ? store.putRoom(folded, room) : store.deleteRoom(folded));
    }
    // Every chunk in one call: one transaction (one fsync) on sqlite instead of one per chunk.
    const puts: Array<{ folded: string; n: number; lines: StoredLine[] }> = [];
    for (const [folded, ns] of chunks) {
      const list = this.history.get(folded) ?? [];
      const first = list[0]?.s ?? 0;
      for (const n of ns) {
        const lines = list.slice(Math.max(0, n * HISTORY_CHUNK - first), Math.max(0, (n + 1) * HISTORY_CHUNK - first));
        if (lines.length) puts.push({ folded, n, lines });
        else writes.push(store.deleteChunk(folded, n));
      }
    }
    if (puts.length) writes.push(store.putChunks(puts));
    for (const account of mail) {
      const lines = this.mail.get(account);
      writes.push(lines?.length ? store.putMailbox(account, lines) : store.deleteMailbox(account));
    }
    const results = await Promise.allSettled(writes);
    const failed = results.filter((r) => r.status === 'rejected');
    if (failed.length) {
      // Put the work back so that the next flush tries again; never log message content.
      for (const f of rooms) this.dirtyRooms.add(f);
      for (const [f, ns] of chunks) for (const n of ns) this.touchChunk(f, n);
      for (const a of mail) this.dirtyMail.add(a);
      this.log.error(`room store: ${failed.length} of ${writes.length} writes failed: ${((failed[0] as PromiseRejectedResult).reason as Error)?.message}`);
    }
  }

  /** Stop the timer and write what is left. */
  async close(): Promise<void> {
    await this.flush();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
