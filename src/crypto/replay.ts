/**
 * Replay protection for room messages: per (room, epoch, sender) the highest sequence number seen.
 *
 * IRC delivers a channel's lines in order, so a sender's sequence numbers arrive strictly
 * increasing; anything else is a replay (the same number again) or stale (an older one). Memory is
 * bounded: a few epochs per room, a cap on senders per epoch and on rooms, least recently used
 * evicted first. Evicting forgets what was seen there, so the caps are generous.
 */
import { casefold } from './bytes.js';

/** Outcome of {@link ReplayGuard.accept}. */
export enum ReplayStatus {
  /** Fresh: recorded as the sender's highest. */
  OK = 'ok',
  /** The sender's highest sequence number again. */
  REPLAY = 'replay',
  /** Lower than the sender's highest, or from an epoch the guard has already retired. */
  STALE = 'stale',
}

/** Limits of a {@link ReplayGuard}. */
export interface ReplayGuardOptions {
  /** Epochs remembered per room (default 3): older epochs are refused as STALE. */
  epochsPerRoom?: number;
  /** Senders remembered per (room, epoch) (default 4096). */
  maxSendersPerEpoch?: number;
  /** Rooms remembered (default 1024). */
  maxRooms?: number;
}

interface RoomState {
  /** epoch → sender → highest seq. */
  epochs: Map<number, Map<string, number>>;
  /** Every epoch at or below this one has been retired. */
  retiredUpTo: number;
}

/**
 * Tracks sequence numbers of room messages. Pure (no clock, no I/O). Call {@link accept} only
 * after decryptRoomMessage returned OK, so that forged lines cannot fill it.
 */
export class ReplayGuard {
  private readonly epochsPerRoom: number;
  private readonly maxSendersPerEpoch: number;
  private readonly maxRooms: number;
  private readonly rooms = new Map<string, RoomState>();

  constructor(options: ReplayGuardOptions = {}) {
    this.epochsPerRoom = options.epochsPerRoom ?? 3;
    this.maxSendersPerEpoch = options.maxSendersPerEpoch ?? 4096;
    this.maxRooms = options.maxRooms ?? 1024;
    for (const [name, v] of Object.entries({
      epochsPerRoom: this.epochsPerRoom,
      maxSendersPerEpoch: this.maxSendersPerEpoch,
      maxRooms: this.maxRooms,
    })) {
      if (!Number.isInteger(v) || v <= 0) throw new TypeError(`ReplayGuard: ${name} must be a positive integer`);
    }
  }

  /**
   * Check a verified message's sequence number and record it if fresh. `previous` is the
   * sender's highest sequence number in this epoch before this one (absent for the first seen):
   * a jump of more than one means messages in between never arrived.
   */
  accept(options: { room: string; epoch: number; sender: string; seq: number }): { status: ReplayStatus; previous?: number } {
    if (!options || typeof options !== 'object') throw new TypeError('ReplayGuard.accept: expected one options object');
    const { epoch, seq } = options;
    if (typeof options.room !== 'string' || typeof options.sender !== 'string') {
      throw new TypeError('ReplayGuard.accept: options.room and options.sender must be strings');
    }
    if (!Number.isSafeInteger(epoch) || epoch < 0 || !Number.isSafeInteger(seq) || seq < 0) {
      throw new TypeError('ReplayGuard.accept: options.epoch and options.seq must be non-negative integers');
    }
    const roomKey = casefold(options.room);
    const sender = casefold(options.sender);

    let room = this.rooms.get(roomKey);
    if (room) {
      this.rooms.delete(roomKey); // re-insert below: Map order doubles as LRU order
    } else {
      room = { epochs: new Map(), retiredUpTo: -1 };
      if (this.rooms.size >= this.maxRooms) this.rooms.delete(this.rooms.keys().next().value!);
    }
    this.rooms.set(roomKey, room);

    if (epoch <= room.retiredUpTo) return { status: ReplayStatus.STALE };
    let senders = room.epochs.get(epoch);
    if (!senders) {
      senders = new Map();
      room.epochs.set(epoch, senders);
      while (room.epochs.size > this.epochsPerRoom) {
        const oldest = Math.min(...room.epochs.keys());
        room.epochs.delete(oldest);
        room.retiredUpTo = Math.max(room.retiredUpTo, oldest);
      }
      if (epoch <= room.retiredUpTo) return { status: ReplayStatus.STALE };
    }

    const highest = senders.get(sender);
    if (highest !== undefined) {
      if (seq === highest) return { status: ReplayStatus.REPLAY };
      if (seq < highest) return { status: ReplayStatus.STALE };
      senders.delete(sender);
    } else if (senders.size >= this.maxSendersPerEpoch) {
      senders.delete(senders.keys().next().value!);
    }
    senders.set(sender, seq);
    return highest !== undefined ? { status: ReplayStatus.OK, previous: highest } : { status: ReplayStatus.OK };
  }

  /** Forget a room entirely (e.g. after leaving it). */
  forgetRoom(options: { room: string }): void {
    this.rooms.delete(casefold(options.room));
  }
}
