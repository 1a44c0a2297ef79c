/**
 * One proxied connection: an unmodified IRC client on one side, the sealchat server on the other,
 * and a RoomCryptoEngine in between that sees every PRIVMSG and NOTICE.
 *
 * Server → client: room messages are decrypted and verified, then shown as ordinary PRIVMSGs from
 * their sender; envelope parts disappear; key events, refusals and undecryptable lines become
 * NOTICEs from the pseudo-user `*sealchat`; plaintext someone wrote into an encrypted room is
 * flagged. Everything else passes byte for byte.
 *
 * Client → server: text to an encrypted room is encrypted (one message may become several lines);
 * text the proxy cannot encrypt is never forwarded into a room — the client gets a NOTICE saying
 * why (fail closed). Private messages go through only to keybot (and CTCP queries/replies), unless
 * the user allowed plaintext.
 *
 * The pseudo-user is `*sealchat` (ZNC's `*status` convention): sealchat account names start with
 * a letter, so no one on the server can send a NOTICE that looks like the proxy's.
 *
 * Server lines are handled strictly in arrival order (one queue), so a key envelope is applied
 * before the message after it and a JOIN reaches the client before the key notice for its room.
 *
 * Faults (docs/PROTOCOL.md "Faults"): the room's JOIN, PART, KICK, QUIT and NICK go to
 * RoomMembership (membership.ts), the rules SealClient and the plugin agent apply too: once someone
 * left (or someone unlisted came) the current key is not sent under. Room text typed then is held
 * by the Outbox and sent under the room's next key (`*sealchat` says "held", then "sent"), or
 * reported NOT SENT after 30 s. Only PRIVMSGs to rooms we are in are held.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { PrivateKeyHandle, PublicKeyHandle } from '../../crypto/index.js';
import { KEYBOT_NICK, casefold } from '../../ircd/names.js';
import { parseLine, serializeBody, serializeMessage, type IrcMessage } from '../../ircd/protocol/message.js';
import type { Logger } from '../../util/log.js';
import { RoomCryptoEngine, type IncomingResult, type RoomCryptoEngineOptions } from '../engine.js';
import { ArmorCollector } from '../keybot-key.js';
import { Outbox, type OutboxOptions, type Unsent } from '../outbox.js';
import { settleKeybotKey } from '../keybot-trust.js';
import { RoomMembership, type MembershipKind } from '../membership.js';
import { LineSplitter } from './lines.js';

/** The proxy's own nick in NOTICEs it shows the client. */
export const PROXY_NICK = '*sealchat';
const PROXY_SOURCE = `${PROXY_NICK}!sealchat@proxy`;
const ARMOR_BEGIN = '-----BEGIN PGP PUBLIC KEY BLOCK-----';
/** Pause reading one side while the other has this much unsent. */
const HIGH_WATER = 1 << 20;

export interface UpstreamOptions {
  host: string;
  port: number;
  tls?: boolean;
  /** Verify the server's TLS certificate (default true). */
  rejectUnauthorized?: boolean;
}

/** Options of one session (the proxy passes the same to every session). */
export interface ProxySessionOptions {
  upstream: UpstreamOptions;
  /** The user's unlocked key. */
  privateKey: PrivateKeyHandle;
  /** Only this account may log in through the proxy (the key's owner). */
  account?: string;
  keybotFingerprint?: string;
  keybotPublicKey?: string;
  knownKeybotsFile?: string | false;
  /** Forward plaintext to ordinary channels and to nicks other than keybot (default false). */
  allowPlaintext?: boolean;
  /** How long keybot has to answer `pubkey` (default 10 s). */
  keybotTimeoutMs?: number;
  engine?: Omit<RoomCryptoEngineOptions, 'account' | 'privateKey' | 'keybotKey'>;
  /** How long and how much room text waits for a key it may be sent under (default 30 s). */
  outbox?: Omit<OutboxOptions, 'clock'>;
  /** Every line the proxy writes: 'up' to the server, 'down' to the client (debugging, tests). */
  tap?: (direction: 'up' | 'down', line: string) => void;
  log?: Logger;
}

type KeybotState =
  | { status: 'waiting' }
  | { status: 'pinned'; fingerprint: string }
  | { status: 'unavailable'; reason: string; at: number }
  | { status: 'mismatch'; reason: string };

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

/** No CR, LF or NUL can reach the wire through a notice's text. */
function oneLine(text: string): string {
  return text.replace(/[\r\n\0]+/g, ' ');
}

export class ProxySession {
  private readonly downSplit = new LineSplitter();
  private readonly upSplit = new LineSplitter();
  private up: net.Socket;
  private engine: RoomCryptoEngine | undefined;
  private outbox: Outbox | undefined;
  /** Held texts (id → text), to name them when they are given up. */
  private readonly heldTexts = new Map<number, string>();
  /** The rooms the server has us in, and what JOIN/PART/KICK/QUIT mean for their keys. */
  private rooms: RoomMembership | undefined;
  /** Our nick: what the client asked for, then what 001 says. */
  private nick: string | undefined;
  private queue: Promise<void> = Promise.resolve();
  private closed = false;
  private upConnected = false;
  private sweepTimer: NodeJS.Timeout | undefined;
  private keybot: KeybotState = { status: 'waiting' };
  private pinning = false;
  private keyFetch: { collector: ArmorCollector; started: boolean; done: (r: string | Error) => void } | undefined;
  /** The full `nick!user@host` last seen per folded nick: released messages need their sender's prefix. */
  private readonly prefixes = new Map<string, string>();
  private readonly closeListeners: Array<() => void> = [];

  constructor(
    private readonly down: net.Socket,
    private readonly o: ProxySessionOptions,
  ) {
    down.setNoDelay(true);
    const u = o.upstream;
    this.up = u.tls
      ? tls.connect({
          host: u.host,
          port: u.port,
          rejectUnauthorized: u.rejectUnauthorized ?? true,
          ...(net.isIP(u.host) ? {} : { servername: u.host }),
        })
      : net.connect({ host: u.host, port: u.port });
    this.up.setNoDelay(true);
    this.up.once(u.tls ? 'secureConnect' : 'connect', () => {
      this.upConnected = true;
    });
    this.up.on('data', (chunk: Buffer) => this.onUpData(chunk));
    this.up.on('error', (err: Error) => this.upstreamFailed(err));
    this.up.on('close', () => this.enqueue(() => this.close()));
    this.up.on('drain', () => this.down.resume());
    down.on('data', (chunk: Buffer) => this.onDownData(chunk));
    down.on('error', () => undefined);
    down.on('close', () => this.clientGone());
    down.on('drain', () => this.up.resume());
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
    this.up.end();
    this.enqueue(() => this.close());
  }

  // ---- plumbing ----------------------------------------------------------------------------

  private enqueue(fn: () => Promise<void> | void): void {
    this.queue = this.queue.then(fn).catch((err: Error) => {
      this.o.log?.error(`proxy session: ${err.message}`, err);
    });
  }

  private onDownData(chunk: Buffer): void {
    const lines = this.downSplit.push(chunk);
    if (lines === null) {
      this.toClient(`ERROR :${PROXY_NICK}: line too long`);
      this.close();
      return;
    }
    for (const line of lines) {
      if (this.closed) return;
      this.fromClient(line);
    }
  }

  private onUpData(chunk: Buffer): void {
    const lines = this.upSplit.push(chunk);
    if (lines === null) {
      this.enqueue(() => {
        this.toClient(`ERROR :${PROXY_NICK}: the server sent a line that is too long`);
        this.close();
      });
      return;
    }
    for (const line of lines) this.enqueue(() => this.fromServer(line));
  }

  private toServer(line: string | Buffer): void {
    if (this.closed || this.up.destroyed) return;
    this.o.tap?.('up', line.toString());
    const ok = this.up.write(Buffer.concat([typeof line === 'string' ? Buffer.from(line) : line, Buffer.from('\r\n')]));
    if (!ok && this.up.writableLength > HIGH_WATER) this.down.pause();
  }

  private toClient(line: string | Buffer): void {
    if (this.down.destroyed || !this.down.writable) return;
    this.o.tap?.('down', line.toString());
    const ok = this.down.write(Buffer.concat([typeof line === 'string' ? Buffer.from(line) : line, Buffer.from('\r\n')]));
    if (!ok && this.down.writableLength > HIGH_WATER) this.up.pause();
  }

  /** A NOTICE from the proxy to a room or to the user. */
  private notice(target: string, text: string): void {
    this.toClient(serializeBody(PROXY_SOURCE, 'NOTICE', [target, oneLine(text)]));
  }

  private upstreamFailed(err: Error): void {
    if (this.closed) return;
    const where = `${this.o.upstream.host}:${this.o.upstream.port}`;
    const why = this.upConnected ? `the connection to ${where} failed: ${err.message}` : `cannot reach ${where}: ${err.message}`;
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
    if (!this.up.destroyed) {
      this.toServer('QUIT :client disconnected');
      this.up.end();
    }
    this.close();
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweepTimer);
    this.keyFetch?.done(new Error('the connection closed'));
    if (this.outbox) this.unsent(this.outbox.drop('the connection to the server closed; nothing was sent'));
    this.rooms?.clear();
    // Keys live in memory only, for this connection only.
    for (const r of this.engine?.listRooms() ?? []) this.engine!.forgetRoom(r.room);
    this.down.end();
    this.up.end();
    setTimeout(() => {
      this.down.destroy();
      this.up.destroy();
    }, 2000).unref();
    for (const l of this.closeListeners.splice(0)) l();
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
        if (!this.engine && m.params[0] !== undefined && !this.checkAccount(m.params[0])) return;
        if (!this.engine && m.params[0] !== undefined) this.nick = m.params[0];
        return this.toServer(raw);
      case 'PRIVMSG':
      case 'NOTICE':
        if (m.params.length >= 2) return this.outgoingText(m);
        return this.toServer(raw);
      case 'TOPIC':
        if (m.params.length >= 2 && this.engine?.isEncryptedRoom(m.params[0]!)) {
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
    this.up.destroy();
    this.close();
    return false;
  }

  private outgoingText(m: IrcMessage): void {
    const command = m.command;
    const [targets, text] = m.params as [string, string];
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
        if (!this.engine || this.engine.isEncryptedRoom(bare) || !this.o.allowPlaintext) {
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
      const ctcp = text.startsWith('\x01') && !text.startsWith('\x01ACTION');
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

  private roomText(command: string, room: string, text: string): void {
    if (!this.engine) {
      this.notice(room, 'not sent: still logging in');
      return;
    }
    // Only PRIVMSGs are held (the outbox sends what it held as PRIVMSGs), in rooms we are in,
    // and not once keybot's key was refused (no key will come).
    const mayHold = command === 'PRIVMSG' && this.rooms!.has(room) && this.keybot.status !== 'mismatch';
    const r = this.outbox!.submit({ room, text, mayHold });
    if (r.status === 'send') {
      for (const line of r.lines) this.toServer(serializeBody(null, command, [room, line]));
      return;
    }
    if (r.status === 'held') {
      this.heldTexts.set(r.id, text);
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

  /** Send what the outbox can encrypt now (after a new key). */
  private flushOutbox(): void {
    for (const r of this.outbox?.release() ?? []) {
      this.heldTexts.delete(r.id);
      for (const line of r.lines) this.toServer(serializeBody(null, 'PRIVMSG', [r.room, line]));
      this.notice(r.room, `sent: a held message went out under epoch ${r.epoch} (held ${(r.heldMs / 1000).toFixed(1)} s)`);
    }
  }

  /** Held text given up: tell the user, with the text. */
  private unsent(list: Unsent[]): void {
    for (const u of list) {
      const text = this.heldTexts.get(u.id);
      this.heldTexts.delete(u.id);
      this.notice(u.room, `NOT SENT: ${u.reason}${text !== undefined ? `: ${JSON.stringify(text)}` : ''}`);
    }
  }

  /** `/msg *sealchat <command>`: what the proxy knows, without asking the server. */
  private localCommand(text: string): void {
    const to = this.nick ?? '*';
    const [cmd = ''] = text.trim().toLowerCase().split(/\s+/);
    if (cmd === 'status' || cmd === 'rooms') {
      const k = this.keybot;
      this.notice(
        to,
        k.status === 'pinned'
          ? `keybot's key is pinned: ${k.fingerprint}`
          : k.status === 'waiting'
            ? "keybot's key is not settled yet"
            : `keybot's key is not pinned: ${k.reason}`,
      );
      const rooms = this.engine?.listRooms() ?? [];
      if (rooms.length === 0) this.notice(to, 'no room keys held');
      for (const r of rooms) {
        this.notice(to, r.hasKey ? `${r.room}: epoch ${r.epoch}, members ${r.members.join(', ')}` : `${r.room}: no key (left or removed)`);
      }
      return;
    }
    this.notice(to, `sealchat proxy commands: status (keybot's key and the room keys held). Rooms come from keybot: /msg ${KEYBOT_NICK} help`);
  }

  // ---- server → client ---------------------------------------------------------------------

  private async fromServer(raw: Buffer): Promise<void> {
    if (this.closed) return;
    const parsed = parseLine(raw.toString('utf8'));
    if (!parsed.ok) return this.toClient(raw);
    const m = parsed.message;
    const nick = nickOf(m.source);
    if (nick !== undefined && m.source!.includes('!')) {
      if (this.prefixes.size > 4096) this.prefixes.clear();
      this.prefixes.set(casefold(nick), m.source!);
    }
    if (nick !== undefined && casefold(nick) === KEYBOT_NICK) this.maybeRetryKeybot();
    switch (m.command) {
      case '001':
        return this.welcome(raw, m);
      case 'PRIVMSG':
      case 'NOTICE':
        if (!this.engine || nick === undefined || m.params.length < 2) return this.toClient(raw);
        return this.incomingText(raw, m, nick);
      case 'JOIN':
      case 'PART':
        for (const room of (m.params[0] ?? '').split(',')) this.membership(m.command === 'JOIN' ? 'join' : 'part', room, nick);
        return this.toClient(raw);
      case 'KICK':
        // KICK <room> <nick>: the member removed is the second parameter, not the source.
        this.membership('kick', m.params[0] ?? '', m.params[1]);
        return this.toClient(raw);
      case 'QUIT':
      case 'NICK':
        // A member quit, or changed nick (keybot treats that as a quit: the new nick holds no
        // key): the keys they hold may no longer be sent under.
        this.membership('quit', undefined, nick);
        return this.toClient(raw);
      case '401':
        // Our own `pubkey` request to an offline keybot: answer the fetch, do not show it.
        if (this.keyFetch && !this.keyFetch.started && casefold(m.params[1] ?? '') === KEYBOT_NICK) {
          this.keyFetch.done(new Error('keybot is not online'));
          return;
        }
        return this.toClient(raw);
      default:
        return this.toClient(raw);
    }
  }

  /** Someone joined, left or quit (before login there are no keys, so nothing to apply). */
  private membership(kind: MembershipKind, room: string | undefined, nick: string | undefined): void {
    if (nick === undefined || !this.rooms) return;
    // Held text for a room we left is given up: say so, with the text.
    this.unsent(this.rooms.apply({ kind, room, nick }).unsent);
  }

  private welcome(raw: Buffer, m: IrcMessage): void {
    const nick = m.params[0];
    if (nick === undefined || this.engine) return this.toClient(raw);
    if (!this.checkAccount(nick)) return;
    this.nick = nick;
    this.engine = new RoomCryptoEngine({ ...this.o.engine, account: nick, privateKey: this.o.privateKey });
    this.outbox = new Outbox(this.engine, this.o.outbox ?? {});
    this.rooms = new RoomMembership(this.engine, this.outbox);
    this.toClient(raw);
    this.sweepTimer = setInterval(
      () =>
        this.enqueue(() => {
          this.deliverAll(this.engine!.sweep());
          this.unsent(this.outbox!.expire());
        }),
      1000,
    );
    this.sweepTimer.unref();
    this.o.log?.info(`${nick} logged in to ${this.o.upstream.host}:${this.o.upstream.port}`);
    void this.pinKeybot();
  }

  private async incomingText(raw: Buffer, m: IrcMessage, from: string): Promise<void> {
    const r = await this.engine!.handleIncoming({ from, target: m.params[0]!, command: m.command as 'PRIVMSG' | 'NOTICE', text: m.params[1]! });
    this.deliver(r, { raw, m });
  }

  private deliverAll(results: IncomingResult[]): void {
    for (const r of results) this.deliver(r);
  }

  /** Show the client what one result means. `line` is the server line it came from, if any. */
  private deliver(r: IncomingResult, line?: { raw: Buffer; m: IrcMessage }): void {
    const me = this.nick ?? '*';
    switch (r.kind) {
      case 'passthrough':
        if (line) this.toClient(line.raw);
        return;
      case 'hidden':
      case 'held':
        return;
      case 'bot-notice':
        if (line && this.keyLine(r.target, r.text)) return;
        if (line) this.toClient(line.raw);
        return;
      case 'message': {
        if (r.text === '') return;
        const target = line?.m.params[0] ?? r.room;
        const source = line?.m.source ?? this.prefixOf(r.from);
        const tags = line?.m.tags;
        this.toClient(serializeMessage({ ...(tags ? { tags } : {}), source, command: r.command, params: [target, r.text] }));
        return;
      }
      case 'plaintext-in-room': {
        const flag = '[NOT ENCRYPTED, NOT VERIFIED]';
        const action = /^\x01ACTION ([\s\S]*?)\x01?$/.exec(r.text);
        const text = action ? `\x01ACTION ${flag} ${action[1]}\x01` : `${flag} ${r.text}`;
        const source = line?.m.source ?? this.prefixOf(r.from);
        this.toClient(serializeBody(source, r.command, [line?.m.params[0] ?? r.room, text]));
        return;
      }
      case 'undecryptable':
        this.notice(r.code === 'not-a-room' ? me : r.room, `could not read a message from ${r.from}: ${r.reason}`);
        return;
      case 'key': {
        const previous = r.previousEpoch !== undefined ? '' : ' (first key)';
        this.notice(r.room, `key: ${r.room} epoch ${r.epoch}${previous}, members ${r.members.join(', ')}; verified (signed by keybot)`);
        // A new epoch: its member list is the room as it is now, so it may be sent under.
        this.outbox?.trust.keyInstalled(r.room);
        this.deliverAll(r.released);
        this.flushOutbox();
        return;
      }
      case 'envelope-rejected':
        // keybot re-sent the key we hold (`key #room`): nothing is wrong.
        if (r.code === 'not-newer' && r.room !== undefined && this.engine?.roomInfo(r.room)?.epoch === r.epoch) {
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

  // ---- keybot's key ------------------------------------------------------------------------

  /** A keybot NOTICE to us while we fetch its key: consume it if it belongs to the key. */
  private keyLine(target: string, text: string): boolean {
    const f = this.keyFetch;
    if (!f || !this.rooms?.isSelf(target)) return false;
    const step = f.collector.push(text);
    if (text.trim() === ARMOR_BEGIN) f.started = true;
    if (step.status === 'done') {
      f.done(step.armored);
      return true;
    }
    if (step.status === 'more') return true;
    if (f.started) {
      f.done(new Error(`keybot's key was interrupted (${step.reason})`));
      return false;
    }
    // keybot does not know `pubkey` (`unknown command "pubkey"`) or throttles us: that answer is
    // ours, not the user's. Other lines (a reply to the user's own command) pass.
    if (/"pubkey"|^slow down/i.test(text)) {
      f.done(new Error(`keybot answered: ${text}`));
      return true;
    }
    return false;
  }

  private fetchKeybotKey(): Promise<string> {
    return new Promise((resolve, reject) => {
      const ms = this.o.keybotTimeoutMs ?? 10_000;
      const timer = setTimeout(() => done(new Error(`keybot did not answer "pubkey" within ${Math.round(ms / 1000)} s`)), ms);
      timer.unref();
      const done = (r: string | Error): void => {
        clearTimeout(timer);
        if (this.keyFetch?.done === done) this.keyFetch = undefined;
        if (r instanceof Error) reject(r);
        else resolve(r);
      };
      this.keyFetch = { collector: new ArmorCollector(), started: false, done };
      this.toServer(`PRIVMSG ${KEYBOT_NICK} :pubkey`);
    });
  }

  private async pinKeybot(): Promise<void> {
    if (this.pinning || this.closed) return;
    this.pinning = true;
    try {
      const u = this.o.upstream;
      const outcome = await settleKeybotKey({
        server: `${u.host}:${u.port}`,
        fetch: () => this.fetchKeybotKey(),
        ...(this.o.keybotFingerprint !== undefined ? { keybotFingerprint: this.o.keybotFingerprint } : {}),
        ...(this.o.keybotPublicKey !== undefined ? { keybotPublicKey: this.o.keybotPublicKey } : {}),
        ...(this.o.knownKeybotsFile !== undefined ? { knownKeybotsFile: this.o.knownKeybotsFile } : {}),
      });
      if (this.closed) return;
      const me = this.nick ?? '*';
      if (outcome.status === 'pinned') {
        await new Promise<void>((resolve) => this.enqueue(() => this.installKeybotKey(outcome.key, outcome.source).finally(resolve)));
      } else if (outcome.status === 'mismatch') {
        this.keybot = { status: 'mismatch', reason: outcome.reason };
        this.enqueue(() => {
          this.engine!.distrustKeybot(outcome.reason);
          this.notice(me, `WARNING: ${outcome.reason}`);
        });
      } else {
        this.keybot = { status: 'unavailable', reason: outcome.reason, at: Date.now() };
        this.enqueue(() => this.notice(me, `${outcome.reason}; encrypted rooms get no keys until keybot's key is pinned (retried when keybot is heard from)`));
      }
    } finally {
      this.pinning = false;
    }
  }

  private async installKeybotKey(key: PublicKeyHandle, source: string): Promise<void> {
    if (this.closed) return;
    this.keybot = { status: 'pinned', fingerprint: key.fingerprint };
    const how =
      source === 'first-use'
        ? 'trusted on first use; compare it with the one your administrator gives you'
        : source === 'known'
          ? 'as pinned before'
          : source === 'configured'
            ? 'matches the fingerprint you configured'
            : 'the key you gave';
    this.notice(this.nick ?? '*', `end-to-end encryption is on; keybot's key ${key.fingerprint} is pinned (${how})`);
    this.deliverAll(await this.engine!.setKeybotKey(key));
  }

  /** keybot was heard from while its key is unavailable: try again (at most every 5 s). */
  private maybeRetryKeybot(): void {
    const k = this.keybot;
    if (k.status !== 'unavailable' || this.pinning || Date.now() - k.at < 5000) return;
    void this.pinKeybot();
  }
}
