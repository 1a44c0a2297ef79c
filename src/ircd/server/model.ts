/**
 * The state model: a Client is an identity on the network (nick, account, channels), a Channel
 * holds modes, topic and members, and a Peer is one connection as the state sees it
 * (server/session.ts implements it). Client and Channel point at each other, so they live in one
 * file; the model imports nothing above it, which keeps the daemon free of import cycles
 * (docs/DESIGN.md "The daemon").
 *
 * One account may hold several sessions at once (a proxy and a terminal client, say); they share
 * the nick and channels, like ergo's multiclient. The account is online while it has a session.
 */
import { casefold } from '../../protocol/names.js';
import { globMatch } from '../protocol/text.js';
import type { Relay } from './relay.js';

/** What the state needs of one connection: delivery, its capabilities, and closing it. */
export interface Peer {
  readonly id: number;
  readonly ip: string;
  readonly caps: ReadonlySet<string>;
  readonly closed: boolean;
  client: Client | null;
  /** A numeric from the server to this connection (`:server NUM <nick> params…`). */
  reply(numeric: string, ...params: string[]): void;
  sendFrom(source: string | null, command: string, params: readonly string[], extraTags?: Record<string, string>): void;
  /** A relayed line, serialised once for all its recipients. */
  relay(r: Relay): void;
  close(reason: string, notify?: boolean): void;
}

export class Client {
  readonly sessions = new Set<Peer>();
  readonly channels = new Map<string, Channel>();
  away: string | null = null;
  /** User modes (made on first use: most clients never set one). */
  private modeSet: Set<string> | null = null;
  readonly signonAt = Math.floor(Date.now() / 1000);
  lastActiveAt = Date.now();

  constructor(
    /** Display nick; equals the account name for account holders unless config forceNickEqualsAccount is off. */
    public nick: string,
    public folded: string,
    /** Account name (display case), or null for a guest (until a SASL login after registration: commands/sasl.ts). */
    public account: string | null,
    readonly username: string,
    readonly hostname: string,
    readonly realname: string,
    /** The key service's account: reserved nick and room privileges. */
    readonly isService: boolean,
  ) {}

  /**
   * `nick!user@host`, built again only after a nick change: every relayed line and every line a
   * room keeps as history carries it (one string, not one per line).
   */
  get prefix(): string {
    if (this.prefixNick !== this.nick) {
      this.prefixNick = this.nick;
      this.cachedPrefix = `${this.nick}!${this.username}@${this.hostname}`;
    }
    return this.cachedPrefix;
  }

  private prefixNick = '';
  private cachedPrefix = '';

  /**
   * The server's index of clients that have a mode Set (set by IrcServer.attach), so that LUSERS
   * counts invisible users and operators without walking every client at every login (issue 14).
   */
  modeIndex: Set<Client> | null = null;

  /** User modes, to change them; `hasMode` reads one without making the Set. */
  get modes(): Set<string> {
    if (this.modeSet === null) {
      this.modeSet = new Set();
      this.modeIndex?.add(this);
    }
    return this.modeSet;
  }

  hasMode(mode: string): boolean {
    return this.modeSet !== null && this.modeSet.has(mode);
  }

  get isOper(): boolean {
    return this.hasMode('o');
  }
}

/** Entries each list mode may hold (ISUPPORT MAXLIST=b:100,e:100,I:100; beyond it 478 ERR_BANLISTFULL). */
export const MAX_LIST_ENTRIES = 100;

/**
 * The channel modes that hold lists of `nick!user@host` masks: b bans (RFC 2812 §3.2.3), e ban
 * exceptions and I invite exceptions (modern.ircdocs.horse "Exception" and "Invite Exception"
 * channel modes; ISUPPORT EXCEPTS and INVEX).
 */
export type ListMode = 'b' | 'e' | 'I';

/** An entry of a list mode: the mask as set, who set it and when (RPL_BANLIST 367 and kin). */
export interface MaskEntry {
  mask: string;
  setBy: string;
  setAt: number;
}

/**
 * The mute extban: a `+b m:<mask>` entry does not keep anyone out, it stops matching members
 * without +v or +o from sending to the channel (404); a `+e m:<mask>` or plain `+e` entry lifts it
 * (ISUPPORT EXTBAN=,m; ircdocs "EXTBAN"; the `m` that InspIRCd and Ergo use).
 */
export const MUTE_PREFIX = 'm:';

/**
 * The account extban (IRCv3 account-extban, ISUPPORT ACCOUNTEXTBAN=a): `a:<account mask>` matches
 * a client logged in to a matching account, never a guest who merely uses that nick.
 */
export const ACCOUNT_PREFIX = 'a:';

/**
 * A ban mask in full `nick!user@host` form: `bar` → `bar!*@*`, `*@h` → `*!*@h`, `n!u` → `n!u@*`
 * (modern.ircdocs.horse "Ban channel mode"; what servers commonly do). A mute keeps its prefix:
 * `m:bar` → `m:bar!*@*`.
 */
export function normaliseMask(mask: string): string {
  if (mask.startsWith(MUTE_PREFIX) && mask.length > MUTE_PREFIX.length) return MUTE_PREFIX + normaliseMask(mask.slice(MUTE_PREFIX.length));
  if (mask.startsWith(ACCOUNT_PREFIX) && mask.length > ACCOUNT_PREFIX.length) return mask;
  const bang = mask.indexOf('!');
  const at = mask.indexOf('@');
  if (bang === -1 && at === -1) return `${mask}!*@*`;
  if (bang === -1) return `*!${mask}`;
  if (at === -1) return `${mask}@*`;
  return mask;
}

export interface Membership {
  op: boolean;
  voice: boolean;
}

export class Channel {
  readonly folded: string;
  readonly createdAt = Math.floor(Date.now() / 1000);
  topic = '';
  topicSetBy = '';
  topicSetAt = 0;
  /** Simple flag modes: i (invite-only), s (secret), n (no external messages), t (ops set topic), m (moderated), C (no CTCP but ACTION). */
  readonly flags = new Set<string>(['n', 't']);
  key: string | null = null;
  limit: number | null = null;
  readonly members = new Map<Client, Membership>();
  /** Casefolded nicks invited while the channel is +i (RFC 2812 §3.2.7). */
  readonly invited = new Set<string>();
  /** Each list mode's entries by casefolded normalised mask. */
  readonly lists: Readonly<Record<ListMode, Map<string, MaskEntry>>> = { b: new Map(), e: new Map(), I: new Map() };
  /** Every member's sessions as one array, rebuilt after a change (see `sessions()`). */
  private sessionList: Peer[] | null = null;

  constructor(readonly name: string) {
    this.folded = casefold(name);
  }

  /**
   * The sessions of all members, for fan-out: one array walk per relayed message instead of a
   * Map and a Set iterator per member. The server calls `membersChanged()` whenever a member
   * joins or leaves or a member's sessions change; those are the only inputs.
   */
  sessions(): readonly Peer[] {
    if (this.sessionList === null) {
      const list: Peer[] = [];
      for (const m of this.members.keys()) for (const s of m.sessions) list.push(s);
      this.sessionList = list;
    }
    return this.sessionList;
  }

  membersChanged(): void {
    this.sessionList = null;
  }

  isSecret(): boolean {
    return this.flags.has('s');
  }

  /** Whether `client` may see that this channel exists (secret channels hide from non-members). */
  visibleTo(client: Client): boolean {
    return !this.isSecret() || this.members.has(client) || client.isOper;
  }

  /**
   * Whether a mask of list `mode` matches the client's `nick!user@host` (casefolded,
   * CASEMAPPING=ascii): the plain masks, or with `mutes` the `m:` ones.
   */
  listMatches(mode: ListMode, client: Client, mutes = false): boolean {
    const list = this.lists[mode];
    if (list.size === 0) return false;
    const full = casefold(client.prefix);
    const account = client.account === null ? null : casefold(client.account);
    for (const folded of list.keys()) {
      const isMute = folded.startsWith(MUTE_PREFIX);
      if (isMute !== mutes) continue;
      const mask = isMute ? folded.slice(MUTE_PREFIX.length) : folded;
      if (mask.startsWith(ACCOUNT_PREFIX)) {
        if (account !== null && globMatch(mask.slice(ACCOUNT_PREFIX.length), account)) return true;
      } else if (globMatch(mask, full)) {
        return true;
      }
    }
    return false;
  }

  /** Banned: a ban (+b) matches and no ban exception (+e) does. */
  isBanned(client: Client): boolean {
    return this.listMatches('b', client) && !this.listMatches('e', client);
  }

  /** Muted: a mute (+b m:) matches and no exception (+e m: or +e) does. Voice and op are checked by the caller. */
  isMuted(client: Client): boolean {
    return this.listMatches('b', client, true) && !this.listMatches('e', client, true) && !this.listMatches('e', client);
  }

  /** Mode string for RPL_CHANNELMODEIS; the key is shown only to members. */
  modeString(showKey: boolean): { modes: string; params: string[] } {
    let modes = '+' + [...this.flags].sort().join('');
    const params: string[] = [];
    if (this.key !== null) {
      modes += 'k';
      params.push(showKey ? this.key : '*');
    }
    if (this.limit !== null) {
      modes += 'l';
      params.push(String(this.limit));
    }
    return { modes, params };
  }

  /** The NAMES prefix of a member: '@' and/or '+' (multi-prefix) or the highest one. */
  prefixOf(client: Client, multiPrefix: boolean): string {
    const m = this.members.get(client);
    if (!m) return '';
    if (multiPrefix) return (m.op ? '@' : '') + (m.voice ? '+' : '');
    return m.op ? '@' : m.voice ? '+' : '';
  }
}
