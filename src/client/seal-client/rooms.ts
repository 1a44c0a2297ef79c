/**
 * Rooms, for SealClient (client.ts): encrypted text out (held by the Outbox while a key is on its
 * way), decrypted and verified text in, and what JOIN/PART/KICK/QUIT mean for the keys.
 */
import { casefold } from '../../protocol/names.js';
import type { IncomingResult, RoomInfo, TextCommand } from '../core/index.js';
import { SealClientError } from '../errors.js';
import type { Unsent } from '../core/index.js';
import { SealClientKeybot } from './keybot.js';
import type { SendResult } from './types.js';

/** Room text in and out. */
export abstract class SealClientRooms extends SealClientKeybot {
  /**
   * Encrypt and send text to a room. Resolves with the epoch used; rejects (sending nothing) with
   * SealClientError 'no-key' when we hold no key for an encrypted room, 'not-encrypted' when the
   * target is not a sealchat room. Never sends plaintext.
   *
   * In a room we are in (or were in when the connection dropped) whose key cannot be used right
   * now — it is being replaced after a membership change, or went with a lost connection — the
   * text is held instead ('message-held' says so at once) and the promise settles when it is
   * sent under the next key (`held` in the result) or given up after the outbox's hold time
   * ('no-key', and 'message-unsent'). `{ hold: false }`, or the option `outbox: false`, refuses
   * at once instead.
   */
  async send(room: string, text: string, opts: { hold?: boolean } = {}): Promise<SendResult> {
    const engine = this.engine;
    const outbox = this.outbox;
    const online = this.phase === 'online' && this.registered && this.irc !== undefined;
    if (!engine || !outbox || (!online && this.phase !== 'reconnecting')) {
      throw new SealClientError('not-connected', 'not connected to the sealchat server');
    }
    const folded = casefold(room);
    const inRoom = this.membershipState?.has(room) ?? false;
    const mayHold = this.holding && opts.hold !== false && (inRoom || this.restoring.has(folded));
    if (!online && !mayHold) throw new SealClientError('not-connected', 'not connected to the sealchat server (reconnecting); nothing was sent');
    const why = !online || !inRoom ? `the connection to the server was lost and ${room}'s key with it` : `no key for ${room} yet`;
    const r = outbox.submit({ room, text, mayHold, why });
    if (r.status === 'refused') throw new SealClientError(r.code, r.reason);
    if (r.status === 'send') {
      // Only an online connection holds keys, so 'send' implies one.
      for (const line of r.lines) this.irc!.raw('PRIVMSG', room, line);
      return { epoch: r.epoch, lines: r.lines.length };
    }
    const settled = new Promise<SendResult>((resolve, reject) => this.waiting.set(r.id, { resolve, reject }));
    this.emit('message-held', { id: r.id, room: r.room, reason: r.reason });
    this.flushOutbox();
    return settled;
  }

  /** Send a `/me` action to a room, encrypted like any text. */
  action(room: string, text: string, opts: { hold?: boolean } = {}): Promise<SendResult> {
    return this.send(room, `\x01ACTION ${text}\x01`, opts);
  }

  /** Room texts waiting for a key (see {@link send}). */
  heldMessages(room?: string): number {
    return this.outbox?.size(room) ?? 0;
  }

  /** Rooms we hold or held a key for, with epoch and members (local state, no network). */
  localRooms(): RoomInfo[] {
    return this.engine?.listRooms() ?? [];
  }

  /** Channels the server has us in. */
  joinedRooms(): string[] {
    return this.membershipState?.rooms() ?? [];
  }

  protected async incoming(command: TextCommand, from: string, target: string, text: string): Promise<void> {
    if (!from) {
      this.emit('notice', { from: '', target, text });
      return;
    }
    const r = await this.engine!.handleIncoming({ from, target, command, text });
    if (r.kind === 'passthrough') {
      // Not sealchat's business (a private message, a user's notice, an ordinary channel): the
      // engine's result carries no line, so report it from here, as received.
      this.emit(command === 'NOTICE' ? 'notice' : 'privmsg', { from, target, text });
      return;
    }
    this.emitResults([r]);
  }

  protected emitResults(results: IncomingResult[]): void {
    let keyed = false;
    for (const r of results) {
      switch (r.kind) {
        case 'key': {
          const { kind: _k, released, ...key } = r;
          // A new epoch: its member list is the room as it is now, so it may be sent under.
          this.outbox?.trust.keyInstalled(r.room);
          keyed = true;
          this.emit('key', key);
          this.emitResults(released);
          break;
        }
        case 'message': {
          const action = /^\x01ACTION ([\s\S]*)\x01$/.exec(r.text);
          this.emit('message', {
            room: r.room,
            from: r.from,
            text: action ? action[1]! : r.text,
            epoch: r.epoch,
            command: r.command,
            action: action !== null,
          });
          break;
        }
        case 'undecryptable': {
          const { kind: _k, ...rest } = r;
          this.emit('undecryptable', rest);
          break;
        }
        case 'plaintext-in-room': {
          const { kind: _k, ...rest } = r;
          this.emit('plaintext-warning', rest);
          break;
        }
        case 'envelope-rejected': {
          const { kind: _k, ...rest } = r;
          this.emit('envelope-rejected', rest);
          if (r.code === 'member-key-changed' && r.room !== undefined && r.account !== undefined && r.pinned !== undefined && r.offered !== undefined) {
            const { room, account, pinned, offered, epoch, reason } = r;
            this.emit('member-key-changed', { room, account, pinned, offered, ...(epoch !== undefined ? { epoch } : {}), reason });
          }
          break;
        }
        case 'bot-notice':
          this.botNotice(r);
          break;
        case 'passthrough': // emitted as 'privmsg'/'notice' by incoming(), which has the line
        case 'hidden':
        case 'held':
          break;
      }
    }
    if (keyed) this.flushOutbox();
  }

  /** Send what the outbox can encrypt now (after a new key). */
  protected flushOutbox(): void {
    const irc = this.irc;
    if (!this.outbox || !irc || this.phase !== 'online' || !this.registered) return;
    for (const r of this.outbox.release()) {
      for (const line of r.lines) irc.raw('PRIVMSG', r.room, line);
      this.emit('message-released', { id: r.id, room: r.room, epoch: r.epoch, lines: r.lines.length, heldMs: r.heldMs });
      const w = this.waiting.get(r.id);
      this.waiting.delete(r.id);
      w?.resolve({ epoch: r.epoch, lines: r.lines.length, held: { id: r.id, ms: r.heldMs } });
    }
  }

  /** Held text given up: tell the caller of send() and the listeners. */
  protected unsent(list: Unsent[]): void {
    for (const u of list) {
      this.emit('message-unsent', { id: u.id, room: u.room, reason: u.reason, heldMs: u.heldMs });
      const w = this.waiting.get(u.id);
      this.waiting.delete(u.id);
      w?.reject(new SealClientError('no-key', u.reason));
    }
  }

  /** Housekeeping, once a second. */
  protected sweep(): void {
    this.emitResults(this.engine!.sweep());
    if (this.outbox) this.unsent(this.outbox.expire());
    // After a reconnect, rooms keybot did not give back within the hold time are not waited for.
    if (this.phase === 'online' && this.restoring.size > 0 && Date.now() - this.reconnectedAt > (this.outbox?.holdMs ?? 0)) this.restoring.clear();
  }

  protected membership(kind: 'join' | 'part', room: string, nick: string, reason = '', kickedBy?: string): void {
    const change = kind === 'join' ? ({ kind: 'join', room, nick } as const) : ({ kind: kickedBy !== undefined ? 'kick' : 'part', room, nick } as const);
    const { self, unsent } = this.membershipState!.apply(change);
    if (self) this.restoring.delete(casefold(room));
    this.unsent(unsent);
    if (kind === 'join') this.emit('join', { room, nick, self });
    else this.emit('part', { room, nick, self, reason, ...(kickedBy !== undefined ? { kickedBy } : {}) });
  }
}
