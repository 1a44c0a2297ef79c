/**
 * The proxy's share of capability negotiation (IRCv3 CAP, https://ircv3.net/specs/extensions/capability-negotiation):
 * the history catch-up (core/history.ts) needs `draft/chathistory`, `batch`, `server-time` and
 * `message-tags` on the server connection, whatever the IRC client asked for. The client's own
 * negotiation passes through untouched; when it ends it (`CAP END`), the proxy asks for what is
 * missing and available, and swallows the server's answer to that. Lines to the client then carry
 * only the tags its own capabilities allow (a client that did not ask for message-tags gets none),
 * and no BATCH unless it asked for `batch`.
 */
import { HISTORY_CAPS } from '../core/index.js';
import type { IrcMessage } from '../../protocol/message.js';

function capNames(list: string | undefined): string[] {
  return (list ?? '')
    .split(' ')
    .filter((c) => c !== '')
    .map((c) => c.replace(/=.*$/, '').replace(/^[-~=]/, '').toLowerCase());
}

export class ProxyCaps {
  /** What the server offers (CAP LS), what the client has enabled, what the proxy enabled for itself. */
  private readonly available = new Set<string>();
  private readonly client = new Set<string>();
  private readonly own = new Set<string>();
  /** Our pending CAP REQ (its caps, sorted and joined), to swallow the answer. */
  private ownRequest: string | undefined;
  private asked = false;
  /** The server's ISUPPORT CHATHISTORY value. */
  historyLimit: string | undefined;

  /** Every capability enabled on the server connection. */
  enabled(): string[] {
    return [...new Set([...this.client, ...this.own])];
  }

  /** Has the client itself enabled `cap`? */
  clientHas(cap: string): boolean {
    return this.client.has(cap);
  }

  /**
   * The client sends `CAP END`: the lines to send before it (our own CAP REQ), if the server
   * offers all four history capabilities and the client did not enable them all.
   */
  beforeEnd(): string[] {
    // Once: a CAP END after registration (a client's later negotiation) asks nothing again.
    if (this.asked || !HISTORY_CAPS.every((c) => this.available.has(c))) return [];
    this.asked = true;
    const want = HISTORY_CAPS.filter((c) => !this.client.has(c));
    if (want.length === 0) return [];
    this.ownRequest = [...want].sort().join(' ');
    return [`CAP REQ :${want.join(' ')}`];
  }

  /** A CAP line from the server. Returns false when it answers our own request (do not show it). */
  fromServer(m: IrcMessage): boolean {
    const sub = (m.params[1] ?? '').toUpperCase();
    // `CAP * LS * :…` (more follows) or `CAP * LS :…`.
    const list = m.params[m.params.length - 1];
    if (sub === 'LS' || sub === 'NEW') {
      for (const c of capNames(list)) this.available.add(c);
      return true;
    }
    if (sub === 'ACK' || sub === 'NAK') {
      const caps = capNames(list);
      if (this.ownRequest !== undefined && [...caps].sort().join(' ') === this.ownRequest) {
        this.ownRequest = undefined;
        if (sub === 'ACK') for (const c of caps) this.own.add(c);
        return false;
      }
      if (sub === 'ACK') {
        for (const raw of (list ?? '').split(' ').filter((c) => c !== '')) {
          if (raw.startsWith('-')) this.client.delete(raw.slice(1).toLowerCase());
          else this.client.add(raw.replace(/=.*$/, '').toLowerCase());
        }
      }
      return true;
    }
    if (sub === 'DEL') for (const c of capNames(list)) (this.client.delete(c), this.own.delete(c));
    return true;
  }

  /** An ISUPPORT (005) line: remember CHATHISTORY=<max>. */
  isupport(m: IrcMessage): void {
    for (const p of m.params.slice(1, -1)) {
      const hit = /^CHATHISTORY(?:=(\d+))?$/i.exec(p);
      if (hit) this.historyLimit = hit[1] ?? '0';
    }
  }

  /** Did the proxy enable anything the client did not ask for (so lines need filtering)? */
  get filtering(): boolean {
    return [...this.own].some((c) => !this.client.has(c));
  }

  /** The tags of a server line the client may see, or undefined to keep the line as it is. */
  tagsFor(m: IrcMessage): Map<string, string> | undefined {
    if (!this.filtering || m.tags.size === 0 || this.client.has('message-tags')) return undefined;
    const keep = new Map<string, string>();
    for (const [k, v] of m.tags) {
      if ((k === 'time' && this.client.has('server-time')) || (k === 'batch' && this.client.has('batch')) || (k === 'account' && this.client.has('account-tag'))) keep.set(k, v);
    }
    return keep;
  }

  /** Is a BATCH line for the client's eyes? */
  batchVisible(): boolean {
    return this.client.has('batch') || !this.filtering;
  }
}
