/**
 * What changes in a keybot session on an ordinary IRC network (docs/NETWORKS.md), around the
 * session main.ts runs: the directory rides on keybot's own connection, keys come from keybot's
 * key store, `register` is answered here, and every IRC event that makes or uses a member is
 * checked against the network's accounts first:
 * - a command counts only from a nick logged in to the account of the same name (the key
 *   service keys rooms by nick, so a nick must not speak for another account);
 * - a JOIN whose account (extended-join) is not the nick's own is never a member: keybot drops
 *   any expectation it had for that nick, so the key service removes the joiner as an intruder;
 * - a member who logs out (account-notify) is removed from keybot's rooms: a departure.
 */
import type { Client as IrcClient } from 'irc-framework';
import { casefold } from '../../protocol/names.js';
import { createLogger } from '../../util/log.js';
import type { IrcEventSink, Sender } from '../keybot.js';
import type { KeyService } from '../service.js';
import { NetworkDirectory } from './directory.js';
import { NetworkKeyStore } from './keystore.js';
import { KeyRegistrations } from './registration.js';

const log = createLogger('keybot');

export interface NetworkSessionOptions {
  dataDir: string;
  irc: IrcClient;
  serviceAccount: string;
  /** Cool-down of a key change the old key did not sign (keystore.ts; default 7 days). */
  keyChangeCoolDownMs?: number;
}

/** The network half of a session: the directory, and the key registrations it feeds. */
export class NetworkSession {
  private constructor(
    readonly directory: NetworkDirectory,
    readonly registrations: KeyRegistrations,
    private readonly irc: IrcClient,
  ) {}

  static async open(o: NetworkSessionOptions): Promise<NetworkSession> {
    const store = await NetworkKeyStore.open(o.dataDir, o.keyChangeCoolDownMs !== undefined ? { coolDownMs: o.keyChangeCoolDownMs } : {});
    const directory = new NetworkDirectory({ irc: o.irc, store, serviceAccount: o.serviceAccount });
    const registrations = new KeyRegistrations({
      store,
      network: () => networkName(o.irc),
      onRegistered: (account) => directory.watch([account]),
    });
    return new NetworkSession(directory, registrations, o.irc);
  }

  /** After login: keybot must hold its own nick (another keybot may be running), then watch presence. */
  async started(nick: string): Promise<void> {
    if (casefold(this.irc.user.nick) !== casefold(nick)) {
      throw new Error(`the nick ${nick} is taken on this network (keybot got ${this.irc.user.nick}): is another keybot running?`);
    }
    await this.directory.start();
  }

  /** Wrap the session's sink with the network's checks (see the file comment). */
  wrap(sink: IrcEventSink, service: KeyService, notice: (target: string, text: string) => void): IrcEventSink {
    const dir = this.directory;
    dir.onLogout((nick) => {
      for (const room of service.rooms.roomsOf(nick)) {
        log.warn(`${room.name}: ${nick} logged out of their account; removing them`);
        void dir.removeFromRoom(room.name, nick, 'logged out of their account');
      }
    });
    return {
      ...sink,
      command: (from: Sender, text: string) => {
        if (KeyRegistrations.matches(text)) {
          void this.registrations
            .handle(from.account, text, (line) => notice(from.nick, line))
            .catch((err: unknown) => log.error(`register from ${from.nick} failed`, err));
          return;
        }
        if (from.account !== null && casefold(from.account) !== casefold(from.nick)) {
          notice(from.nick, `on this network keybot serves you only under your account's name: change your nick to ${from.account}`);
          return;
        }
        sink.command(from, text);
      },
      memberJoined: (room: string, nick: string) => {
        if (!dir.isLoggedInAsSelf(nick)) {
          log.warn(`${room}: ${nick} joined without being logged in to the account ${nick}`);
          service.rooms.get(room)?.takeExpectedJoin(nick);
        }
        sink.memberJoined(room, nick);
      },
    };
  }
}

/** The network's name as its server announces it (ISUPPORT NETWORK), else the server's host. */
export function networkName(irc: IrcClient): string {
  const n = irc.network.name || irc.network.supports('NETWORK');
  return typeof n === 'string' && n !== '' ? n : irc.options.host;
}
