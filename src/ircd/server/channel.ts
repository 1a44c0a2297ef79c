/** A channel: its modes, topic, members and pending invitations. */
import { casefold } from '../../protocol/names.js';
import type { Client } from './client.js';
import type { Session } from './session.js';

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
  /** Simple flag modes: i (invite-only), s (secret), n (no external messages), t (ops set topic), m (moderated). */
  readonly flags = new Set<string>(['n', 't']);
  key: string | null = null;
  limit: number | null = null;
  readonly members = new Map<Client, Membership>();
  /** Casefolded nicks invited while the channel is +i (RFC 2812 §3.2.7). */
  readonly invited = new Set<string>();
  /** Every member's sessions as one array, rebuilt after a change (see `sessions()`). */
  private sessionList: Session[] | null = null;

  constructor(readonly name: string) {
    this.folded = casefold(name);
  }

  /**
   * The sessions of all members, for fan-out: one array walk per relayed message instead of a
   * Map and a Set iterator per member. The server calls `membersChanged()` whenever a member
   * joins or leaves or a member's sessions change; those are the only inputs.
   */
  sessions(): readonly Session[] {
    if (this.sessionList === null) {
      const list: Session[] = [];
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
