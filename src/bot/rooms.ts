/**
 * The rooms keybot operates: who is in each (as keybot saw it on IRC), the current epoch and its
 * key, and the bookkeeping that decides when the next epoch is due.
 *
 * Room keys live here and nowhere else: in memory only, never logged, never written to disk.
 * A key is overwritten with zeros when its epoch is replaced or the room is dropped (a courtesy:
 * the JS heap may still hold copies, but no long-lived reference does).
 */
import type { EnvelopeMember } from '../crypto/index.js';
import { casefold } from '../protocol/names.js';

/**
 * An invite of someone who was offline (docs/PROTOCOL.md "Rooms that outlive a connection"):
 * the daemon holds them as a pending member and joins them at their next login; keybot keys them
 * only then, under the signed operation that added them, which it relays to the room first.
 * A signed public statement, no secret: kept in the room memory on disk.
 */
export interface PendingInvite {
  account: string;
  /** The fingerprint the signed operation names for them (they are keyed under no other). */
  fingerprint: string;
  /** The member who signed the invite; the invite lapses if they leave first. */
  by: string;
  /** The signed operation (`SC1O` data: JSON, NUL, signature); undefined only for keybot's own tests. */
  op?: Uint8Array;
  /** When keybot accepted it, ms since the Unix epoch. */
  at: number;
}

/**
 * What keybot keeps of a room across a lost session or a restart of its process: its name,
 * members, their pins and pending invites, in memory and in `<dataDir>/keybot.rooms.json`
 * (room-memory.ts). Never a key (a recovered room gets a new epoch).
 */
export interface RememberedRoom {
  name: string;
  /** The roster (members online or offline) other than keybot, as the server spelled them. */
  members: string[];
  /** Invites of people who were offline, not carried out yet. */
  pending?: PendingInvite[];
  /**
   * The fingerprint each account was pinned to in the room (casefolded account → fingerprint):
   * a member whose registered key no longer matches is removed, not keyed (see Room.pins).
   * Fingerprints are public; no key material.
   */
  fingerprints?: Record<string, string>;
}

/** One epoch of a room: the key and exactly the members it was sent to. */
export interface Epoch {
  epoch: number;
  /** 32-byte AES-256-GCM room key. Never log it. */
  key: Uint8Array;
  /** The member list bound into this epoch's envelopes (keybot excluded). */
  members: EnvelopeMember[];
  /** When this epoch was installed, ms since the Unix epoch. */
  startedAt: number;
  /** A large roster's signed pages (the same for every member; join envelopes name their hash and count). */
  pages?: RosterPages;
}

/** An epoch's roster as keybot-signed roster pages (docs/PROTOCOL.md "Envelope version 3"). */
export interface RosterPages {
  hash: Uint8Array;
  /** Each page's signed data, in index order. */
  data: Uint8Array[];
}

export class Room {
  readonly folded: string;
  /**
   * The roster, keybot excluded: casefolded account → as the server spells it. Members online or
   * offline (docs/PROTOCOL.md "Rooms that outlive a connection"): every epoch is sealed for all.
   */
  readonly members = new Map<string, string>();
  /** Who is in the channel now (casefolded nicks, keybot excluded): online members, intruders on their way out. */
  readonly present = new Set<string>();
  /** Invites of people who were offline, by casefolded account (see PendingInvite). */
  readonly pending = new Map<string, PendingInvite>();
  /** Pending invitees whose invite is being carried out now (Invites.admit). */
  readonly admitting = new Set<string>();
  /**
   * keybot knows the roster: it opened the room, or the directory told it (recovery). Until
   * then the NAMES list alone does not make anyone a member (offline members are not in it).
   */
  rosterKnown = false;
  /** keybot has seen the room's NAMES list since its own JOIN. */
  namesSeen = false;
  /**
   * The fingerprint each account had when it was placed in the room (or first keyed in it),
   * casefolded account → fingerprint, kept for the room's lifetime (also after the account left).
   * keybot never keys an account whose registered key no longer matches: it removes them with
   * "key changed" instead. Only an invite by a member (a visible act) pins a new fingerprint.
   */
  readonly pins = new Map<string, string>();
  /**
   * JOINs keybot expects because it asked for them (a placement after a verified invite):
   * casefolded nick → until when (ms). A JOIN that is not expected is an intruder's
   * (the daemon operator's `channel.join`, say): it is removed and never keyed.
   */
  readonly expectedJoins = new Map<string, { until: number; reason?: string }>();
  /** Intruders keybot removed whose KICK has not been seen yet (casefolded nicks). */
  readonly intruders = new Set<string>();
  /** Channel modes keybot has seen set (flag letters only). */
  readonly modes = new Set<string>();
  /** Bumped on every membership change; an epoch is only installed if it did not move meanwhile. */
  version = 0;
  /** `version` when the current epoch was installed; differs → membership changed since. */
  keyedVersion = -1;
  /** keybot has its NAMES list and knows the roster, so `members` is complete. */
  ready = false;
  current: Epoch | undefined;
  /**
   * Envelope version 3 (docs/PROTOCOL.md "Envelope version 3"): each member's member key for this
   * room (casefolded account → 32 bytes), made at their first join envelope, shared with them
   * alone; later epochs' keys reach them wrapped under it (a key line). Memory only, never on
   * disk; wiped when they leave, so a former member's key opens no later key line.
   */
  readonly memberKeys = new Map<string, Uint8Array>();
  /**
   * Casefolded accounts whose companion holds the current epoch on a live connection: sent it
   * (join envelope or key line) while present. Only they can follow an epoch notice; anyone else
   * (offline, reconnected, added) gets a join envelope.
   */
  readonly holders = new Set<string>();
  /** Signed operations (`SC1O` data) carried out since the current epoch, in order: the next epoch notice carries them. */
  opsSince: Uint8Array[] = [];
  /** The operations the current epoch carried (a join envelope re-sent for it names them). */
  epochOps: Uint8Array[] = [];
  /** The operations that added each member (casefolded account), for their join envelope. */
  readonly joinOps = new Map<string, Uint8Array[]>();
  /** Room messages (PRIVMSG/NOTICE lines) since the current epoch began. */
  messagesSinceRekey = 0;
  /** Why the next epoch is due, collected until it is issued (shown to members, e.g. "bob left"). */
  readonly pendingReasons: string[] = [];
  /** Forced rotation requested (messages, time, restart): rekey even if membership is unchanged. */
  forced = false;
  /** A rekey is running (sealing envelopes); another request waits for it. */
  rekeying = false;
  /** Placements in progress (invite): changes are collected, the rekey waits until they end. */
  holds = 0;
  /** The pending changes are complete (an invite's placements): the next rekey skips settleMs. */
  settled = false;
  /** First change not yet keyed, for the coalescing deadline. */
  firstPendingAt: number | undefined;
  settleTimer: NodeJS.Timeout | undefined;
  rotateTimer: NodeJS.Timeout | undefined;
  private readonly waiters = new Set<() => void>();

  constructor(readonly name: string) {
    this.folded = casefold(name);
  }

  hasMember(nick: string): boolean {
    return this.members.has(casefold(nick));
  }

  /**
   * keybot is about to place `nick`: their JOIN, within `ms`, is one keybot asked for. `reason`:
   * how members read it in the key event ("carol added by alice"; default "carol joined").
   */
  expectJoin(nick: string, ms: number, reason?: string, now = Date.now()): void {
    this.expectedJoins.set(casefold(nick), { until: now + ms, ...(reason !== undefined ? { reason } : {}) });
  }

  /** Was this JOIN asked for by keybot? Consumes the expectation; its reason, or false. */
  takeExpectedJoin(nick: string, now = Date.now()): { reason?: string } | false {
    const f = casefold(nick);
    const e = this.expectedJoins.get(f);
    this.expectedJoins.delete(f);
    for (const [k, t] of this.expectedJoins) if (t.until < now) this.expectedJoins.delete(k);
    return e !== undefined && e.until >= now ? e : false;
  }

  /** Record a member; false if already there. */
  addMember(nick: string): boolean {
    const f = casefold(nick);
    this.pending.delete(f);
    if (this.members.has(f)) return false;
    this.members.set(f, nick);
    this.version++;
    this.wake();
    return true;
  }

  /** A signed operation was carried out: the next epoch notice names it, and its targets' join envelopes. */
  recordOp(op: Uint8Array, targets: string[]): void {
    this.opsSince.push(op);
    for (const t of targets) this.joinOps.set(casefold(t), [op]);
  }

  /** What keybot holds for a member who is gone (casefolded account): their member key wiped, so they open no later key line. */
  private forgetKeys(f: string): void {
    this.holders.delete(f);
    this.memberKeys.get(f)?.fill(0);
    this.memberKeys.delete(f);
    this.joinOps.delete(f);
  }

  /** Forget a member; false if not there. Their member key is wiped: they open no later key line. */
  removeMember(nick: string): boolean {
    const f = casefold(nick);
    this.present.delete(f);
    this.forgetKeys(f);
    if (!this.members.delete(f)) return false;
    this.version++;
    this.wake();
    return true;
  }

  /** NAMES and roster are known: the room is ready (wakes whoever waits for it). */
  markReady(): void {
    this.ready = true;
    this.wake();
  }

  /** Who is in the channel now (a NAMES reply), keybot excluded. */
  setPresent(nicks: Iterable<string>): void {
    this.present.clear();
    for (const n of nicks) this.present.add(casefold(n));
  }

  /** Replace the member list (a NAMES reply where rooms end with a connection); true if it changed anything. */
  setMembers(nicks: Iterable<string>): boolean {
    const next = new Map<string, string>();
    for (const n of nicks) next.set(casefold(n), n);
    const same = next.size === this.members.size && [...next.keys()].every((k) => this.members.has(k));
    for (const f of this.members.keys()) if (!next.has(f)) this.forgetKeys(f);
    this.members.clear();
    for (const [k, v] of next) this.members.set(k, v);
    if (!same) this.version++;
    this.wake();
    return !same;
  }

  applyModes(changes: Array<{ mode: string }>): void {
    for (const { mode } of changes) {
      const sign = mode[0];
      for (const letter of mode.slice(1)) {
        if (sign === '+') this.modes.add(letter);
        else if (sign === '-') this.modes.delete(letter);
      }
    }
    this.wake();
  }

  /** Install a new epoch, wiping the key it replaces. */
  install(epoch: Epoch, version: number): void {
    this.current?.key.fill(0);
    this.current = epoch;
    this.keyedVersion = version;
    this.messagesSinceRekey = 0;
    this.forced = false;
    this.pendingReasons.length = 0;
    this.firstPendingAt = undefined;
  }

  /**
   * Resolve when `check()` holds (re-checked on every state change of this room), or reject
   * after `ms`. For the few steps that wait on IRC echoes (own JOIN + NAMES, MODE).
   */
  until(check: () => boolean, ms: number, what: string): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`${this.name}: timed out waiting for ${what}`));
      }, ms);
      const waiter = (): void => {
        if (!check()) return;
        clearTimeout(timer);
        this.waiters.delete(waiter);
        resolve();
      };
      this.waiters.add(waiter);
    });
  }

  /** Stop timers and wipe the key: the room is no longer operated by this keybot. */
  dispose(): void {
    clearTimeout(this.settleTimer);
    clearTimeout(this.rotateTimer);
    this.settleTimer = this.rotateTimer = undefined;
    this.current?.key.fill(0);
    this.current = undefined;
    for (const k of this.memberKeys.values()) k.fill(0);
    this.memberKeys.clear();
    this.holders.clear();
    this.ready = false;
    this.wake();
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}

/** Rooms by casefolded name. */
export class RoomRegistry {
  private readonly rooms = new Map<string, Room>();

  /** `onDelete`: a room was forgotten (what keybot remembers changed). */
  constructor(private readonly onDelete: () => void = () => undefined) {}

  get(name: string): Room | undefined {
    return this.rooms.get(casefold(name));
  }

  /** The room, created empty if keybot did not know it yet. */
  ensure(name: string): Room {
    const folded = casefold(name);
    let room = this.rooms.get(folded);
    if (!room) {
      room = new Room(name);
      this.rooms.set(folded, room);
    }
    return room;
  }

  /** Forget a room (dispose() wipes its key). */
  delete(name: string): Room | undefined {
    const room = this.rooms.get(casefold(name));
    if (!room) return undefined;
    this.rooms.delete(room.folded);
    room.dispose();
    this.onDelete();
    return room;
  }

  all(): Room[] {
    return [...this.rooms.values()];
  }

  /** Rooms in which `nick` is a member (online or offline), sorted by name. */
  roomsOf(nick: string): Room[] {
    const f = casefold(nick);
    return this.all()
      .filter((r) => r.members.has(f))
      .sort((a, b) => (a.folded < b.folded ? -1 : a.folded > b.folded ? 1 : 0));
  }

  get size(): number {
    return this.rooms.size;
  }

  /** Drop every room (shutdown or lost connection): timers stopped, keys wiped. */
  clear(): void {
    for (const r of this.rooms.values()) r.dispose();
    this.rooms.clear();
  }
}
