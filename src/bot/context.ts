/**
 * What every part of the key service shares (service.ts is the facade; epochs.ts, invites.ts,
 * removals.ts and recovery.ts are its parts): the options, the rooms, the key book, the
 * directory and the transport, and whether the service has stopped. One ServiceContext per
 * KeyService; each part holds it (composition, not a base class), so no part keeps a copy of another's state.
 */
import type { PrivateKeyHandle } from '../crypto/index.js';
import { casefold, SERVICE_ROOM_PREFIX, type RoomPrefix } from '../protocol/names.js';
import { createLogger } from '../util/log.js';
import type { Transport } from './delivery.js';
import type { UserDirectory } from './directory.js';
import { KeyBook } from './keybook.js';
import { RoomRegistry, type Room } from './rooms.js';

const log = createLogger('keybot');

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
  /** Least time between two epochs of one room (default 1000 ms; see epochs.ts). */
  minEpochIntervalMs?: number;
  /** No epoch before this time, ms since the Unix epoch (the restart rule; default 0). */
  notBefore?: number;
  /** How long to wait for the server's echo of a JOIN, NAMES or MODE (default 5000 ms). */
  echoTimeoutMs?: number;
  /** Wait after a failed rekey before trying again (default 2000 ms). */
  retryMs?: number;
  /**
   * A join envelope lists the roster inline up to this many bytes of roster JSON (default 16 KiB,
   * about 140 Ed25519 members); a larger roster goes in signed roster pages the envelope names by
   * hash (docs/PROTOCOL.md "Envelope version 3"). 0: always pages.
   */
  inlineRosterBytes?: number;
  /** How long an invite keybot proposed waits for the requester's signature (default 30 s; operations.ts). */
  proposalTtlMs?: number;
  /**
   * What snapshot() reports may have changed (a new epoch, new pins, a room dropped, a pending
   * invite kept or carried out): the owner saves it (main.ts, room-memory.ts). Called often; debounce it.
   */
  onRoomsChanged?: () => void;
  /** The prefix of the rooms keybot opens and keeps (default `#sc-`, the one sealchatd reserves; `##sc-` on a network such as Libera). */
  roomPrefix?: RoomPrefix;
}

/** The timing options with their defaults filled in. */
export type Timing = Required<Omit<KeyServiceOptions, 'directory' | 'transport' | 'signer' | 'onRoomsChanged' | 'proposalTtlMs' | 'roomPrefix'>>;

/** Is `name` one of keybot's rooms, under the prefix it was given (`#sc-` unless told otherwise)? */
export function isServiceRoom(name: string, prefix: string = SERVICE_ROOM_PREFIX): boolean {
  return casefold(name).startsWith(prefix) && name.length > prefix.length;
}

export class ServiceContext {
  readonly rooms = new RoomRegistry(() => this.changed());
  readonly keys: KeyBook;
  readonly o: Timing;
  stopped = false;

  constructor(readonly opts: KeyServiceOptions) {
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
      inlineRosterBytes: opts.inlineRosterBytes ?? 16 * 1024,
    };
  }

  /** keybot's own nick on IRC. */
  get self(): string {
    return this.opts.transport.nick;
  }

  isSelf(nick: string): boolean {
    return casefold(nick) === casefold(this.self);
  }

  /** The remembered rooms (snapshot) may have changed: tell the owner, unless stopped. */
  changed(): void {
    if (!this.stopped) this.opts.onRoomsChanged?.();
  }

  /** keybot is the last one (or opening failed): leave, so the channel disappears; pending invites go with it. */
  leaveRoom(room: Room, why: string): void {
    for (const p of room.pending.values()) {
      this.opts.directory.removeFromRoom(room.name, p.account, `the room ended (${why})`).catch(() => undefined);
    }
    this.opts.transport.part(room.name, why);
    this.rooms.delete(room.name);
    log.info(`${room.name}: left (${why})`);
  }
}
