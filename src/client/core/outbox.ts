/**
 * What a companion does with room text it cannot send right now (docs/PROTOCOL.md "Faults").
 *
 * Two transport-free pieces on top of a RoomCryptoEngine, shared by every companion:
 *
 *  - KeyTrust says whether the current key of a room may still be used to SEND. A key is good
 *    for sending while the room's membership, as this companion sees it on IRC, is the one the
 *    key was issued for. keybot's own departure (a crash, a restart) does not end an epoch: the
 *    key never left keybot's memory and the members who hold it are still the members. Nor does a
 *    member's QUIT: offline is not leaving (docs/PROTOCOL.md "Rooms that outlive a connection").
 *    But once someone listed in the epoch leaves (PART, KICK) or someone not listed joins, the key
 *    is suspended for sending until a newer epoch arrives: normally within a second, since
 *    keybot rekeys on every change; while keybot is away, only when it is back. Receiving is not
 *    affected (messages already in flight under that key still decrypt).
 *    A newer epoch lifts the suspension only if its member list names nobody seen leaving
 *    since: an envelope keybot sealed before it saw a PART can arrive after the PART, still
 *    listing the leaver; its key is then used for reading only (issue 12: the leaver race).
 *    A key is also good for sending for `sendLifetimeMs` after keybot issued it (default two
 *    hours, twice keybot's default rotation): a daemon that hides every later envelope cannot
 *    keep a companion sending under one key for ever.
 *
 *  - Outbox holds text that cannot be encrypted now but soon can (the key is suspended, or was
 *    wiped with a lost connection that is being re-established), for at most `holdMs` (30 s),
 *    in order per room, and encrypts it under the next key the room gets. What is still held
 *    after that is given up and reported. Nothing is ever sent under a suspended or retired
 *    key, and nothing is ever sent as plaintext: held text only leaves through encryptOutgoing.
 *
 * No I/O and no timers: the owner feeds it membership events and calls `release` when a key
 * arrived and `expire` about once a second.
 */
import { KEYBOT_NICK, casefold } from '../../protocol/names.js';
import type { RoomCryptoEngine } from './engine.js';

/** Whether each room's current key may be used to send (see the file comment). */
/** Default sending lifetime of a room key: twice keybot's default rotation (1 h). */
export const DEFAULT_SEND_LIFETIME_MS = 2 * 3_600_000;

export class KeyTrust {
  /** Folded room → why its key is suspended. */
  private readonly suspended = new Map<string, string>();
  /** Folded room → folded nicks seen leaving since its last sendable key (the leaver race). */
  private readonly leavers = new Map<string, Set<string>>();
  private readonly self: string;
  private readonly keybot: string;
  readonly sendLifetimeMs: number;
  private readonly clock: () => number;

  constructor(
    private readonly engine: RoomCryptoEngine,
    opts: { keybotNick?: string; sendLifetimeMs?: number; clock?: () => number } = {},
  ) {
    this.self = casefold(engine.account);
    this.keybot = casefold(opts.keybotNick ?? KEYBOT_NICK);
    this.sendLifetimeMs = opts.sendLifetimeMs ?? DEFAULT_SEND_LIFETIME_MS;
    this.clock = opts.clock ?? Date.now;
  }

  /** Why the current key of `room` must not be used to send, or undefined if it may. */
  suspension(room: string, now?: number): string | undefined {
    const why = this.suspended.get(casefold(room));
    if (why !== undefined) return why;
    const info = this.engine.roomInfo(room);
    if (info?.hasKey && info.issuedAt !== undefined && (now ?? this.clock()) - info.issuedAt > this.sendLifetimeMs) {
      return `its key (epoch ${info.epoch}) is older than ${Math.round(this.sendLifetimeMs / 60_000)} minutes and keybot sent no newer one`;
    }
    return undefined;
  }

  /**
   * A new epoch was installed for `room`. It may be sent under unless it still lists someone seen
   * leaving since the last key we could send under: then it stays suspended (read only).
   */
  keyInstalled(room: string): void {
    const f = casefold(room);
    const gone = this.leavers.get(f);
    if (gone && gone.size > 0) {
      const members = this.members(room) ?? new Set<string>();
      const still = [...gone].filter((n) => members.has(n));
      if (still.length > 0) {
        this.suspended.set(f, `the new key still lists ${still.join(', ')}, who left; it is used for reading only until keybot sends one without them`);
        return;
      }
    }
    this.leavers.delete(f);
    this.suspended.delete(f);
  }

  /** `nick` joined `room`. */
  joined(room: string, nick: string): void {
    if (this.ignored(nick)) return;
    // A leaver who is back in the room may be in the next epoch again.
    this.leavers.get(casefold(room))?.delete(casefold(nick));
    const members = this.members(room);
    if (members && !members.has(casefold(nick))) this.suspend(room, `${nick} joined`);
  }

  /** `nick` left `room` (PART or KICK). */
  left(room: string, nick: string): void {
    if (casefold(nick) === this.self) {
      this.suspended.delete(casefold(room));
      this.leavers.delete(casefold(room));
      return;
    }
    if (this.ignored(nick)) return;
    if (this.members(room)?.has(casefold(nick))) {
      this.addLeaver(room, nick);
      this.suspend(room, `${nick} left`);
    }
  }

  /** Our connection is gone (the keys went with it). */
  reset(): void {
    this.suspended.clear();
    this.leavers.clear();
  }

  private addLeaver(room: string, nick: string): void {
    const f = casefold(room);
    const set = this.leavers.get(f) ?? new Set<string>();
    set.add(casefold(nick));
    this.leavers.set(f, set);
  }

  private ignored(nick: string): boolean {
    const f = casefold(nick);
    return f === this.self || f === this.keybot;
  }

  /** Members of the current epoch (folded), or undefined if we hold no key for the room. */
  private members(room: string): Set<string> | undefined {
    const info = this.engine.roomInfo(room);
    if (!info?.hasKey) return undefined;
    return new Set(info.members.map((m) => casefold(m)));
  }

  private suspend(room: string, why: string): void {
    const f = casefold(room);
    if (!this.suspended.has(f)) this.suspended.set(f, why);
  }
}

export interface OutboxOptions {
  /** Longest a text waits for a key it may be sent under (default 30 s). */
  holdMs?: number;
  /** Texts held per room (default 32) and in total (default 256). */
  maxPerRoom?: number;
  maxTotal?: number;
  /** Clock, ms since the Unix epoch (default Date.now). */
  clock?: () => number;
  /** How long after keybot issued it a room key may be sent under (default 2 h; KeyTrust). */
  sendLifetimeMs?: number;
}

/** What `submit` decided. */
export type SubmitResult =
  /** Send these lines now, in order, as PRIVMSGs to `room`. */
  | { status: 'send'; room: string; epoch: number; lines: string[] }
  /** Kept: it goes out under the room's next key (see `release`), or is reported by `expire`. */
  | { status: 'held'; id: number; room: string; reason: string }
  /** Not sent and not kept (the engine's fail-closed answer, or the outbox is full). */
  | { status: 'refused'; code: 'no-key' | 'not-encrypted'; room: string; reason: string };

/** A held text that has now been encrypted: send its lines. */
export interface Released {
  id: number;
  room: string;
  epoch: number;
  lines: string[];
  heldMs: number;
}

/** A held text that was given up: tell the user it was NOT sent. */
export interface Unsent {
  id: number;
  room: string;
  reason: string;
  heldMs: number;
}

interface Held {
  id: number;
  room: string;
  text: string;
  at: number;
  /**
   * Who was to read it: the members of the room's key when it was typed (folded), or undefined
   * when there was none. Text is never released to an epoch that adds anyone to these.
   */
  readers?: Set<string>;
}

export class Outbox {
  readonly trust: KeyTrust;
  /** Longest a text is held. */
  readonly holdMs: number;
  private readonly maxPerRoom: number;
  private readonly maxTotal: number;
  private readonly clock: () => number;
  /** Folded room → texts in the order they were submitted. */
  private readonly rooms = new Map<string, Held[]>();
  private total = 0;
  private nextId = 1;
  /** Texts `release` gave up (the new key adds readers they were not typed for); see takeUnsent. */
  private refused: Unsent[] = [];

  constructor(
    private readonly engine: RoomCryptoEngine,
    opts: OutboxOptions & { trust?: KeyTrust } = {},
  ) {
    this.trust = opts.trust ?? new KeyTrust(engine, { ...(opts.sendLifetimeMs !== undefined ? { sendLifetimeMs: opts.sendLifetimeMs } : {}), ...(opts.clock ? { clock: opts.clock } : {}) });
    this.holdMs = opts.holdMs ?? 30_000;
    this.maxPerRoom = opts.maxPerRoom ?? 32;
    this.maxTotal = opts.maxTotal ?? 256;
    this.clock = opts.clock ?? Date.now;
  }

  /** How many texts are held (for one room, or in all). */
  size(room?: string): number {
    return room === undefined ? this.total : (this.rooms.get(casefold(room))?.length ?? 0);
  }

  /**
   * Encrypt `text` for `room` now if its key may be used, else hold it when `mayHold` (the caller
   * expects a key for this room soon: it is in the room, or reconnecting to it), else refuse.
   * Text behind held text of the same room is held too, so a room's texts leave in order.
   * `why` says, for the user, why there is no key (default "no key for ROOM yet").
   */
  submit(opts: { room: string; text: string; mayHold: boolean; why?: string; now?: number }): SubmitResult {
    const { room, text } = opts;
    const now = opts.now ?? this.clock();
    const queued = this.rooms.get(casefold(room));
    const suspended = this.trust.suspension(room, now);
    if (!queued?.length && suspended === undefined) {
      const r = this.engine.encryptOutgoing({ room, text, now });
      if (r.status === 'ok') return { status: 'send', room, epoch: r.epoch, lines: r.lines };
      if (r.status === 'not-encrypted' || !opts.mayHold) return { status: 'refused', code: r.status, room, reason: r.reason };
      return this.hold(room, text, now, opts.why ?? `no key for ${room} yet`);
    }
    // A key we may not send under, or texts already waiting.
    if (!this.engine.isEncryptedRoom(room)) {
      return { status: 'refused', code: 'not-encrypted', room, reason: `${room} is not an encrypted room` };
    }
    const why = suspended !== undefined ? `the key of ${room} is being replaced (${suspended})` : `earlier messages to ${room} are waiting`;
    if (!opts.mayHold) return { status: 'refused', code: 'no-key', room, reason: `${why}; nothing was sent` };
    return this.hold(room, text, now, why);
  }

  /**
   * Encrypt what is held for rooms whose key may be used now (call after a new key arrived).
   * Rooms in order of first hold; texts in submission order. Texts whose room still has no
   * usable key stay held.
   */
  release(now?: number): Released[] {
    const t = now ?? this.clock();
    const out: Released[] = [];
    for (const [folded, queue] of this.rooms) {
      const room = queue[0]!.room;
      const info = this.engine.roomInfo(room);
      if (this.trust.suspension(room, t) !== undefined || !info?.hasKey) continue;
      const members = new Set(info.members.map((m) => casefold(m)));
      while (queue.length > 0) {
        const h = queue[0]!;
        const added = h.readers ? [...members].filter((m) => !h.readers!.has(m)) : [];
        if (added.length > 0) {
          // Typed for the room before these joined: never shown to people who were not there.
          queue.shift();
          this.total--;
          this.refused.push({ id: h.id, room: h.room, heldMs: t - h.at, reason: `the new key of ${h.room} adds ${added.join(', ')}, who joined after it was typed; nothing was sent` });
          continue;
        }
        const r = this.engine.encryptOutgoing({ room: h.room, text: h.text, now: t });
        if (r.status !== 'ok') break;
        queue.shift();
        this.total--;
        out.push({ id: h.id, room: h.room, epoch: r.epoch, lines: r.lines, heldMs: t - h.at });
      }
      if (queue.length === 0) this.rooms.delete(folded);
    }
    return out;
  }

  /** The texts `release` gave up since the last call (tell the user they were NOT sent). */
  takeUnsent(): Unsent[] {
    const out = this.refused;
    this.refused = [];
    return out;
  }

  /** Give up on texts held longer than `holdMs`. */
  expire(now?: number): Unsent[] {
    const t = now ?? this.clock();
    const out: Unsent[] = [];
    for (const [folded, queue] of this.rooms) {
      // Order per room: once the first is given up, everything behind it goes too.
      if (t - queue[0]!.at < this.holdMs) continue;
      const secs = Math.round(this.holdMs / 1000);
      for (const h of queue) out.push({ id: h.id, room: h.room, heldMs: t - h.at, reason: `no key for ${h.room} arrived within ${secs} s; nothing was sent` });
      this.total -= queue.length;
      this.rooms.delete(folded);
    }
    return out;
  }

  /** Give up on everything held for `room` (we left it), or for every room. */
  drop(reason: string, room?: string, now?: number): Unsent[] {
    const t = now ?? this.clock();
    const out: Unsent[] = [];
    for (const [folded, queue] of [...this.rooms]) {
      if (room !== undefined && folded !== casefold(room)) continue;
      for (const h of queue) out.push({ id: h.id, room: h.room, heldMs: t - h.at, reason });
      this.total -= queue.length;
      this.rooms.delete(folded);
    }
    return out;
  }

  private hold(room: string, text: string, now: number, why: string): SubmitResult {
    const folded = casefold(room);
    const queue = this.rooms.get(folded) ?? [];
    if (queue.length >= this.maxPerRoom || this.total >= this.maxTotal) {
      return { status: 'refused', code: 'no-key', room, reason: `${why}, and too many messages are already waiting; nothing was sent` };
    }
    const id = this.nextId++;
    const info = this.engine.roomInfo(room);
    const readers = info?.hasKey ? new Set(info.members.map((m) => casefold(m))) : undefined;
    queue.push({ id, room, text, at: now, ...(readers ? { readers } : {}) });
    this.rooms.set(folded, queue);
    this.total++;
    return { status: 'held', id, room, reason: `${why}: held until the new key arrives (at most ${Math.round(this.holdMs / 1000)} s)` };
  }
}
