/** A channel: its modes, topic, members and pending invitations. */
import { casefold } from '../names.js';
import type { Client } from './client.js';

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

  constructor(readonly name: string) {
    this.folded = casefold(name);
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
