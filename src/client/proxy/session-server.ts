/**
 * Server → client, for one proxied connection (session.ts): room messages decrypted and verified,
 * envelope parts hidden, key events and refusals shown as `*sealchat` NOTICEs, plaintext in an
 * encrypted room flagged; login (001) starts the engine. Everything else passes byte for byte.
 */
import { KEYBOT_NICK, casefold } from '../../protocol/names.js';
import { parseLine, serializeBody, serializeMessage, type IrcMessage } from '../../protocol/message.js';
import { RoomCryptoEngine, type IncomingResult } from '../core/index.js';
import { RoomMembership, type MembershipKind } from '../core/index.js';
import { Outbox } from '../core/index.js';
import { ProxySessionClientSide } from './session-client.js';
import { oneLine } from './session-io.js';

/** The nick of a `nick!user@host` source; undefined for a server. */
function nickOf(source: string | null): string | undefined {
  if (!source) return undefined;
  const bang = source.indexOf('!');
  if (bang > 0) return source.slice(0, bang);
  return source.includes('.') ? undefined : source;
}

/** Rewrite what the server sends. */
export abstract class ProxySessionServerSide extends ProxySessionClientSide {
  protected async fromServer(raw: Buffer): Promise<void> {
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
  protected membership(kind: MembershipKind, room: string | undefined, nick: string | undefined): void {
    if (nick === undefined || !this.rooms) return;
    // Held text for a room we left is given up: say so, with the text.
    this.unsent(this.rooms.apply({ kind, room, nick }).unsent);
  }

  protected async welcome(raw: Buffer, m: IrcMessage): Promise<void> {
    const nick = m.params[0];
    if (nick === undefined || this.engine) return this.toClient(raw);
    if (!this.checkAccount(nick)) return;
    this.nick = nick;
    const server = `${this.o.upstream.host}:${this.o.upstream.port}`;
    try {
      // Pins and epochs from this account's earlier connections (core/memory.ts).
      this.memory = await this.book.memory(nick, server);
    } catch (err) {
      // A memory file that cannot be read is never guessed at: without it no envelope could be judged.
      const why = `cannot read the sealchat memory file: ${(err as Error).message}`;
      this.notice(nick, why);
      this.toClient(`ERROR :Closing link: ${oneLine(why)}`);
      this.close();
      return;
    }
    if (this.closed) return;
    this.engine = new RoomCryptoEngine({ ...this.o.engine, account: nick, privateKey: this.o.privateKey, memory: this.memory });
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

  protected async incomingText(raw: Buffer, m: IrcMessage, from: string): Promise<void> {
    const r = await this.engine!.handleIncoming({ from, target: m.params[0]!, command: m.command as 'PRIVMSG' | 'NOTICE', text: m.params[1]! });
    this.deliver(r, { raw, m });
  }

  protected deliverAll(results: IncomingResult[]): void {
    for (const r of results) this.deliver(r);
  }

  /** Show the client what one result means. `line` is the server line it came from, if any. */
  protected deliver(r: IncomingResult, line?: { raw: Buffer; m: IrcMessage }): void {
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

  protected prefixOf(nick: string): string {
    return this.prefixes.get(casefold(nick)) ?? `${nick}!${nick}@sealchat`;
  }
}
