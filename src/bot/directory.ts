/**
 * Where keybot learns who exists, their public keys and presence, and how it moves people into
 * and out of rooms. keybot depends only on the UserDirectory interface; ControlSocketDirectory
 * implements it over sealchatd's control socket. Another IRC network with a key directory of its
 * own would get its own implementation (e.g. keys from a keyserver, joins via INVITE + SAJOIN).
 */
import { ControlCallError, ControlClient, ControlConnectError } from '../protocol/control-client.js';
import { MAX_JOIN_NICKS, type ControlErrorCode, type ControlEvents } from '../protocol/control.js';

/** A user as the directory knows them. */
export interface DirectoryUser {
  /** Account name as registered (display case); also the user's nick. */
  name: string;
  /** Fingerprint of the registered key, lowercase hex; empty when there is none. */
  fingerprint: string;
  /** Armored OpenPGP public key; undefined when none is registered. */
  publicKey: string | undefined;
  online: boolean;
  /** The key service's own account. */
  service: boolean;
}

/** A channel the directory reports. */
export interface DirectoryRoom {
  name: string;
  /** Flag modes, e.g. "+inst". */
  modes: string;
  /** Nicks present in the channel now. */
  members: string[];
  /**
   * For a room whose membership outlives a connection (sealchatd, docs/PROTOCOL.md "Rooms that
   * outlive a connection"): every account placed in it and its state. Undefined elsewhere.
   */
  accounts?: Array<{ account: string; state: 'joined' | 'offline' | 'pending' }>;
}

/** Why a directory call failed, in terms keybot can act on. */
export type DirectoryErrorCode =
  /** The user is not online (a server-side join needs a session). */
  | 'offline'
  /** No such user, room or membership. */
  | 'not_found'
  /** The directory refused (bad name, forbidden). */
  | 'refused'
  /** The directory cannot be reached or failed internally. */
  | 'unavailable';

export class DirectoryError extends Error {
  override name = 'DirectoryError';
  constructor(
    readonly code: DirectoryErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/**
 * What became of one user of a batch placement (putManyInRoom). `pending`: the user is offline
 * and was added as a pending member, joined by the directory at their next login (only where
 * rooms outlive a connection).
 */
export type Placement = { nick: string; ok: true; pending?: boolean } | { nick: string; ok: false; error: DirectoryError };

export interface PresenceChange {
  name: string;
  online: boolean;
}

/** What keybot needs from the network it serves. Every method may throw DirectoryError. */
export interface UserDirectory {
  /**
   * Room membership belongs to accounts and outlives a connection (sealchatd): a QUIT makes a
   * member offline, not gone; offline invitees become pending; NOTICEs to offline members are
   * kept for them. False on an ordinary IRC network (a QUIT is a departure there).
   */
  readonly persistentRooms: boolean;
  /** A user by account name; null if there is no such account. */
  lookupUser(name: string): Promise<DirectoryUser | null>;
  /** Account names of everyone online now. */
  listOnline(): Promise<string[]>;
  /** Put keybot itself into a channel, creating it if needed (the service's own join). */
  putInRoom(room: string, nick: string): Promise<void>;
  /**
   * Place many users in a room in one call, in order, bypassing +i (the service decided): one
   * user's failure does not stop the others. One outcome per nick, in the order given. With
   * persistentRooms an offline user becomes a pending member (`pending`); otherwise offline is a
   * failure. Throws only if the call as a whole fails (directory unavailable, bad room name).
   */
  putManyInRoom(room: string, nicks: string[]): Promise<Placement[]>;
  /**
   * Take a user out of a room (a member online or offline, or a pending one); members see a KICK
   * with `reason` (nothing for a pending one).
   */
  removeFromRoom(room: string, nick: string, reason: string): Promise<void>;
  /** Every channel on the network (keybot picks its rooms out by name after a restart). */
  listRooms(): Promise<DirectoryRoom[]>;
  /** Register the service's own public key, so users can fetch it (they pin it by fingerprint). */
  publishServiceKey(account: string, armored: string): Promise<DirectoryUser>;
  /**
   * Which run of the network's server this is: an id that changes when the server restarts (its
   * channels are then gone), undefined if the directory cannot tell. keybot stores it with the
   * rooms it remembers on disk (room-memory.ts).
   */
  serverInstance?(): Promise<string | undefined>;
  /** Someone came online (first session) or went offline (last session gone). */
  onPresence(listener: (change: PresenceChange) => void): void;
  /** The directory went away; no further calls will succeed on this instance. */
  onClose(listener: (err: Error) => void): void;
  close(): void;
}

/** UserDirectory over sealchatd's control socket (src/ircd/control-protocol.ts). */
export class ControlSocketDirectory implements UserDirectory {
  readonly persistentRooms = true;

  private constructor(private readonly control: ControlClient) {}

  static async connect(path: string): Promise<ControlSocketDirectory> {
    return new ControlSocketDirectory(await ControlClient.connect(path));
  }

  /** Wrap a control client someone else connected (tests, a supervisor). */
  static over(control: ControlClient): ControlSocketDirectory {
    return new ControlSocketDirectory(control);
  }

  async lookupUser(name: string): Promise<DirectoryUser | null> {
    const info = await this.call(() => this.control.call('user.get', { name }), true);
    if (!info) return null;
    return {
      name: info.name,
      fingerprint: info.fingerprint,
      publicKey: info.publicKey,
      online: info.online,
      service: info.service === true,
    };
  }

  listOnline(): Promise<string[]> {
    return this.call(() => this.control.call('presence.online', {}));
  }

  async putInRoom(room: string, nick: string): Promise<void> {
    await this.call(() => this.control.call('channel.join', { channel: room, nick }));
  }

  /** `room.add`: the daemon keeps the room and its members by account (offline: pending). */
  async putManyInRoom(room: string, nicks: string[]): Promise<Placement[]> {
    const out: Placement[] = [];
    for (let i = 0; i < nicks.length; i += MAX_JOIN_NICKS) {
      const batch = nicks.slice(i, i + MAX_JOIN_NICKS);
      const results = await this.call(() => this.control.call('room.add', { room, accounts: batch }));
      if (!Array.isArray(results) || results.length !== batch.length) throw new DirectoryError('unavailable', 'room.add: malformed answer from the daemon');
      results.forEach((r, j) => {
        const nick = batch[j]!;
        if (r.error) out.push({ nick, ok: false, error: new DirectoryError(directoryCode(r.error.code), r.error.message) });
        else out.push(r.joined ? { nick, ok: true } : { nick, ok: true, pending: true });
      });
    }
    return out;
  }

  /**
   * `room.remove` (online: a KICK; offline: a KICK the daemon sends on their behalf; pending:
   * dropped). Someone in the channel without a place in the room (an operator's `channel.join`)
   * is not known to `room.remove`: kicked from the channel instead.
   */
  async removeFromRoom(room: string, nick: string, reason: string): Promise<void> {
    try {
      await this.call(() => this.control.call('room.remove', { room, account: nick, reason }));
    } catch (err) {
      if (!(err instanceof DirectoryError) || (err.code !== 'not_found' && err.code !== 'refused')) throw err;
      await this.call(() => this.control.call('channel.kick', { channel: room, nick, reason }));
    }
  }

  async listRooms(): Promise<DirectoryRoom[]> {
    const list = await this.call(() => this.control.call('channel.list', { member: '*' }));
    return list.map((c) => ({ name: c.name, modes: c.modes, members: c.members, ...(c.accounts ? { accounts: c.accounts.map((a) => ({ ...a })) } : {}) }));
  }

  async publishServiceKey(account: string, armored: string): Promise<DirectoryUser> {
    const info = await this.call(() => this.control.call('user.setkey', { name: account, publicKey: armored }));
    return { name: info.name, fingerprint: info.fingerprint, publicKey: armored, online: info.online, service: info.service === true };
  }

  async serverInstance(): Promise<string | undefined> {
    try {
      return (await this.control.call('server.info', {})).instance;
    } catch (err) {
      // A daemon older than server.info: keybot cannot tell whether it restarted.
      if (err instanceof ControlCallError && err.code === 'bad_request') return undefined;
      return this.call(() => Promise.reject(err));
    }
  }

  onPresence(listener: (change: PresenceChange) => void): void {
    this.control.on('presence', (data: ControlEvents['presence']) => listener(data));
  }

  onClose(listener: (err: Error) => void): void {
    this.control.onClose(listener);
  }

  close(): void {
    this.control.close();
  }

  /** Map control failures to DirectoryError; `nullOnBadName` turns an invalid name into "no such user". */
  private async call<T>(fn: () => Promise<T>, nullOnBadName = false): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof ControlCallError) {
        if (nullOnBadName && err.code === 'invalid_name') return null as T;
        throw new DirectoryError(directoryCode(err.code), err.message);
      }
      if (err instanceof ControlConnectError) throw new DirectoryError('unavailable', err.message);
      throw err;
    }
  }
}

function directoryCode(code: ControlErrorCode): DirectoryErrorCode {
  return code === 'offline' ? 'offline'
    : code === 'not_found' ? 'not_found'
    : code === 'internal' ? 'unavailable'
    : 'refused';
}
