/**
 * The daemon's local control socket: the wire contract shared by the daemon (server side),
 * keybot and the `sealchatd user ...` admin tool (client side).
 *
 * Transport: net-ipc over a unix socket `<dataDir>/control.sock`, mode 0600, so only the
 * account that runs the daemon can use it. Every call is a request `{ method, params }`
 * answered by a ControlResponse. The daemon is the store's one writer: while it runs, admin
 * changes go through here rather than opening the store a second time.
 */


/** What the daemon knows of one account, as the control socket reports it. */
export interface UserInfo {
  /** Account name as registered (display case). */
  name: string;
  /** OpenPGP v4/v6 fingerprint, lowercase hex. */
  fingerprint: string;
  /** Armored OpenPGP public key. Present on user.get, omitted from listings. */
  publicKey?: string;
  /** True while at least one authenticated session exists. */
  online: boolean;
  /** The reserved key-service account. */
  service?: boolean;
  createdAt: string;
  updatedAt: string;
}

/** What `server.info` reports. */
export interface ServerInfo {
  /** Random per daemon start (128 bits, hex). */
  instance: string;
  /** When this daemon started, ISO 8601. */
  startedAt: string;
  version: string;
  server: string;
}

export interface ChannelInfo {
  name: string;
  modes: string;
  topic: string;
  /** Current members by display nick. */
  members: string[];
  /** Members holding +o. */
  operators: string[];
  /**
   * For a room (a channel keybot made persistent with `room.add`): every account placed in it,
   * online or not (docs/PROTOCOL.md "Rooms that outlive a connection"). Absent for an ordinary
   * channel.
   */
  accounts?: RoomAccount[];
}

/**
 * One account of a room. `joined`: a member with at least one session in the channel now;
 * `offline`: a member with no session in it (kept across QUIT and restarts); `pending`: added
 * while offline, joined at the next login.
 */
export interface RoomAccount {
  account: string;
  state: 'joined' | 'offline' | 'pending';
}

/**
 * What became of one account of a `room.add` call: `joined` true when its online sessions were
 * put in the room now, false when it is pending (offline: joined at its next login). An unknown
 * account (or an invalid name) answers `error` and is not added.
 */
export interface RoomAddOutcome {
  account: string;
  joined: boolean;
  error?: { code: ControlErrorCode; message: string };
}

/** Most nicks one `channel.joinmany` call may place. */
export const MAX_JOIN_NICKS = 1000;

/** What became of one nick of a `channel.joinmany` call. */
export type JoinOutcome =
  | { nick: string; ok: true }
  | { nick: string; ok: false; error: { code: ControlErrorCode; message: string } };

/** Request parameters and results of every control method. */
export interface ControlMethods {
  /** Liveness and version. */
  'ping': { params: Record<string, never>; result: { version: string; server: string } };
  /**
   * This run of the daemon: `instance` is random, made when the daemon started, so a different
   * instance means the daemon restarted (its channels are gone). keybot keeps it with the rooms
   * it remembers on disk (docs/PROTOCOL.md "Faults").
   */
  'server.info': { params: Record<string, never>; result: ServerInfo };
  'user.get': { params: { name: string }; result: UserInfo | null };
  'user.list': { params: Record<string, never>; result: UserInfo[] };
  'user.add': { params: { name: string; password: string; publicKey: string }; result: UserInfo };
  'user.passwd': { params: { name: string; password: string }; result: { ok: true } };
  'user.setkey': { params: { name: string; publicKey: string }; result: UserInfo };
  /** Deleting an account also disconnects its sessions. */
  'user.del': { params: { name: string }; result: { ok: true } };
  /** Account names of everyone online now. */
  'presence.online': { params: Record<string, never>; result: string[] };
  /**
   * Server-side join: put an online user into a channel (so an invitee need not type /join).
   * Creates the channel if it does not exist. Members see an ordinary JOIN.
   */
  'channel.join': { params: { channel: string; nick: string }; result: { ok: true } };
  /**
   * Server-side join of many users at once (keybot placing an invite's users in one round
   * trip): each nick as `channel.join` would place it, in order. One nick's failure (offline,
   * say) does not stop the others; the result names each nick's outcome, in the order given.
   * At most MAX_JOIN_NICKS nicks.
   */
  'channel.joinmany': { params: { channel: string; nicks: string[] }; result: JoinOutcome[] };
  /** Remove a user from a channel (seen as a KICK by the service). */
  'channel.kick': { params: { channel: string; nick: string; reason?: string }; result: { ok: true } };
  /**
   * Make `room` a room (persistent membership by account; created on the first call) and place
   * each account: online, every session joins now (keybot sees an ordinary JOIN); offline, the
   * account becomes `pending` and joins at its next login. One account's failure does not stop
   * the others; the result names each account's outcome, in the order given. At most
   * MAX_JOIN_NICKS accounts. An account already placed is placed again (idempotent).
   */
  'room.add': { params: { room: string; accounts: string[] }; result: RoomAddOutcome[] };
  /**
   * End an account's place in a room. Online: a server KICK with `reason` from every channel
   * session of it. Offline member: the room's present members get `:<server> KICK <room> <nick>
   * :<reason>`. Pending: dropped silently. `not_found` if the room does not exist or the
   * account has no place in it.
   */
  'room.remove': { params: { room: string; account: string; reason?: string }; result: { ok: true } };
  'channel.get': { params: { channel: string }; result: ChannelInfo | null };
  /** Channels in which `member` (default: keybot) is present. */
  'channel.list': { params: { member?: string }; result: ChannelInfo[] };
}

export type ControlMethod = keyof ControlMethods;

export type ControlRequest<M extends ControlMethod = ControlMethod> = { method: M; params: ControlMethods[M]['params'] };

/** Error codes a control call can answer with; `message` is meant for people. */
export type ControlErrorCode =
  | 'bad_request'      // unknown method or malformed params
  | 'invalid_name'
  | 'exists'
  | 'not_found'
  | 'invalid_key'
  | 'invalid_password'
  | 'offline'
  | 'forbidden'
  | 'internal';

export type ControlResponse<M extends ControlMethod = ControlMethod> =
  | { ok: true; result: ControlMethods[M]['result'] }
  | { ok: false; error: { code: ControlErrorCode; message: string } };

/** Events the daemon pushes to every connected control client. */
export interface ControlEvents {
  /** An account went online (first session) or offline (last session gone). */
  'presence': { name: string; online: boolean };
}
export type ControlEvent = { [E in keyof ControlEvents]: { event: E; data: ControlEvents[E] } }[keyof ControlEvents];
