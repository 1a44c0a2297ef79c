/**
 * SealClient: one user's connection to a sealchat server, with rooms decrypted and verified.
 *
 * irc-framework carries the IRC; RoomCryptoEngine decides what every PRIVMSG/NOTICE means; this
 * class wires the two, pins keybot's key (pinning.ts), talks to keybot, and reports everything as
 * events. The terminal client, the local proxy and the plugin agent build on it (or on the engine
 * directly, when they already have an IRC connection of their own).
 *
 * Everything the server sends is handled in arrival order (one queue), so a key envelope is
 * applied before the message after it, and a PART is applied after the messages before it.
 * Room keys live in this process's memory only and are wiped when the connection closes.
 *
 * Faults (docs/PROTOCOL.md "Faults"): a lost connection is re-established with exponential
 * backoff and jitter (option `reconnect`); the keys go with the old connection, keybot's pin
 * stays (a keybot that offers another key on the new connection is reported and refused), and
 * the rooms come back when keybot puts us in them again with a new epoch. Room text that cannot
 * be encrypted right now but soon can (a membership change awaiting its new key, a reconnect)
 * is held for a short while and sent under the next key, or reported as not sent (outbox.ts).
 */
import IRC, { type Client as IrcClient } from 'irc-framework';
import { KEYBOT_NICK, casefold } from '../protocol/names.js';
import { MemoryBook, RoomCryptoEngine, memoryFileFor, type TextCommand } from './core/index.js';
import { SealClientError } from './errors.js';
import { loadPrivateKey } from './identity.js';
import { Outbox } from './core/index.js';
import { RoomMembership } from './core/index.js';
import { SealClientRooms } from './seal-client/rooms.js';
import type { ConnectResult, SealConnectOptions } from './seal-client/types.js';

export type {
  ConnectResult,
  KeybotTrust,
  ReconnectOptions,
  RoomMessageEvent,
  SealClientEvents,
  SealConnectOptions,
  SendResult,
} from './seal-client/types.js';

/** One user's connection to a sealchat server; see the file comment. */
export class SealClient extends SealClientRooms {
  /**
   * Unlock the key, connect, register, and pin keybot's key. Resolves once registered and the
   * keybot key is settled one way or the other (see `keybot` in the result); rejects with a
   * SealClientError if the key cannot be used or the server refuses the login.
   */
  async connect(options: SealConnectOptions): Promise<ConnectResult> {
    if (this.phase !== 'idle') throw new Error('SealClient.connect: already connected (use a new SealClient)');
    this.phase = 'connecting';
    this.options = options;
    this.reconnectOptions = options.reconnect === false ? undefined : options.reconnect === true || options.reconnect === undefined ? {} : options.reconnect;
    const privateKey = options.privateKey ?? (await loadPrivateKey(options));
    // Pins and epochs from earlier runs (core/memory.ts); the engine lives across reconnects.
    this.book = new MemoryBook(memoryFileFor(options.knownKeybotsFile));
    try {
      this.memory = await this.book.memory(options.nick, this.server());
    } catch (err) {
      this.phase = 'closed';
      throw new SealClientError('key', `cannot read the sealchat memory file: ${(err as Error).message}`);
    }
    this.engine = new RoomCryptoEngine({ ...options.engine, account: options.nick, privateKey, memory: this.memory });
    this.holding = options.outbox !== false;
    this.outbox = new Outbox(this.engine, typeof options.outbox === 'object' ? options.outbox : {});
    this.membershipState = new RoomMembership(this.engine, this.outbox);
    const irc = new IRC.Client();
    this.irc = irc;
    this.wire(irc);
    await this.register(irc, options);
    this.phase = 'online';
    this.sweepTimer = setInterval(() => this.enqueue(() => this.sweep()), 1000);
    this.sweepTimer.unref();
    // Learn when keybot comes (back) online, to fetch its key if we still lack it.
    irc.raw('MONITOR', '+', KEYBOT_NICK);
    const keybot = await this.settleKeybot();
    return { nick: options.nick, keybot };
  }

  protected wire(irc: IrcClient): void {
    const text = (command: TextCommand, e: { nick?: string; target: string; message: string }, wrap = (m: string) => m): void => {
      const from = e.nick ?? '';
      const line = wrap(e.message);
      this.enqueue(() => this.incoming(command, from, e.target, line));
    };
    irc.on('privmsg', (e: { nick: string; target: string; message: string }) => text('PRIVMSG', e));
    irc.on('notice', (e: { nick?: string; target: string; message: string }) => text('NOTICE', e));
    irc.on('action', (e: { nick: string; target: string; message: string }) => text('PRIVMSG', e, (m) => `\x01ACTION ${m}\x01`));
    irc.on('join', (e: { nick: string; channel: string }) => this.enqueue(() => this.membership('join', e.channel, e.nick)));
    irc.on('part', (e: { nick: string; channel: string; message: string }) =>
      this.enqueue(() => this.membership('part', e.channel, e.nick, e.message)),
    );
    irc.on('kick', (e: { nick: string; kicked: string; channel: string; message: string }) =>
      // keybot removes members server-side: then the KICK comes from the server (no nick).
      this.enqueue(() => this.membership('part', e.channel, e.kicked, e.message, e.nick || undefined)),
    );
    irc.on('quit', (e: { nick: string; message: string }) =>
      this.enqueue(() => {
        // A member of a keyed room quit: that key may no longer be sent under.
        this.membershipState?.apply({ kind: 'quit', nick: e.nick });
        this.emit('quit', { nick: e.nick, reason: e.message });
      }),
    );
    irc.on('users online', (e: { nicks: string[] }) => {
      if (irc !== this.irc || !e.nicks.some((n) => casefold(n) === KEYBOT_NICK)) return;
      if (this.trust.status === 'unavailable') void this.settleKeybot();
      else if (this.keybotCheckDue) void this.recheckKeybot();
    });
    irc.on('irc error', (e: { error?: string; nick?: string; reason?: string }) => {
      // keybot is offline: a key fetch in progress cannot succeed.
      if (e.error !== 'no_such_nick' || casefold(e.nick ?? '') !== KEYBOT_NICK) return;
      this.keyFetch?.done(new Error('keybot is not online'));
      const p = this.pending;
      if (p) {
        clearTimeout(p.quiet);
        clearTimeout(p.deadline);
        this.pending = undefined;
        p.reject(new SealClientError('keybot-offline', 'keybot is not online; try again later'));
      }
    });
    irc.on('close', () => this.onClose(irc));
  }
}
