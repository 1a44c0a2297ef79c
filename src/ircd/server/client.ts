/**
 * A Client is an identity on the network (nick, account, channels); a Session is one connection.
 * One account may hold several sessions at once (a proxy and a terminal client, say); they share
 * the nick and channels, like ergo's multiclient. The account is online while it has a session.
 */
import type { Channel } from './channel.js';
import type { Session } from './session.js';

export class Client {
  readonly sessions = new Set<Session>();
  readonly channels = new Map<string, Channel>();
  away: string | null = null;
  readonly modes = new Set<string>();
  readonly signonAt = Math.floor(Date.now() / 1000);
  lastActiveAt = Date.now();

  constructor(
    /** Display nick; equals the account name for account holders. */
    public nick: string,
    public folded: string,
    /** Account name (display case), or null for a guest. */
    readonly account: string | null,
    readonly username: string,
    readonly hostname: string,
    readonly realname: string,
    /** The key service's account: reserved nick and room privileges. */
    readonly isService: boolean,
  ) {}

  get prefix(): string {
    return `${this.nick}!${this.username}@${this.hostname}`;
  }

  get isOper(): boolean {
    return this.modes.has('o');
  }
}
