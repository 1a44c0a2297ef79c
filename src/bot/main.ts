/**
 * Running keybot: its identity, one session at a time (directory + IRC connection + key
 * service), and a fresh session with backoff whenever either connection is lost.
 *
 *   irc event → command parser (commands.ts) → key service (service.ts) → crypto → delivery
 *
 * A session starts by taking over every #sc-* room the daemon lists and rekeying it
 * (service.recover), so a lost connection, a daemon restart and a process restart heal the same
 * way: the daemon keeps its rooms and their members by account (docs/PROTOCOL.md "Rooms that
 * outlive a connection"). Keys never outlive their session.
 *
 * What the daemon cannot vouch for, keybot remembers itself: the member pins and the signed
 * operations of pending invites (never keys). A lost session leaves them behind in memory for the
 * next one, and saves them in `<dataDir>/keybot.rooms.json` (room-memory.ts) for the next process.
 */
import path from 'node:path';
import { backoffDelay } from '../protocol/backoff.js';
import { CONTROL_SOCKET_NAME } from '../protocol/files.js';
import { createLogger } from '../util/log.js';
import { CommandDispatcher, type DispatcherOptions } from './commands.js';
import { ControlSocketDirectory, type UserDirectory } from './directory.js';
import { loadOrCreateIdentity, readServiceCredentials, type KeybotIdentity, type ServiceCredentials } from './identity.js';
import { KeybotConnection, type IrcEndpoint, type IrcEventSink } from './keybot.js';
import { loadRoomMemory, RoomMemoryWriter, type StoredRoomMemory } from './room-memory.js';
import type { RememberedRoom } from './rooms.js';
import { KeyService, type KeyServiceOptions } from './service.js';
import type { RoomPrefix } from '../protocol/names.js';
import type { Pace } from './network/pacing.js';
import { NetworkSession, type NetworkAccounts } from './network/session.js';

const log = createLogger('keybot');

export type ServiceTuning = Partial<
  Pick<KeyServiceOptions, 'settleMs' | 'maxSettleMs' | 'minEpochIntervalMs' | 'echoTimeoutMs' | 'retryMs' | 'proposalTtlMs' | 'inlineRosterBytes'>
>;

export interface KeybotOptions {
  /** Holds keybot.credentials (from the daemon) and keybot.key.asc (keybot's key pair). */
  dataDir: string;
  /** The ircd to log in to. */
  irc: IrcEndpoint;
  /** Default `<dataDir>/control.sock`. */
  controlPath?: string;
  rotateAfterMessages: number;
  rotateAfterMs: number;
  /** Open the user directory for a session (default: the daemon's control socket). */
  openDirectory?: () => Promise<UserDirectory>;
  tuning?: ServiceTuning;
  /** Per-user command budget. */
  commands?: Pick<DispatcherOptions, 'burst' | 'refillMs'>;
  /** Reconnect backoff after a lost session (default 1 s doubling to 30 s). */
  reconnect?: { initialMs?: number; maxMs?: number };
  /** Debounce of saving the room memory to keybot.rooms.json after a change (default 1000 ms). */
  saveRoomsAfterMs?: number;
  /**
   * Serve an ordinary IRC network instead of sealchatd (docs/NETWORKS.md): keybot logs in to its
   * own services account there, and the directory is network/directory.ts over keybot's own
   * connection, with keys from its key store (no control socket).
   */
  network?: {
    account: string;
    password: string;
    keyChangeCoolDownMs?: number;
    /** `keybot`: a network without services (ngIRCd), keybot keeps its own accounts. */
    accounts?: NetworkAccounts;
    /** An IRC operator block to OPER to after login (ngIRCd: for +F, relaxed flood protection). */
    oper?: { name: string; password: string };
    /** Pacing of keybot's lines under the network's flood limits (network/pacing.ts); false: none. */
    pace?: Pace | false;
    /** The prefix of the rooms keybot opens (default `#sc-`; `##sc-` for Libera's namespace policy). */
    roomPrefix?: RoomPrefix;
  };
}

interface Session {
  directory: UserDirectory;
  conn: KeybotConnection;
  service: KeyService;
  /** We close the directory ourselves (so its close says nothing about the daemon). */
  closingDirectory: boolean;
  /** The daemon's `server.info` instance when this session began (undefined: it cannot tell). */
  instance: string | undefined;
}

export class Keybot {
  private session: Session | undefined;
  private closing = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private attempts = 0;
  /** Rooms of the last lost session (names and members only), until a new session is up. */
  private memory: RememberedRoom[] = [];
  /** A lost session, kept until the next one is up. */
  private previous: Session | undefined;
  /** What an earlier process saved (keybot.rooms.json), until the first session is up. */
  private stored: StoredRoomMemory | undefined;
  /** Saves the current session's rooms to keybot.rooms.json. */
  private readonly saver: RoomMemoryWriter;

  private constructor(
    private readonly opts: KeybotOptions,
    readonly identity: KeybotIdentity,
    private readonly credentials: ServiceCredentials,
  ) {
    this.saver = new RoomMemoryWriter(
      opts.dataDir,
      () => (this.session ? { daemonInstance: this.session.instance, rooms: this.session.service.snapshot() } : undefined),
      opts.saveRoomsAfterMs,
    );
  }

  /** Load or create the identity, log in, and recover the rooms. Throws if the first session fails. */
  static async start(opts: KeybotOptions): Promise<Keybot> {
    const identity = await loadOrCreateIdentity(opts.dataDir);
    const credentials = opts.network
      ? { account: opts.network.account, password: opts.network.password }
      : await readServiceCredentials(opts.dataDir);
    const bot = new Keybot(opts, identity, credentials);
    bot.stored = await loadRoomMemory(opts.dataDir);
    bot.session = await bot.openSession();
    bot.saver.changed();
    return bot;
  }

  get fingerprint(): string {
    return this.identity.fingerprint;
  }

  /** The current session's key service (undefined while reconnecting). */
  get service(): KeyService | undefined {
    return this.session?.service;
  }

  /** Save the rooms, QUIT, drop every key, and stop reconnecting. */
  async close(): Promise<void> {
    this.closing = true;
    clearTimeout(this.reconnectTimer);
    this.memory = [];
    this.retirePrevious();
    const s = this.session;
    this.session = undefined;
    // Without a session the file keeps what the lost one saved (lost()).
    if (s) await this.saver.write({ daemonInstance: s.instance, rooms: s.service.snapshot() });
    else await this.saver.settled();
    this.saver.cancel();
    if (!s) return;
    s.service.shutdown();
    await s.conn.quit('keybot shutting down');
    s.closingDirectory = true;
    s.directory.close();
  }

  private async openSession(): Promise<Session> {
    const startedAt = Date.now();
    // On a network the directory rides on keybot's own connection, so that comes first.
    let conn: KeybotConnection | undefined = this.opts.network
      ? new KeybotConnection({
          endpoint: this.opts.irc,
          account: this.credentials.account,
          password: this.credentials.password,
          sasl: this.opts.network.accounts !== 'keybot',
        })
      : undefined;
    const network = conn && this.opts.network
      ? await NetworkSession.open({
          dataDir: this.opts.dataDir,
          irc: conn.irc,
          serviceAccount: this.credentials.account,
          ...(this.opts.network.keyChangeCoolDownMs !== undefined ? { keyChangeCoolDownMs: this.opts.network.keyChangeCoolDownMs } : {}),
          ...(this.opts.network.accounts ? { accounts: this.opts.network.accounts } : {}),
          ...(this.opts.network.oper ? { oper: this.opts.network.oper } : {}),
          ...(this.opts.network.pace !== undefined ? { pace: this.opts.network.pace } : {}),
        })
      : undefined;
    const directory: UserDirectory = network
      ? network.directory
      : this.opts.openDirectory
        ? await this.opts.openDirectory()
        : await ControlSocketDirectory.connect(this.opts.controlPath ?? path.join(this.opts.dataDir, CONTROL_SOCKET_NAME));
    let service: KeyService | undefined;
    let session: Session | undefined;
    try {
      const instance = directory.serverInstance ? await directory.serverInstance() : undefined;
      // What keybot remembers of its rooms: the lost session's, or what the last process saved.
      const stored = this.stored;
      const known = stored ? stored.rooms : this.memory;
      if (stored && stored.rooms.length > 0) log.info(`${stored.rooms.length} remembered room${stored.rooms.length === 1 ? '' : 's'} from the last run`);
      // On a network, a second keybot shows as the nick being taken (NetworkSession.started).
      if (network) await directory.publishServiceKey(this.credentials.account, this.identity.publicArmored);
      else await this.publishKey(directory);
      conn ??= new KeybotConnection({ endpoint: this.opts.irc, account: this.credentials.account, password: this.credentials.password });
      const link = conn;
      const svc = new KeyService({
        directory,
        transport: conn,
        signer: this.identity.key,
        rotateAfterMessages: this.opts.rotateAfterMessages,
        rotateAfterMs: this.opts.rotateAfterMs,
        // The restart rule (service.ts header): no epoch in the second this session started.
        notBefore: (Math.floor(startedAt / 1000) + 1) * 1000,
        ...this.opts.tuning,
        ...(this.opts.network?.roomPrefix !== undefined ? { roomPrefix: this.opts.network.roomPrefix } : {}),
        onRoomsChanged: () => this.saver.changed(),
      });
      service = svc;
      const sink = sinkFor(svc, link, new CommandDispatcher(this.opts.commands));
      conn.bind(network ? network.wrap(sink, svc, (target, text) => link.notice(target, text)) : sink);
      directory.onPresence((p) => {
        log.debug(`${p.name} is ${p.online ? 'online' : 'offline'}`);
        svc.presence(p);
      });
      await conn.connect();
      await network?.started(conn.nick);
      const s: Session = { directory, conn, service: svc, closingDirectory: false, instance };
      session = s;
      conn.onClose((why) => this.lost(s, `IRC: ${why}`));
      directory.onClose((err) => this.lost(s, `directory: ${err.message}`));
      // Pins and pending invites come from everything the last session knew: a dropped
      // connection or a restart must not let a swapped key or an unsigned member in.
      await svc.recover(known);
      // Off the critical path: the next invite finds the keys of those online already parsed.
      svc.warmKeys().catch((err: unknown) => log.debug(`cannot warm the key cache: ${(err as Error).message}`));
      this.memory = [];
      this.stored = undefined;
      this.retirePrevious();
      this.attempts = 0;
      return s;
    } catch (err) {
      service?.shutdown();
      if (session) session.closingDirectory = true;
      if (conn && !conn.isClosed) await conn.quit('keybot could not start').catch(() => undefined);
      directory.close();
      throw err;
    }
  }

  /**
   * Refuse to run beside another keybot (two would issue different keys under the same epoch
   * numbers), then register keybot's public key with the directory, so users can fetch it and
   * pin its fingerprint.
   */
  private async publishKey(directory: UserDirectory): Promise<void> {
    const me = await directory.lookupUser(this.credentials.account);
    if (me?.online) {
      throw new Error(`${this.credentials.account} is already logged in: another keybot is running (only one may serve a network)`);
    }
    if (me && me.fingerprint === this.identity.fingerprint) return;
    await directory.publishServiceKey(this.credentials.account, this.identity.publicArmored);
    log.info(`registered keybot's public key ${this.identity.fingerprint} with the directory`);
  }

  private lost(session: Session, why: string): void {
    if (this.session !== session) return;
    this.session = undefined;
    // Rosters, pins and pending invites (never keys), for the next session.
    this.memory = session.service.snapshot();
    // Also on disk, in case this process dies before the next session is up.
    if (!this.closing) void this.saver.write({ daemonInstance: session.instance, rooms: this.memory });
    session.service.shutdown();
    void session.conn.quit('keybot reconnecting').catch(() => undefined);
    // The directory stays open until the next session is up (see the file comment).
    this.retirePrevious();
    this.previous = session;
    if (this.closing) {
      this.memory = [];
      this.retirePrevious();
      return;
    }
    log.warn(`session lost (${why}); every room key is dropped`);
    this.scheduleReconnect();
  }

  /** Close the control connection of the lost session. */
  private retirePrevious(): void {
    const p = this.previous;
    this.previous = undefined;
    if (!p) return;
    p.closingDirectory = true;
    p.directory.close();
  }

  private scheduleReconnect(): void {
    const delay = backoffDelay(this.attempts, this.opts.reconnect);
    this.attempts++;
    log.info(`reconnecting in ${delay} ms`);
    this.reconnectTimer = setTimeout(() => {
      if (this.closing) return;
      this.openSession().then(
        (s) => {
          if (this.closing) {
            s.service.shutdown();
            void s.conn.quit().then(() => s.directory.close());
            return;
          }
          this.session = s;
          this.saver.changed();
          log.info('session restored');
        },
        (err: unknown) => {
          log.warn(`reconnect failed: ${(err as Error).message}`);
          if (!this.closing) this.scheduleReconnect();
        },
      );
    }, delay);
  }
}

/** Route IRC events: commands to the dispatcher (replies as NOTICEs), the rest to the key service. */
function sinkFor(service: KeyService, conn: KeybotConnection, dispatcher: CommandDispatcher): IrcEventSink {
  return {
    command: (from, text) => {
      const reply = (line: string): void => conn.notice(from.nick, line);
      void dispatcher.dispatch({ nick: from.nick, account: from.account, service, reply }, text);
    },
    selfJoined: (room) => service.selfJoined(room),
    namesReceived: (room, nicks) => service.namesReceived(room, nicks),
    memberJoined: (room, nick) => service.memberJoined(room, nick),
    memberLeft: (room, nick, kicked) => service.memberLeft(room, nick, kicked),
    memberQuit: (nick) => service.memberQuit(nick),
    selfLeft: (room) => service.selfLeft(room),
    modesChanged: (room, by, changes) => service.modesChanged(room, by, changes),
    roomMessage: (room, nick) => service.roomMessage(room, nick),
  };
}

/** Start keybot; resolves once it is logged in and has re-entered its rooms. */
export function startKeybot(opts: KeybotOptions): Promise<Keybot> {
  return Keybot.start(opts);
}
