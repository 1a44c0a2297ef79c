/**
 * The room key store of RoomCryptoEngine (engine.ts): per-room epoch keys, the messages held for a
 * key still on its way, and the engine's settings. RoomMessages and EnvelopeIntake hold a reference
 * to the one store their engine owns; see engine.ts for the rules they enforce together.
 */
import { signingPublicKeyOf, type EnvelopeMember, type PrivateKeyHandle, type SigAlg } from '../../crypto/index.js';
import { KEYBOT_NICK, casefold, isSealchatRoomName } from '../../protocol/names.js';
import type { MemberKeyChange, RoomCryptoEngineOptions, RoomInfo, TextCommand } from './types.js';

export interface EpochKey {
  epoch: number;
  key: Uint8Array;
  /** Folded account → member. */
  members: Map<string, EnvelopeMember>;
  issuedAt: number;
  /** Set when a newer epoch replaced this one, or it was kept for reading only. */
  retiredAt?: number;
  /** Our own last sequence number under it (kept when the key is retired: a re-sent epoch goes on from it). */
  seq?: number;
}

/**
 * Keys of other epochs than the current one kept for READING only (docs/PROTOCOL.md "Rooms that
 * outlive a connection"): epochs we missed, delivered from the daemon's mailbox after the newer
 * one, and the keys we held when our connection was lost, so the history of the gap decrypts.
 * Bounded per room; each is wiped `historyKeyMs` after it was retired. Never sent under:
 * encryptOutgoing uses `current` only.
 */
export const MAX_READ_ONLY_KEYS = 16;

/** A room message whose epoch we do not hold yet (its envelope may still be on the way). */
export interface HeldMessage {
  from: string;
  room: string;
  command: TextCommand;
  record: { payload: string } | { data: Uint8Array };
  epoch: number;
  heldAt: number;
}

export interface RoomState {
  /** Display name (keybot's spelling once an envelope arrived, else the first one seen). */
  name: string;
  current?: EpochKey;
  previous?: EpochKey;
  /** Read-only keys of older epochs (see MAX_READ_ONLY_KEYS), oldest first. */
  older: EpochKey[];
  /** We left the room (PART, KICK): its epochs are not taken again, not even for reading, until a newer one. */
  left?: boolean;
  highestEpoch?: number;
  /**
   * The highest epoch installed on an earlier connection (CompanionMemory, memory.ts), as it was
   * when this engine started: envelopes not newer than it are refused as replays.
   */
  floor?: number;
  /** The last few epochs we installed (to tell "discarded" from "never had"). */
  installed: number[];
  /** Last sequence number used or seen from our own account in the current epoch. */
  seq: number;
  held: HeldMessage[];
  /** Member key changes seen in envelopes for this room: while any, outgoing text is refused. */
  keyChanges: MemberKeyChange[];
  /**
   * Envelope version 3 (docs/PROTOCOL.md "Envelope version 3"): the room's current key came from
   * a version-3 join envelope or epoch notice; a version 1 or 2 envelope for it is a downgrade.
   */
  v3?: boolean;
  /** Our member key for the room (from keybot's last join envelope): opens the key lines. */
  memberKey?: Uint8Array;
  /** A verified epoch notice that follows our current epoch, waiting for its key line. */
  notice?: { epoch: number; digest: Uint8Array; roster: EnvelopeMember[]; changes: string[]; issuedAt: number; at: number };
  /** Key lines that came before their notice (at most a few, briefly). */
  keyLines: Array<{ line: string; at: number }>;
}

export function isChannel(name: string): boolean {
  return name.startsWith('#') || name.startsWith('&');
}

export function wipe(k: EpochKey | undefined): void {
  k?.key.fill(0);
}

/** The settings of one engine, checked once (RoomCryptoEngineOptions with defaults applied). */
export interface EngineConfig {
  readonly account: string;
  readonly folded: string;
  readonly privateKey: PrivateKeyHandle;
  readonly sigAlg: SigAlg;
  readonly keybotNick: string;
  readonly graceMs: number;
  /** How long a read-only key of an older epoch is kept for reading history. */
  readonly historyKeyMs: number;
  readonly holdMs: number;
  readonly maxHeldPerRoom: number;
  readonly maxHeldTotal: number;
  readonly maxPendingEnvelopes: number;
  readonly envelopeMaxAgeMs: number | undefined;
  readonly envelopeMaxSkewMs: number | undefined;
  readonly clock: () => number;
}

export function engineConfig(options: RoomCryptoEngineOptions): EngineConfig {
  if (!options || typeof options !== 'object') throw new TypeError('RoomCryptoEngine: expected one options object');
  if (typeof options.account !== 'string' || options.account.length === 0) {
    throw new TypeError('RoomCryptoEngine: options.account must be a non-empty string');
  }
  return {
    account: options.account,
    folded: casefold(options.account),
    privateKey: options.privateKey,
    // Also checks that privateKey is a real handle (throws otherwise).
    sigAlg: signingPublicKeyOf({ key: options.privateKey }).alg,
    keybotNick: casefold(options.keybotNick ?? KEYBOT_NICK),
    graceMs: options.previousEpochGraceMs ?? 120_000,
    historyKeyMs: options.historyKeyMs ?? 10 * 60_000,
    holdMs: options.holdMs ?? 15_000,
    maxHeldPerRoom: options.maxHeldPerRoom ?? 64,
    maxHeldTotal: options.maxHeldTotal ?? 1024,
    maxPendingEnvelopes: options.maxPendingEnvelopes ?? 32,
    envelopeMaxAgeMs: options.envelopeMaxAgeMs,
    envelopeMaxSkewMs: options.envelopeMaxSkewMs,
    clock: options.clock ?? Date.now,
  };
}

/** The rooms of one engine: their keys, and the messages held for keys on their way. */
export class RoomKeys {
  private readonly rooms = new Map<string, RoomState>();
  /** Messages held in all rooms (bounded by maxHeldTotal). */
  heldTotal = 0;

  /** `floors`: folded room → the highest epoch remembered from earlier connections. */
  constructor(
    private readonly c: EngineConfig,
    private readonly floors: ReadonlyMap<string, number> = new Map(),
  ) {}

  /** The state of a room, if this engine has seen it. */
  get(room: string): RoomState | undefined {
    return this.roomStates().get(casefold(room));
  }

  /** The state of a room, made on first use. */
  state(room: string): RoomState {
    const folded = casefold(room);
    let s = this.rooms.get(folded);
    if (!s) {
      const floor = this.floors.get(folded);
      s = { name: room, seq: 0, held: [], installed: [], keyChanges: [], older: [], keyLines: [], ...(floor !== undefined ? { floor } : {}) };
      this.rooms.set(folded, s);
    }
    return s;
  }

  roomStates(): Map<string, RoomState> {
    return this.rooms;
  }

  displayName(room: string): string {
    return this.rooms.get(casefold(room))?.name ?? room;
  }

  /**
   * True for a channel whose outgoing text must be encrypted: a `#sc-` (or `##sc-`) room, or one we have or
   * had a key for (on this connection or, per memory.ts, an earlier one).
   */
  isEncryptedRoom(room: string): boolean {
    if (!isChannel(room)) return false;
    const folded = casefold(room);
    return isSealchatRoomName(folded) || this.rooms.get(folded)?.highestEpoch !== undefined || this.floors.has(folded);
  }

  expirePrevious(state: RoomState | undefined, now: number): void {
    if (!state) return;
    const prev = state.previous;
    if (prev && now - (prev.retiredAt ?? now) > this.c.graceMs) {
      wipe(prev);
      state.previous = undefined;
    }
    if (state.older.length > 0) {
      const keep = state.older.filter((k) => now - (k.retiredAt ?? now) <= this.c.historyKeyMs);
      for (const k of state.older) if (!keep.includes(k)) wipe(k);
      state.older = keep;
    }
  }

  /** The key of `epoch` that decrypts (current, the replaced one, or a read-only older one). */
  keyFor(state: RoomState, epoch: number): EpochKey | undefined {
    if (state.current?.epoch === epoch) return state.current;
    if (state.previous?.epoch === epoch) return state.previous;
    return state.older.find((k) => k.epoch === epoch);
  }

  /** Keep `key` for reading only (bounded: the oldest is wiped first). */
  keepReadOnly(state: RoomState, key: EpochKey, now: number): void {
    const same = state.older.find((k) => k.epoch === key.epoch);
    if (same) {
      if (same.key !== key.key) wipe(same);
      state.older = state.older.filter((k) => k !== same);
    }
    state.older.push({ ...key, retiredAt: now });
    state.older.sort((a, b) => a.epoch - b.epoch);
    while (state.older.length > MAX_READ_ONLY_KEYS) wipe(state.older.shift());
  }

  /** Take the read-only key of `epoch` out of the older ones (it becomes current again). */
  takeReadOnly(state: RoomState, epoch: number): EpochKey | undefined {
    const k = state.older.find((x) => x.epoch === epoch) ?? (state.previous?.epoch === epoch ? state.previous : undefined);
    if (!k) return undefined;
    state.older = state.older.filter((x) => x !== k);
    if (state.previous === k) state.previous = undefined;
    return k;
  }

  /**
   * Our connection is gone (docs/PROTOCOL.md "Rooms that outlive a connection"): we are still a
   * member, but the room may have changed meanwhile, so no key may be SENT under until keybot's
   * envelopes come again; the keys are kept for reading the history of the gap.
   */
  retireAll(now: number): void {
    for (const state of this.rooms.values()) {
      if (state.current) this.keepReadOnly(state, { ...state.current, seq: state.seq }, now);
      if (state.previous) this.keepReadOnly(state, state.previous, now);
      state.current = undefined;
      state.previous = undefined;
      state.seq = 0;
    }
  }

  /** Logged in again: the read-only keys count their lifetime from now (the catch-up needs them). */
  refreshReadOnly(now: number): void {
    for (const state of this.rooms.values()) for (const k of state.older) k.retiredAt = now;
  }

  /** What we know about a room, or undefined if nothing. */
  info(room: string, now?: number): RoomInfo | undefined {
    const state = this.rooms.get(casefold(room));
    if (!state) return undefined;
    this.expirePrevious(state, now ?? this.c.clock());
    const current = state.current;
    return {
      room: state.name,
      ...(current ? { epoch: current.epoch, issuedAt: current.issuedAt } : {}),
      members: current ? [...current.members.values()].map((m) => m.account) : [],
      hasKey: current !== undefined,
      ...(state.highestEpoch !== undefined ? { highestEpoch: state.highestEpoch } : {}),
      ...(state.keyChanges.length > 0 ? { keyChanges: state.keyChanges.map((c) => ({ ...c })) } : {}),
    };
  }

  /** Every room we hold or held a key for on this connection. */
  list(now?: number): RoomInfo[] {
    const out: RoomInfo[] = [];
    for (const state of this.rooms.values()) {
      if (state.highestEpoch === undefined) continue;
      out.push(this.info(state.name, now)!);
    }
    return out;
  }

  /** Wipe a room's keys and held messages (we left it); its highest epoch stays (old envelopes stay refused). */
  forget(room: string): void {
    const state = this.rooms.get(casefold(room));
    if (!state) return;
    wipe(state.current);
    wipe(state.previous);
    for (const k of state.older) wipe(k);
    state.older = [];
    state.memberKey?.fill(0);
    state.memberKey = undefined;
    state.notice = undefined;
    state.keyLines = [];
    state.left = true;
    state.current = undefined;
    state.previous = undefined;
    state.seq = 0;
    this.heldTotal -= state.held.length;
    state.held = [];
  }
}
