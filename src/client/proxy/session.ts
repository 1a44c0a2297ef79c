/**
 * One proxied connection: an unmodified IRC client on one side, the sealchat server on the other
 * (wire.ts holds both sockets), and, from the login on, a CompanionSession (core/session.ts) that
 * sees every PRIVMSG and NOTICE. This file only translates between IRC lines and the core.
 *
 * Server → client: room messages are decrypted and verified, then shown as ordinary PRIVMSGs from
 * their sender; envelope parts disappear; key events, refusals and undecryptable lines become
 * NOTICEs from the pseudo-user `*sealchat`; plaintext someone wrote into an encrypted room is
 * flagged. Everything else passes byte for byte, in arrival order (the session's one queue, which
 * exists from the first line: queue.ts), so a JOIN reaches the client before its room's key notice.
 *
 * Client → server: text to an encrypted room is encrypted (one message may become several lines)
 * or held for the room's next key; text the proxy cannot encrypt is never forwarded into a room —
 * the client gets a NOTICE saying why (fail closed). Private messages go through only to keybot
 * (and CTCP queries/replies), unless the user allowed plaintext.
 *
 * The pseudo-user is `*sealchat` (ZNC's `*status` convention): sealchat account names start with
 * a letter, so no one on the server can send a NOTICE that looks like the proxy's.
 */
import type net from 'node:net';
import { formatAction, parseAction } from '../../protocol/ctcp.js';
import { parseLine, serializeBody, serializeMessage, type IrcMessage } from '../../protocol/message.js';
import { KEYBOT_NICK, casefold } from '../../protocol/names.js';
import type { Logger } from '../../util/log.js';
import { CompanionSession, SerialQueue, carryOut, heldTextNotice, keyChangesSuffix, missingMessagesText, sendLine } from '../core/index.js';
import type { CompanionAction, CompanionSessionOptions, IncomingResult, KeybotPinSource, KeybotState, MemoryBook, MembershipKind, TextCommand } from '../core/index.js';
import { ProxyCaps } from './caps.js';
import { ProxyWire, type Tap, type UpstreamOptions } from './wire.js';

/** The proxy's own nick in NOTICEs it shows the client. */
export const PROXY_NICK = '*sealchat';
const PROXY_SOURCE = `${PROXY_NICK}!sealchat@proxy`;

/** Options of one session (the proxy passes the same to every session): the core's, and the proxy's own. */
export interface ProxySessionOptions extends Omit<CompanionSessionOptions, 'account' | 'server' | 'memory' | 'queue'> {
  upstream: UpstreamOptions;
  /** Only this account may log in through the proxy (the key's owner). */
  account?: string;
  /** Forward plaintext to ordinary channels and to nicks other than keybot (default false). */
  allowPlaintext?: boolean;
  tap?: Tap;
  log?: Logger;
}

/** The tags that are there. */
function definedOnly(t: { msgid: string | undefined; time: string | undefined; batch: string | undefined }): { msgid?: string; time?: string; batch?: string } {
  return Object.fromEntries(Object.entries(t).filter(([, v]) => v !== undefined)) as { msgid?: string; time?: string; batch?: string };
}

/** No CR, LF or NUL can reach the wire through a notice's text. */
function oneLine(text: string): string {
  return text.replace(/[\r\n\0]+/g, ' ');
}

function isChannel(name: string): boolean {
  return name.startsWith('#') || name.startsWith('&');
}

/** The nick of a `nick!user@host` source; undefined for a server. */
function nickOf(source: string | null): string | undefined {
  if (!source) return undefined;
  const bang = source.indexOf('!');
  if (bang > 0) return source.slice(0, bang);
  return source.includes('.') ? undefined : source;
}

const PINNED_HOW: Record<KeybotPinSource, string> = {
  'first-use': 'trusted on first use; compare it with the one your administrator gives you',
  known: 'as pinned before',
  configured: 'matches the fingerprint you configured',
  'option-key': 'the key you gave',
};

/** One proxied connection; see the file comment. */
export class ProxySession {
  private readonly wire: ProxyWire;
  private readonly queue = new SerialQueue();
  /** The companion, from the login (001) on. */
  private core: CompanionSession | undefined;
  /** Our nick: what the client asked for, then what 001 says. */
  private nick: string | undefined;
  private closed = false;
  private sweepTimer: NodeJS.Timeout | undefined;
  /** The full `nick!user@host` last seen per folded nick: released messages need their sender's prefix. */
  private readonly prefixes = new Map<string, string>();
  private readonly closeListeners: Array<() => void> = [];
  /** Capabilities: the client's, and those the proxy adds for the history catch-up (caps.ts). */
  private readonly caps = new ProxyCaps();

  constructor(
    down: net.Socket,
    private readonly o: ProxySessionOptions,
    private readonly book: MemoryBook,
  ) {
    this.wire = new ProxyWire(
      down,
      o.upstream,
      {
        clientLine: (raw) => {
          if (!this.closed) this.fromClient(raw);
        },
        serverLine: (raw) => this.enqueue(() => this.fromServer(raw)),
        tooLong: (side) => {
          if (side === 'client') {
            this.toClient(`ERROR :${PROXY_NICK}: line too long`);
            this.close();
            return;
          }
          this.enqueue(() => {
            this.toClient(`ERROR :${PROXY_NICK}: the server sent a line that is too long`);
            this.close();
          });
        },
        upstreamFailed: (err, connected) => this.upstreamFailed(err, connected),
        serverClosed: () => this.enqueue(() => this.close()),
        clientGone: () => this.clientGone(),
      },
      o.tap,
    );
  }

  /** Called once when both connections are gone. */
  onClose(listener: () => void): void {
    if (this.closed) queueMicrotask(listener);
    else this.closeListeners.push(listener);
  }

  /** Tell the client and the server goodbye (proxy shutdown). */
  shutdown(reason: string): void {
    if (this.closed) return;
    this.notice(this.nick ?? '*', `the sealchat proxy is shutting down (${reason})`);
    this.toServer(`QUIT :${oneLine(reason)}`);
    this.wire.endServer();
    this.enqueue(() => this.close());
  }

  // ---- plumbing ----------------------------------------------------------------------------

  private enqueue(fn: () => Promise<void> | void): void {
    this.queue.run(fn).catch((err: Error) => this.o.log?.error(`proxy session: ${err.message}`, err));
  }

  private toServer(line: string | Buffer): void {
    if (!this.closed) this.wire.toServer(line);
  }

  private toClient(line: string | Buffer): void {
    this.wire.toClient(line);
  }

  /** A NOTICE from the proxy to a room or to the user. */
  private notice(target: string, text: string): void {
    this.toClient(serializeBody(PROXY_SOURCE, 'NOTICE', [target, oneLine(text)]));
  }

  private upstreamFailed(err: Error, connected: boolean): void {
    if (this.closed) return;
    const where = `${this.o.upstream.host}:${this.o.upstream.port}`;
    const why = connected ? `the connection to ${where} failed: ${err.message}` : `cannot reach ${where}: ${err.message}`;
    this.o.log?.warn(why);
    this.enqueue(() => {
      this.notice(this.nick ?? '*', why);
      this.toClient(`ERROR :Closing link: ${oneLine(why)}`);
      this.close();
    });
  }

  private clientGone(): void {
    if (this.closed) return;
    // The client vanished without QUIT (or after it): make sure the server sees us go.
    if (!this.wire.serverGone) {
      this.toServer('QUIT :client disconnected');
      this.wire.endServer();
    }
    this.close();
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweepTimer);
    // Keys live in memory only, for this connection only.
    if (this.core) this.act(this.core.close('the connection to the server closed'));
    this.wire.close();
    for (const l of this.closeListeners.splice(0)) l();
  }

  /** Carry out what the core asked. */
  private act(actions: CompanionAction[]): void {
    carryOut(actions, {
      send: (a) => this.toServer(sendLine(a)),
      result: (r) => this.deliver(r),
      keybot: (state) => this.keybotNotice(state),
      warning: (text) => this.notice(this.nick ?? '*', text),
      released: (a) => this.notice(a.room, heldTextNotice(a)),
      unsent: (a) => this.notice(a.room, heldTextNotice(a)),
      raw: (line) => this.toServer(line),
      history: (shown) => {
        // What was said while we were away, in order: with its server time as a tag for a client
        // that asked for server-time, else with the time in the text; then the summary.
        const tagged = this.caps.clientHas('server-time');
        for (const r of shown.results) {
          if (r.kind !== 'message') {
            this.deliver(r);
            continue;
          }
          const when = new Date(r.time ?? Date.now());
          const mark = `[history ${String(when.getHours()).padStart(2, '0')}:${String(when.getMinutes()).padStart(2, '0')}]`;
          const action = parseAction(r.text);
          const text = tagged ? r.text : action !== undefined ? formatAction(`${mark} ${action}`) : `${mark} ${r.text}`;
          const tags = tagged && r.time !== undefined ? { time: new Date(r.time).toISOString() } : undefined;
          this.toClient(serializeMessage({ ...(tags ? { tags } : {}), source: this.prefixOf(r.from), command: r.command, params: [r.room, text] }));
        }
        if (shown.summary !== '') this.notice(shown.room, shown.summary);
      },
    });
  }

  private keybotNotice(k: KeybotState): void {
    const me = this.nick ?? '*';
    if (k.status === 'pinned') {
      this.notice(me, `end-to-end encryption is on; keybot's key ${k.fingerprint} is pinned (${PINNED_HOW[k.source]})`);
    } else if (k.status === 'mismatch') {
      this.notice(me, `WARNING: ${k.reason}`);
    } else if (k.status === 'unavailable') {
      this.notice(me, `${k.reason}; encrypted rooms get no keys until keybot's key is pinned (retried when keybot is heard from)`);
    }
  }

  // ---- client → server ---------------------------------------------------------------------

  private fromClient(raw: Buffer): void {
    const text = raw.toString('utf8');
    const parsed = parseLine(text);
    if (!parsed.ok) {
      // An overlong or malformed PRIVMSG/NOTICE could be room text: never forward it unread.
      const msg = /^(?:@\S+ +)?(?::\S+ +)?(PRIVMSG|NOTICE) +(\S+)/i.exec(text);
      if (msg) {
        const target = msg[2]!;
        this.notice(isChannel(target) ? target : (this.nick ?? '*'), `NOT SENT: the line is ${parsed.reason === 'too_long' ? 'longer than IRC allows' : 'malformed'}; nothing was sent`);
        return;
      }
      // Anything else: the server answers it (417, 421...); nothing of ours to protect.
      return this.toServer(raw);
    }
    const m = parsed.message;
    switch (m.command) {
      case 'NICK':
        if (!this.core && m.params[0] !== undefined && !this.checkAccount(m.params[0])) return;
        if (!this.core && m.params[0] !== undefined) this.nick = m.params[0];
        return this.toServer(raw);
      case 'PRIVMSG':
      case 'NOTICE':
        if (m.params.length >= 2) return this.outgoingText(m.command, m.params[0]!, m.params[1]!);
        return this.toServer(raw);
      case 'CAP':
        // The client ends its negotiation: first ask for what the history catch-up needs (caps.ts).
        if ((m.params[0] ?? '').toUpperCase() === 'END') for (const line of this.caps.beforeEnd()) this.toServer(line);
        return this.toServer(raw);
      case 'TOPIC':
        if (m.params.length >= 2 && this.core?.engine.isEncryptedRoom(m.params[0]!)) {
          return this.notice(m.params[0]!, 'not set: topics are not encrypted, and this is an encrypted room');
        }
        return this.toServer(raw);
      default:
        return this.toServer(raw);
    }
  }

  private checkAccount(nick: string): boolean {
    const want = this.o.account;
    if (want === undefined || casefold(nick) === casefold(want)) return true;
    const why = `this sealchat proxy holds the key of ${want}; log in as ${want}, not ${nick}`;
    this.notice('*', why);
    this.toClient(`ERROR :Closing link: ${why}`);
    this.wire.destroyServer();
    this.close();
    return false;
  }

  private outgoingText(command: TextCommand, targets: string, text: string): void {
    for (const target of targets.split(',')) {
      if (target === '') continue;
      const folded = casefold(target);
      if (folded === casefold(PROXY_NICK)) {
        if (command === 'PRIVMSG') this.localCommand(text);
        continue;
      }
      const bare = target.replace(/^[~&@%+]+(?=[#&])/, '');
      if (bare !== target) {
        // STATUSMSG (`@#room`): only some members would get it, and they share one key with the rest.
        if (!this.core || this.core.engine.isEncryptedRoom(bare) || !this.o.allowPlaintext) {
          this.notice(bare, `not sent to ${target}: messages to part of a room cannot be encrypted`);
        } else {
          this.toServer(serializeBody(null, command, [target, text]));
        }
        continue;
      }
      if (isChannel(target)) {
        this.roomText(command, target, text);
        continue;
      }
      // A CTCP query or reply (not a /me, which is text) is no one's secret.
      const ctcp = text.startsWith('\x01') && !text.startsWith('\x01ACTION');
      if (folded === KEYBOT_NICK && command === 'PRIVMSG') this.core?.typedToKeybot(text);
      if (folded === KEYBOT_NICK || ctcp || this.o.allowPlaintext) {
        this.toServer(serializeBody(null, command, [target, text]));
        continue;
      }
      if (command === 'PRIVMSG') {
        this.notice(
          this.nick ?? '*',
          `not sent to ${target}: private messages are not encrypted. Open an encrypted room with: /msg ${KEYBOT_NICK} invite ${target}`,
        );
      }
    }
  }

  private roomText(command: TextCommand, room: string, text: string): void {
    if (!this.core) {
      this.notice(room, 'not sent: still logging in');
      return;
    }
    const r = this.core.send({ target: room, text, command, hold: true });
    if (r.status === 'send') {
      for (const line of r.lines) this.toServer(serializeBody(null, command, [room, line]));
      return;
    }
    if (r.status === 'held') {
      this.notice(room, `held: ${r.reason}`);
      return;
    }
    if (r.code === 'not-encrypted' && this.o.allowPlaintext) {
      this.toServer(serializeBody(null, command, [room, text]));
      return;
    }
    const why =
      r.code === 'no-key'
        ? r.reason
        : `${r.reason}, and this proxy sends only encrypted text (start it with --allow-plaintext to use ordinary channels); nothing was sent`;
    this.notice(room, `NOT SENT: ${why}`);
  }

  /** `/msg *sealchat <command>`: what the proxy knows, without asking the server. */
  private localCommand(text: string): void {
    const to = this.nick ?? '*';
    const [cmd = ''] = text.trim().toLowerCase().split(/\s+/);
    if (cmd === 'status' || cmd === 'rooms') {
      const k = this.core?.keybot ?? { status: 'fetching' };
      this.notice(
        to,
        k.status === 'pinned' ? `keybot's key is pinned: ${k.fingerprint}` : k.status === 'fetching' ? "keybot's key is not settled yet" : `keybot's key is not pinned: ${k.reason}`,
      );
      const rooms = this.core?.listRooms() ?? [];
      if (rooms.length === 0) this.notice(to, 'no room keys held');
      for (const r of rooms) {
        this.notice(to, r.hasKey ? `${r.room}: epoch ${r.epoch}, members ${r.members.join(', ')}` : `${r.room}: no key (left or removed)`);
      }
      return;
    }
    this.notice(to, `sealchat proxy commands: status (keybot's key and the room keys held). Rooms come from keybot: /msg ${KEYBOT_NICK} help`);
  }

  // ---- server → client ---------------------------------------------------------------------

  private async fromServer(line: Buffer): Promise<void> {
    let raw = line;
    if (this.closed) return;
    const parsed = parseLine(raw.toString('utf8'));
    if (!parsed.ok) return this.toClient(raw);
    const m = parsed.message;
    const nick = nickOf(m.source);
    if (nick !== undefined && m.source!.includes('!')) {
      if (this.prefixes.size > 4096) this.prefixes.clear();
      this.prefixes.set(casefold(nick), m.source!);
    }
    const core = this.core;
    // Tags the client did not ask for (the proxy enabled them for itself) are taken off (caps.ts).
    const tags = this.caps.tagsFor(m);
    if (tags !== undefined) raw = Buffer.from(serializeMessage({ tags, source: m.source, command: m.command, params: m.params }));
    switch (m.command) {
      case '001':
        return this.welcome(raw, m);
      case '005':
        this.caps.isupport(m);
        if (core) {
          // The network's name, for key registrations (core/key-registration.ts).
          core.isupport(m.params.slice(1, -1));
          this.act(core.capabilities(this.caps.enabled(), this.caps.historyLimit));
        }
        return this.toClient(raw);
      case 'CAP':
        if (this.caps.fromServer(m)) this.toClient(raw);
        return;
      case 'BATCH': {
        const ref = (m.params[0] ?? '').slice(1);
        const start = (m.params[0] ?? '').startsWith('+');
        const taken = core
          ? (() => {
              const b = core.batch({ ref, start, ...(m.params[1] !== undefined ? { type: m.params[1] } : {}), ...(m.params[2] !== undefined ? { target: m.params[2] } : {}) });
              this.act(b.actions);
              return b.taken;
            })()
          : false;
        if (!taken && this.caps.batchVisible()) this.toClient(raw);
        return;
      }
      case 'FAIL':
        // Our history request was refused (a room we are not a member of by the server's books): say so.
        if ((m.params[0] ?? '').toUpperCase() === 'CHATHISTORY' && core?.catchesUp) {
          this.notice(this.nick ?? '*', `no history: ${m.params[m.params.length - 1] ?? ''} (${m.params[1] ?? ''})`);
          // That room's catch-up ends now with what it has (not at its page timeout).
          this.act(core.historyFailed(m.params.slice(2, -1).find((p) => p.startsWith('#'))));
          return;
        }
        return this.toClient(raw);
      case 'PRIVMSG':
      case 'NOTICE': {
        if (!core || nick === undefined || m.params.length < 2) return this.toClient(raw);
        const lineTags = { msgid: m.tags.get('msgid'), time: m.tags.get('time'), batch: m.tags.get('batch') };
        const { result, actions } = await core.received({ from: nick, target: m.params[0]!, command: m.command, text: m.params[1]!, tags: definedOnly(lineTags) });
        this.deliver(result, { raw, m: tags !== undefined ? { ...m, tags } : m });
        this.act(actions);
        return;
      }
    }
    // keybot was heard from: a key we could not get is asked for again (core/keybot.ts).
    if (core && nick !== undefined && casefold(nick) === KEYBOT_NICK) this.act(core.keybotHeard(false));
    switch (m.command) {
      case 'JOIN':
      case 'PART':
        for (const room of (m.params[0] ?? '').split(',')) this.membership(m.command === 'JOIN' ? 'join' : 'part', room, nick);
        return this.toClient(raw);
      case 'INVITE':
        // keybot brings members into its rooms by INVITE on an ordinary IRC network: the core
        // decides whether to join; the client sees the invitation, then the JOIN.
        this.toClient(raw);
        if (core && nick !== undefined) this.act(core.invited({ from: nick, invited: m.params[0] ?? '', channel: m.params[1] ?? '' }));
        return;
      case 'KICK':
        // KICK <room> <nick>: the member removed is the second parameter, not the source.
        this.membership('kick', m.params[0] ?? '', m.params[1]);
        return this.toClient(raw);
      case 'QUIT':
      case 'NICK':
        // A member quit (offline is not leaving: nothing changes for the keys), or changed nick
        // (the core treats it as a quit).
        this.membership('quit', undefined, nick);
        return this.toClient(raw);
      case '401': {
        // Our own `pubkey` request to an offline keybot: answer the fetch, do not show it.
        if (core && casefold(m.params[1] ?? '') === KEYBOT_NICK) {
          const { taken, actions } = core.keybotOffline();
          this.act(actions);
          if (taken) return;
        }
        return this.toClient(raw);
      }
      default:
        return this.toClient(raw);
    }
  }

  /** Someone joined, left or quit (before login there are no keys, so nothing to apply). */
  private membership(kind: MembershipKind, room: string | undefined, nick: string | undefined): void {
    if (nick === undefined || !this.core) return;
    // Held text for a room we left is given up: say so, with the text.
    this.act(this.core.membership({ kind, ...(room !== undefined ? { room } : {}), nick }).actions);
  }

  private async welcome(raw: Buffer, m: IrcMessage): Promise<void> {
    const nick = m.params[0];
    if (nick === undefined || this.core) return this.toClient(raw);
    if (!this.checkAccount(nick)) return;
    this.nick = nick;
    const server = `${this.o.upstream.host}:${this.o.upstream.port}`;
    let memory;
    try {
      // Pins and epochs from this account's earlier connections (core/memory.ts).
      memory = await this.book.memory(nick, server);
    } catch (err) {
      // A memory file that cannot be read is never guessed at: without it no envelope could be judged.
      const why = `cannot read the sealchat memory file: ${(err as Error).message}`;
      this.notice(nick, why);
      this.toClient(`ERROR :Closing link: ${oneLine(why)}`);
      this.close();
      return;
    }
    if (this.closed) return;
    const { upstream: _u, account: _a, allowPlaintext: _p, tap: _t, log: _l, ...companion } = this.o;
    const core = new CompanionSession({ ...companion, account: nick, server, memory, queue: this.queue });
    this.core = core;
    this.act(core.capabilities(this.caps.enabled(), this.caps.historyLimit));
    this.toClient(raw);
    this.sweepTimer = setInterval(() => this.enqueue(() => this.act(core.sweep())), 1000);
    this.sweepTimer.unref();
    this.o.log?.info(`${nick} logged in to ${server}`);
    this.act(await core.start());
  }

  /** Show the client what one result means. `line` is the server line it came from, if any. */
  private deliver(r: IncomingResult, line?: { raw: Buffer; m: IrcMessage }): void {
    const me = this.nick ?? '*';
    switch (r.kind) {
      case 'passthrough':
      case 'bot-notice':
        if (line) this.toClient(line.raw);
        return;
      case 'hidden':
      case 'held':
        return;
      case 'message': {
        if (r.text === '') return;
        if (r.missingBefore) this.notice(r.room, missingMessagesText(r.missingBefore, r.from, r.room));
        const target = line?.m.params[0] ?? r.room;
        const source = line?.m.source ?? this.prefixOf(r.from);
        const tags = line?.m.tags;
        this.toClient(serializeMessage({ ...(tags ? { tags } : {}), source, command: r.command, params: [target, r.text] }));
        return;
      }
      case 'plaintext-in-room': {
        const flag = '[NOT ENCRYPTED, NOT VERIFIED]';
        const action = parseAction(r.text);
        const text = action !== undefined ? formatAction(`${flag} ${action}`) : `${flag} ${r.text}`;
        const source = line?.m.source ?? this.prefixOf(r.from);
        this.toClient(serializeBody(source, r.command, [line?.m.params[0] ?? r.room, text]));
        return;
      }
      case 'undecryptable':
        this.notice(r.code === 'not-a-room' ? me : r.room, `could not read a message from ${r.from}: ${r.reason}`);
        return;
      case 'key': {
        if (r.readOnly) {
          this.notice(r.room, `older key: ${r.room} epoch ${r.epoch} (missed while you were away), members ${r.members.join(', ')}; verified (signed by keybot); for reading history only`);
          return;
        }
        const previous = r.previousEpoch !== undefined ? '' : ' (first key)';
        this.notice(r.room, `key: ${r.room} epoch ${r.epoch}${previous}, members ${r.members.join(', ')}; verified (signed by keybot)${keyChangesSuffix(r)}`);
        return;
      }
      case 'envelope-rejected':
        // keybot re-sent the key we hold (`key #room`): nothing is wrong.
        if (r.code === 'not-newer' && r.room !== undefined && this.core?.engine.roomInfo(r.room)?.epoch === r.epoch) {
          this.notice(r.room, `key: ${r.room} epoch ${r.epoch} is the one already held`);
          return;
        }
        this.notice(r.room ?? me, `refused a key envelope from ${r.from}: ${r.reason}`);
        return;
    }
  }

  private prefixOf(nick: string): string {
    return this.prefixes.get(casefold(nick)) ?? `${nick}!${nick}@sealchat`;
  }
}
