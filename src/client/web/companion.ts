/**
 * The web companion: the companion core (core/session.ts) over a browser WebSocket to sealchatd's
 * WebSocket listener (IRCv3 WebSocket, `text.ircv3.net`: one IRC line per message), as SealClient
 * is the core over irc-framework. This file only translates between IRC lines and the core, and
 * keeps what the page shows (rooms, lines, who is there, unread counts) in one model the page
 * renders after every `changed` call. Every rule about keys and text is the core's.
 *
 * Fail closed: text for a room goes out only encrypted under the room's key (or held for its
 * next key); a room without a key, a private message or a STATUSMSG target gets nothing sent and
 * a line saying why. Logging in is SASL PLAIN (PASS when the server offers no SASL).
 */
/// <reference lib="dom" />
import type { PrivateKeyHandle } from '../../crypto/index.js';
import { parseLine, serializeBody, type IrcMessage } from '../../protocol/message.js';
import { KEYBOT_NICK, casefold } from '../../protocol/names.js';
import {
  CompanionSession, HISTORY_CAPS, SerialQueue, carryOut, heldTextNotice, keyChangesSuffix, missingMessagesText, sendLine,
  type CompanionAction, type IncomingResult, type KeybotPinSource, type KeybotState, type MembershipKind,
} from '../core/index.js';
import { MemoryBook, memoryFileFor } from '../core/memory.js';
import { path, storageHome } from '../core/storage.js';

/** One line the page shows. */
export interface ChatLine {
  id: number;
  /** ms since the Unix epoch (the server's time when it said). */
  time: number;
  kind: 'message' | 'own' | 'notice' | 'warning' | 'plaintext' | 'keybot';
  nick?: string;
  text: string;
  /** A room message whose signature verified (the core shows no other as a message). */
  verified?: boolean;
  /** Said while we were away: from the server's history (the history catch-up, core/history.ts). */
  history?: boolean;
}

/** One room (or the status view) as the page shows it. */
export interface RoomView {
  name: string;
  lines: ChatLine[];
  /** Nicks in the channel now (NAMES, JOIN, PART, QUIT, KICK). */
  nicks: Set<string>;
  unread: number;
  joined: boolean;
}

export type ConnectionState = 'connecting' | 'logging-in' | 'online' | 'closed';

export interface WebCompanionOptions {
  /** `ws://host:port/` or `wss://…` */
  url: string;
  account: string;
  password: string;
  /**
   * The unlocked key, or its unlocking under way: the connection and the login (SASL, which the
   * server checks with its password hash) need no key, so the page starts them while the key is
   * unsealed and unlocked, and the core starts at the welcome once the key is there. A key that
   * does not come (a rejected promise) closes the connection with its reason before anything is
   * sent or shown.
   */
  privateKey: PrivateKeyHandle | Promise<PrivateKeyHandle>;
  /** Pin keybot to this fingerprint (else trust on first use, remembered in this browser). */
  keybotFingerprint?: string;
  /** Called after every change of the model. */
  changed?: () => void;
}

/** The status view's name (not a channel name: those start with # or &). */
export const STATUS = '*sealchat';
const MAX_LINES = 2000;

const PINNED_HOW: Record<KeybotPinSource, string> = {
  'first-use': 'trusted on first use: compare it with the fingerprint your administrator gives you',
  known: 'as pinned before in this browser',
  configured: 'matches the fingerprint you gave',
  'option-key': 'the key you gave',
};

function isChannel(name: string): boolean {
  return name.startsWith('#') || name.startsWith('&');
}

function nickOf(source: string | null): string | undefined {
  if (!source) return undefined;
  const bang = source.indexOf('!');
  if (bang > 0) return source.slice(0, bang);
  return source.includes('.') ? undefined : source;
}

function base64Utf8(text: string): string {
  let s = '';
  for (const b of new TextEncoder().encode(text)) s += String.fromCharCode(b);
  return btoa(s);
}

/** The web companion's connection and model; see the file comment. */
export class WebCompanion {
  state: ConnectionState = 'connecting';
  /** Why the connection ended, when it did. */
  closedReason: string | undefined;
  keybot: KeybotState = { status: 'fetching' };
  readonly rooms = new Map<string, RoomView>();
  active = STATUS;
  nick: string;
  readonly server: string;
  private readonly ws: WebSocket;
  private readonly queue = new SerialQueue();
  private core: CompanionSession | undefined;
  private sweepTimer: ReturnType<typeof setInterval> | undefined;
  private nextId = 1;
  private capLs: string[] = [];
  /** Capabilities the server acknowledged, and its ISUPPORT CHATHISTORY limit: what the history catch-up needs. */
  private readonly caps = new Set<string>();
  private historyLimit: string | undefined;
  private readonly book: MemoryBook;

  constructor(private readonly o: WebCompanionOptions) {
    this.nick = o.account;
    const u = new URL(o.url);
    this.server = `${u.hostname}:${u.port || (u.protocol === 'wss:' ? '443' : '80')}`;
    this.book = new MemoryBook(memoryFileFor(this.knownKeybotsFile));
    // A key that fails before the welcome is handled there (and by the page); not an unhandled rejection.
    Promise.resolve(o.privateKey).catch(() => undefined);
    this.room(STATUS);
    this.ws = new WebSocket(o.url, ['text.ircv3.net']);
    this.ws.onopen = () => {
      this.state = 'logging-in';
      this.send('CAP LS 302');
      this.send(`NICK ${o.account}`);
      this.send(`USER ${o.account} 0 * :${o.account}`);
      this.changed();
    };
    this.ws.onmessage = (ev: MessageEvent) => {
      const text = typeof ev.data === 'string' ? ev.data : '';
      this.enqueue(() => this.fromServer(text));
    };
    this.ws.onclose = () => this.enqueue(() => this.closed(this.closedReason ?? 'the connection closed'));
    this.ws.onerror = () => (this.closedReason ??= `cannot reach ${o.url}`);
  }

  /** The pins (known keybots) and the memory of this browser, in IndexedDB (core/storage.browser.ts). */
  private get knownKeybotsFile(): string {
    return path.join(storageHome(), 'known_keybots.json');
  }

  // ---- the page's verbs ---------------------------------------------------------------------

  /** What the user typed in the current view: text, or a /command. */
  input(text: string): void {
    if (text.trim() === '') return;
    if (text.startsWith('/') && !text.startsWith('//')) return this.command(text.split(/\r?\n/)[0]!.slice(1));
    // An IRC message is one line: several typed lines (Shift+Enter) go out as several messages.
    for (const line of (text.startsWith('//') ? text.slice(1) : text).split(/\r?\n/)) if (line.trim() !== '') this.say(this.active, line);
  }

  /** Make `name` the current view (its unread count goes to 0). */
  show(name: string): void {
    const r = this.rooms.get(casefold(name));
    if (!r) return;
    this.active = r.name;
    r.unread = 0;
    this.changed();
  }

  /** Members with a key in `room` and whether each is in the channel now. */
  presence(room: string): Array<{ nick: string; online: boolean; keyed: boolean; service?: true }> {
    const view = this.rooms.get(casefold(room));
    const info = this.core?.engine.roomInfo(room);
    const out = new Map<string, { nick: string; online: boolean; keyed: boolean }>();
    for (const m of info?.hasKey ? info.members : []) out.set(casefold(m), { nick: m, online: false, keyed: true });
    for (const n of view?.nicks ?? []) {
      const f = casefold(n);
      out.set(f, { nick: n, online: true, keyed: out.get(f)?.keyed ?? false });
    }
    return [...out.values()]
      .map((p) => (casefold(p.nick) === KEYBOT_NICK ? { ...p, service: true as const } : p))
      .sort((a, b) => a.nick.localeCompare(b.nick));
  }

  /** The room's key as the page shows it. */
  keyInfo(room: string): { epoch?: number; hasKey: boolean } {
    const info = this.core?.engine.roomInfo(room);
    return info?.hasKey ? { epoch: info.epoch!, hasKey: true } : { hasKey: false };
  }

  quit(): void {
    if (this.ws.readyState === WebSocket.OPEN) this.send('QUIT :leaving');
    this.closedReason = 'you logged out';
    this.ws.close();
  }

  // ---- plumbing -----------------------------------------------------------------------------

  private enqueue(fn: () => Promise<void> | void): void {
    this.queue.run(fn).catch((err: Error) => this.line(STATUS, { kind: 'warning', text: `internal error: ${err.message}` }));
  }

  private send(line: string): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(line);
  }

  private changed(): void {
    this.o.changed?.();
  }

  private room(name: string): RoomView {
    const f = casefold(name);
    let r = this.rooms.get(f);
    if (!r) {
      r = { name, lines: [], nicks: new Set(), unread: 0, joined: false };
      this.rooms.set(f, r);
    }
    return r;
  }

  private line(room: string, l: Omit<ChatLine, 'id' | 'time'> & { time?: number }): void {
    const r = this.room(room);
    r.lines.push({ id: this.nextId++, time: l.time ?? Date.now(), ...l });
    if (r.lines.length > MAX_LINES) r.lines.splice(0, r.lines.length - MAX_LINES);
    if (casefold(r.name) !== casefold(this.active) && (l.kind === 'message' || l.kind === 'plaintext')) r.unread++;
    this.changed();
  }

  /** Where to show something about no room in particular: the current view. */
  private get here(): string {
    return this.active;
  }

  private act(actions: CompanionAction[]): void {
    carryOut(actions, {
      send: (a) => this.send(sendLine(a)),
      result: (r) => this.deliver(r),
      keybot: (state) => this.keybotChanged(state),
      warning: (text) => this.line(this.here, { kind: 'warning', text }),
      released: (a) => this.line(a.room, { kind: 'notice', text: heldTextNotice(a) }),
      unsent: (a) => this.line(a.room, { kind: 'warning', text: heldTextNotice(a) }),
      raw: (line) => this.send(line),
      history: (shown) => {
        // What was said while we were away, in the server's order with its times, then the summary.
        for (const r of shown.results) {
          if (r.kind === 'message') this.line(r.room, { kind: 'message', nick: r.from, text: r.text, verified: true, history: true, time: r.time ?? Date.now() });
          else this.deliver(r);
        }
        if (shown.summary !== '') this.line(shown.room, { kind: 'notice', text: shown.summary });
      },
    });
  }

  private keybotChanged(k: KeybotState): void {
    this.keybot = k;
    if (k.status === 'pinned') {
      this.line(STATUS, { kind: 'notice', text: `end-to-end encryption is on; keybot's key ${k.fingerprint} is pinned (${PINNED_HOW[k.source]})` });
    } else if (k.status === 'mismatch') {
      this.line(this.here, { kind: 'warning', text: `WARNING: ${k.reason}` });
    } else if (k.status === 'unavailable') {
      this.line(STATUS, { kind: 'warning', text: `${k.reason}; encrypted rooms get no keys until keybot's key is pinned` });
    }
  }

  // ---- text and commands out ---------------------------------------------------------------

  private say(target: string, text: string): void {
    if (target === STATUS) {
      this.line(STATUS, { kind: 'warning', text: 'NOT SENT: this is the status view; pick a room, or open one with /invite NICK' });
      return;
    }
    if (!this.core) {
      this.line(target, { kind: 'warning', text: 'NOT SENT: still logging in' });
      return;
    }
    const r = this.core.send({ target, text, hold: true });
    if (r.status === 'send') {
      for (const l of r.lines) this.send(serializeBody(null, 'PRIVMSG', [target, l]));
      this.line(target, { kind: 'own', nick: this.nick, text, verified: true });
    } else if (r.status === 'held') {
      this.line(target, { kind: 'own', nick: this.nick, text: `${text}  (held: ${r.reason})` });
    } else if (r.code === 'not-encrypted') {
      // Fail closed: this page sends only encrypted text.
      this.line(target, { kind: 'warning', text: `NOT SENT: ${target} has no room key (it is not a sealchat room), and this page sends only encrypted text; nothing was sent` });
    } else {
      this.line(target, { kind: 'warning', text: `NOT SENT: ${r.reason}` });
    }
  }

  private command(text: string): void {
    const [cmd = '', ...args] = text.trim().split(/\s+/);
    const rest = text.trim().slice(cmd.length).trim();
    switch (cmd.toLowerCase()) {
      case 'invite':
        if (args.length === 0) return this.line(this.here, { kind: 'warning', text: 'usage: /invite NICK... (a new room) or /invite #room NICK...' });
        return this.toKeybot(`invite ${rest}`);
      case 'leave':
      case 'part': {
        const room = args[0] ?? this.active;
        if (!isChannel(room)) return this.line(this.here, { kind: 'warning', text: 'usage: /leave [#room]' });
        this.send(`PART ${room}`);
        return;
      }
      case 'join':
        if (!args[0] || !isChannel(args[0])) return this.line(this.here, { kind: 'warning', text: 'usage: /join #room' });
        if (this.rooms.get(casefold(args[0]))?.joined) return this.show(args[0]);
        this.send(`JOIN ${args[0]}`);
        return;
      case 'whois':
        if (!args[0]) return this.line(this.here, { kind: 'warning', text: 'usage: /whois NICK' });
        this.send(`WHOIS ${args[0]}`);
        return;
      case 'keybot':
        return this.toKeybot(rest || 'help');
      case 'msg':
        if (args[0] && casefold(args[0]) === KEYBOT_NICK) return this.toKeybot(rest.slice(args[0].length).trim() || 'help');
        return this.line(this.here, { kind: 'warning', text: `NOT SENT: private messages are not encrypted; open a room with /invite ${args[0] ?? 'NICK'}` });
      case 'help':
        return this.line(this.here, {
          kind: 'notice',
          text: 'commands: /invite NICK... (new room), /invite #room NICK..., /leave [#room], /join #room, /whois NICK, /keybot TEXT (any keybot command), /help',
        });
      default:
        return this.line(this.here, { kind: 'warning', text: `unknown command /${cmd} (try /help)` });
    }
  }

  private toKeybot(text: string): void {
    this.core?.typedToKeybot(text);
    this.send(serializeBody(null, 'PRIVMSG', [KEYBOT_NICK, text]));
    this.line(this.here, { kind: 'own', nick: `${this.nick} → keybot`, text });
  }

  // ---- lines in ----------------------------------------------------------------------------

  private async fromServer(raw: string): Promise<void> {
    const parsed = parseLine(raw);
    if (!parsed.ok) return;
    const m = parsed.message;
    const nick = nickOf(m.source);
    const time = Date.parse(m.tags.get('time') ?? '') || Date.now();
    const core = this.core;
    switch (m.command) {
      case 'PING':
        return this.send(serializeBody(null, 'PONG', m.params));
      case 'CAP':
        return this.cap(m);
      case 'AUTHENTICATE':
        if (m.params[0] === '+') this.send(`AUTHENTICATE ${base64Utf8(`${this.o.account}\0${this.o.account}\0${this.o.password}`)}`);
        return;
      case '903':
        this.send('CAP END');
        return;
      case '904':
      case '905':
      case '464':
        this.closedReason = 'wrong account or password';
        this.line(STATUS, { kind: 'warning', text: 'login refused: wrong account or password' });
        this.ws.close();
        return;
      case 'ERROR':
        this.closedReason ??= m.params[0] ?? 'the server closed the connection';
        return;
      case '001':
        return this.welcome(m);
      case '005':
        for (const p of m.params.slice(1, -1)) {
          const hit = /^CHATHISTORY(?:=(\d+))?$/i.exec(p);
          if (hit) this.historyLimit = hit[1] ?? '0';
        }
        if (core) this.act(core.capabilities([...this.caps], this.historyLimit));
        return;
      case 'BATCH': {
        if (!core) return;
        const ref = (m.params[0] ?? '').slice(1);
        const start = (m.params[0] ?? '').startsWith('+');
        const b = core.batch({ ref, start, ...(m.params[1] !== undefined ? { type: m.params[1] } : {}), ...(m.params[2] !== undefined ? { target: m.params[2] } : {}) });
        this.act(b.actions);
        return;
      }
      case 'FAIL':
        if ((m.params[0] ?? '').toUpperCase() === 'CHATHISTORY') this.line(STATUS, { kind: 'warning', text: `no history: ${m.params[m.params.length - 1] ?? ''} (${m.params[1] ?? ''})` });
        return;
      case 'PRIVMSG':
      case 'NOTICE': {
        if (!core || nick === undefined || m.params.length < 2) {
          if (m.command === 'NOTICE' && m.params[1]) this.line(STATUS, { kind: 'notice', nick: nick ?? 'server', text: m.params[1], time });
          return;
        }
        const tags: { msgid?: string; time?: string; batch?: string } = {};
        for (const k of ['msgid', 'time', 'batch'] as const) {
          const v = m.tags.get(k);
          if (v !== undefined) tags[k] = v;
        }
        const { result, actions } = await core.received({ from: nick, target: m.params[0]!, command: m.command, text: m.params[1]!, tags });
        this.deliver(result, { from: nick, target: m.params[0]!, text: m.params[1]!, time });
        this.act(actions);
        return;
      }
    }
    if (core && nick !== undefined && casefold(nick) === KEYBOT_NICK) this.act(core.keybotHeard(false));
    switch (m.command) {
      case 'JOIN':
        for (const room of (m.params[0] ?? '').split(',')) this.membership('join', room, nick, time);
        return;
      case 'PART':
        for (const room of (m.params[0] ?? '').split(',')) this.membership('part', room, nick, time);
        return;
      case 'KICK':
        return this.membership('kick', m.params[0] ?? '', m.params[1], time);
      case 'QUIT':
      case 'NICK':
        return this.membership('quit', undefined, nick, time);
      case '353': {
        const r = this.room(m.params[2] ?? '');
        for (const n of (m.params[3] ?? '').split(' ')) if (n) r.nicks.add(n.replace(/^[~&@%+]+/, ''));
        this.changed();
        return;
      }
      case '401':
        if (core && casefold(m.params[1] ?? '') === KEYBOT_NICK) {
          const { taken, actions } = core.keybotOffline();
          this.act(actions);
          if (taken) return;
        }
        return this.line(this.here, { kind: 'notice', text: `${m.params[1]}: ${m.params[2] ?? 'no such nick'}` });
      // WHOIS (RFC 2812 §3.6.2): who is online, as one line each.
      case '311':
        return this.line(this.here, { kind: 'notice', text: `${m.params[1]} is online (${m.params[2]}@${m.params[3]}): ${m.params[5] ?? ''}` });
      case '317':
        return this.line(this.here, { kind: 'notice', text: `${m.params[1]} idle ${m.params[2]} s, signed on ${new Date(Number(m.params[3]) * 1000).toLocaleString()}` });
      case '330':
        return this.line(this.here, { kind: 'notice', text: `${m.params[1]} is logged in as ${m.params[2]}` });
      case '301':
        return this.line(this.here, { kind: 'notice', text: `${m.params[1]} is away: ${m.params[2] ?? ''}` });
      case '403':
      case '405':
      case '471':
      case '473':
      case '474':
      case '475':
        return this.line(this.here, { kind: 'warning', text: `${m.params[1]}: ${m.params[2] ?? ''}` });
      default:
        return;
    }
  }

  private cap(m: IrcMessage): void {
    const sub = (m.params[1] ?? '').toUpperCase();
    if (sub === 'LS') {
      const more = m.params[2] === '*';
      this.capLs.push(...(m.params[more ? 3 : 2] ?? '').split(' ').map((c) => c.split('=')[0]!));
      if (more) return;
      const want = ['sasl', ...HISTORY_CAPS].filter((c) => this.capLs.includes(c));
      if (!want.includes('sasl')) {
        // No SASL: the account and password as PASS (sealchatd takes PASS until registration ends).
        this.send(serializeBody(null, 'PASS', [`${this.o.account}:${this.o.password}`]));
      }
      if (want.length === 0) return this.send('CAP END');
      this.send(`CAP REQ :${want.join(' ')}`);
    } else if (sub === 'ACK') {
      const acked = (m.params[2] ?? '').split(' ').filter((c) => c !== '');
      for (const c of acked) this.caps.add(c.toLowerCase());
      if (acked.includes('sasl')) this.send('AUTHENTICATE PLAIN');
      else this.send('CAP END');
    } else if (sub === 'NAK') {
      this.send(serializeBody(null, 'PASS', [`${this.o.account}:${this.o.password}`]));
      this.send('CAP END');
    }
  }

  private async welcome(m: IrcMessage): Promise<void> {
    const nick = m.params[0] ?? this.o.account;
    this.nick = nick;
    let privateKey: PrivateKeyHandle;
    try {
      privateKey = await this.o.privateKey;
    } catch (err) {
      this.closedReason = `no key: ${(err as Error).message}`;
      this.ws.close();
      return;
    }
    let memory;
    try {
      memory = await this.book.memory(nick, this.server);
    } catch (err) {
      // A memory that cannot be read is never guessed at.
      this.closedReason = `cannot read this browser's sealchat memory: ${(err as Error).message}`;
      this.ws.close();
      return;
    }
    const core = new CompanionSession({
      account: nick,
      server: this.server,
      privateKey,
      memory,
      queue: this.queue,
      knownKeybotsFile: this.knownKeybotsFile,
      ...(this.o.keybotFingerprint ? { keybotFingerprint: this.o.keybotFingerprint } : {}),
    });
    this.core = core;
    this.state = 'online';
    this.line(STATUS, { kind: 'notice', text: `logged in to ${this.server} as ${nick}` });
    this.sweepTimer = setInterval(() => this.enqueue(() => this.act(core.sweep())), 1000);
    this.act(await core.start());
  }

  private membership(kind: MembershipKind, room: string | undefined, nick: string | undefined, time: number): void {
    if (nick === undefined) return;
    const self = casefold(nick) === casefold(this.nick);
    if (room !== undefined) {
      const r = this.room(room);
      if (kind === 'join') {
        r.nicks.add(nick);
        if (self) {
          r.joined = true;
          r.nicks.clear();
          // A room we were put in (an invite) or joined becomes the current one, as in `sealchat chat`.
          this.show(room);
        } else r.lines.push({ id: this.nextId++, time, kind: 'notice', text: `${nick} joined` });
      } else {
        r.nicks.delete(nick);
        if (self) {
          r.joined = false;
          r.lines.push({ id: this.nextId++, time, kind: 'notice', text: kind === 'kick' ? 'you were removed from this room' : 'you left this room; its key is wiped' });
        } else r.lines.push({ id: this.nextId++, time, kind: 'notice', text: kind === 'kick' ? `${nick} was removed` : `${nick} left` });
      }
    } else {
      for (const r of this.rooms.values()) {
        if (r.nicks.delete(nick)) r.lines.push({ id: this.nextId++, time, kind: 'notice', text: `${nick} quit` });
      }
    }
    if (this.core) this.act(this.core.membership({ kind, ...(room !== undefined ? { room } : {}), nick }).actions);
    this.changed();
  }

  /** Show what one result means; `line` is the PRIVMSG/NOTICE it came from, if any. */
  private deliver(r: IncomingResult, line?: { from: string; target: string; text: string; time: number }): void {
    const time = line?.time ?? Date.now();
    switch (r.kind) {
      case 'passthrough':
        if (!line) return;
        if (isChannel(line.target)) this.line(line.target, { kind: 'plaintext', nick: line.from, text: line.text, time });
        else this.line(STATUS, { kind: 'plaintext', nick: line.from, text: `(private, not encrypted) ${line.text}`, time });
        return;
      case 'bot-notice':
        this.line(isChannel(r.target) ? r.target : this.here, { kind: 'keybot', nick: KEYBOT_NICK, text: r.text, time });
        return;
      case 'hidden':
      case 'held':
      case 'proposal':
        return;
      case 'message':
        if (r.missingBefore) this.line(r.room, { kind: 'warning', text: missingMessagesText(r.missingBefore, r.from, r.room), time });
        this.line(r.room, { kind: 'message', nick: r.from, text: r.text, verified: true, time });
        return;
      case 'plaintext-in-room':
        this.line(r.room, { kind: 'plaintext', nick: r.from, text: `[NOT ENCRYPTED, NOT VERIFIED] ${r.text}`, time });
        return;
      case 'undecryptable':
        this.line(r.code === 'not-a-room' ? STATUS : r.room, { kind: 'warning', text: `could not read a message from ${r.from}: ${r.reason}`, time });
        return;
      case 'key': {
        const first = r.previousEpoch === undefined ? ' (first key)' : '';
        this.line(r.room, { kind: 'notice', text: `key: ${r.room} epoch ${r.epoch}${first}, members ${r.members.join(', ')}; verified (signed by keybot)${keyChangesSuffix(r)}`, time });
        return;
      }
      case 'envelope-rejected':
        if (r.code === 'not-newer' && r.room !== undefined && this.core?.engine.roomInfo(r.room)?.epoch === r.epoch) {
          this.line(r.room, { kind: 'notice', text: `key: ${r.room} epoch ${r.epoch} is the one already held` });
          return;
        }
        this.line(r.room ?? STATUS, { kind: 'warning', text: `refused a key envelope from ${r.from}: ${r.reason}`, time });
        return;
    }
  }

  private closed(reason: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.closedReason = reason;
    clearInterval(this.sweepTimer);
    // Room keys live in memory only, for this connection only.
    if (this.core) this.act(this.core.close(reason));
    this.line(STATUS, { kind: 'warning', text: `disconnected: ${reason}` });
  }
}
