/**
 * The key store of RoomCryptoEngine (engine.ts): per-room epoch keys, member pins, and the engine's
 * options and state. The layers above it (room-messages.ts, envelopes.ts, engine.ts) add the
 * operations; see engine.ts for the rules they enforce together.
 */
import {
  PartsReassembler,
  ReplayGuard,
  signingPublicKeyOf,
  type EnvelopeMember,
  type PrivateKeyHandle,
  type PublicKeyHandle,
  type SigAlg,
} from '../../crypto/index.js';
import { KEYBOT_NICK, SERVICE_ROOM_PREFIX, casefold } from '../../protocol/names.js';
import type { MemberKeyChange, RoomCryptoEngineOptions, RoomInfo, TextCommand } from './types.js';

export interface EpochKey {
  epoch: number;
  key: Uint8Array;
  /** Folded account → member. */
  members: Map<string, EnvelopeMember>;
  issuedAt: number;
  /** Set when a newer epoch replaced this one. */
  retiredAt?: number;
}

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
  highestEpoch?: number;
  /** The last few epochs we installed (to tell "discarded" from "never had"). */
  installed: number[];
  /** Last sequence number used or seen from our own account in the current epoch. */
  seq: number;
  held: HeldMessage[];
  /** Member key changes seen in envelopes for this room: while any, outgoing text is refused. */
  keyChanges: MemberKeyChange[];
}

export function isChannel(name: string): boolean {
  return name.startsWith('#') || name.startsWith('&');
}

export function wipe(k: EpochKey | undefined): void {
  k?.key.fill(0);
}

/** Room keys and pins of one engine; the base of RoomCryptoEngine. */
export abstract class RoomKeyStore {
  readonly account: string;
  protected readonly folded: string;
  protected readonly privateKey: PrivateKeyHandle;
  protected readonly sigAlg: SigAlg;
  protected keybotKey: PublicKeyHandle | undefined;
  protected readonly keybotNick: string;
  protected readonly graceMs: number;
  protected readonly holdMs: number;
  protected readonly maxHeldPerRoom: number;
  protected readonly maxHeldTotal: number;
  protected readonly maxPendingEnvelopes: number;
  protected readonly envelopeMaxAgeMs: number | undefined;
  protected readonly envelopeMaxSkewMs: number | undefined;
  protected readonly clock: () => number;
  protected readonly roomStates = new Map<string, RoomState>();
  /** Member fingerprints pinned on first sight: folded account → fingerprint (lowercase hex). */
  protected readonly memberPins = new Map<string, string>();
  protected readonly replay = new ReplayGuard();
  protected readonly envelopeParts: PartsReassembler;
  protected readonly messageParts: PartsReassembler;
  protected pendingEnvelopes: Array<{ from: string; data: Uint8Array; at: number }> = [];
  protected distrust: string | undefined;
  protected heldTotal = 0;
  protected tail: Promise<unknown> = Promise.resolve();

  constructor(options: RoomCryptoEngineOptions) {
    if (!options || typeof options !== 'object') throw new TypeError('RoomCryptoEngine: expected one options object');
    if (typeof options.account !== 'string' || options.account.length === 0) {
      throw new TypeError('RoomCryptoEngine: options.account must be a non-empty string');
    }
    this.account = options.account;
    this.folded = casefold(options.account);
    this.privateKey = options.privateKey;
    // Also checks that privateKey is a real handle (throws otherwise).
    this.sigAlg = signingPublicKeyOf({ key: options.privateKey }).alg;
    this.keybotKey = options.keybotKey;
    this.keybotNick = casefold(options.keybotNick ?? KEYBOT_NICK);
    this.graceMs = options.previousEpochGraceMs ?? 120_000;
    this.holdMs = options.holdMs ?? 15_000;
    this.maxHeldPerRoom = options.maxHeldPerRoom ?? 64;
    this.maxHeldTotal = options.maxHeldTotal ?? 1024;
    this.maxPendingEnvelopes = options.maxPendingEnvelopes ?? 32;
    this.envelopeMaxAgeMs = options.envelopeMaxAgeMs;
    this.envelopeMaxSkewMs = options.envelopeMaxSkewMs;
    this.clock = options.clock ?? Date.now;
    this.envelopeParts = new PartsReassembler(options.reassembler);
    this.messageParts = new PartsReassembler(options.reassembler);
  }

  /** Fingerprint of the pinned keybot key, if one is set. */
  get keybotFingerprint(): string | undefined {
    return this.keybotKey?.fingerprint;
  }


  /** The fingerprint pinned for a member account (first seen in an accepted envelope), if any. */
  memberFingerprint(account: string): string | undefined {
    return this.memberPins.get(casefold(account));
  }

  /**
   * True for a channel whose outgoing text must be encrypted: a `#sc-` room, or one we have or
   * had a key for.
   */
  isEncryptedRoom(room: string): boolean {
    if (!isChannel(room)) return false;
    const folded = casefold(room);
    return folded.startsWith(SERVICE_ROOM_PREFIX) || this.roomStates.get(folded)?.highestEpoch !== undefined;
  }

  /** What we know about a room, or undefined if nothing. */
  roomInfo(room: string, now?: number): RoomInfo | undefined {
    const state = this.roomStates.get(casefold(room));
    if (!state) return undefined;
    this.expirePrevious(state, now ?? this.clock());
    const current = state.current;
    return {
      room: state.name,
      ...(current ? { epoch: current.epoch } : {}),
      members: current ? [...current.members.values()].map((m) => m.account) : [],
      hasKey: current !== undefined,
      ...(state.highestEpoch !== undefined ? { highestEpoch: state.highestEpoch } : {}),
      ...(state.keyChanges.length > 0 ? { keyChanges: state.keyChanges.map((c) => ({ ...c })) } : {}),
    };
  }

  /** Every room we hold or held a key for. */
  listRooms(now?: number): RoomInfo[] {
    const out: RoomInfo[] = [];
    for (const state of this.roomStates.values()) {
      if (state.highestEpoch === undefined) continue;
      out.push(this.roomInfo(state.name, now)!);
    }
    return out;
  }

  /**
   * We left (or were removed from) a room: wipe its keys now. The room stays known as encrypted
   * (outgoing text is refused) and its highest epoch is remembered (old envelopes stay refused).
   * Call it in order with handleIncoming (the IRC layer serialises both).
   */
  forgetRoom(room: string): void {
    const state = this.roomStates.get(casefold(room));
    if (!state) return;
    wipe(state.current);
    wipe(state.previous);
    state.current = undefined;
    state.previous = undefined;
    state.seq = 0;
    this.heldTotal -= state.held.length;
    state.held = [];
    this.replay.forgetRoom({ room });
  }

  protected serial<T>(fn: () => Promise<T> | T): Promise<T> {
    const run = this.tail.then(fn);
    this.tail = run.catch(() => undefined);
    return run;
  }

  protected expirePrevious(state: RoomState | undefined, now: number): void {
    const prev = state?.previous;
    if (prev && now - (prev.retiredAt ?? now) > this.graceMs) {
      wipe(prev);
      state.previous = undefined;
    }
  }

  protected state(room: string): RoomState {
    const folded = casefold(room);
    let s = this.roomStates.get(folded);
    if (!s) {
      s = { name: room, seq: 0, held: [], installed: [], keyChanges: [] };
      this.roomStates.set(folded, s);
    }
    return s;
  }

  protected displayName(room: string): string {
    return this.roomStates.get(casefold(room))?.name ?? room;
  }

}
