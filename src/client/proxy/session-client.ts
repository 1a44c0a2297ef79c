/**
 * Client → server, for one proxied connection (session.ts): text to an encrypted room is
 * encrypted or held, never forwarded in the clear; private messages go only to keybot (and CTCP)
 * unless plaintext was allowed; `/msg *sealchat` is answered locally.
 */
import { KEYBOT_NICK, casefold } from '../../protocol/names.js';
import { parseLine, serializeBody, type IrcMessage } from '../../protocol/message.js';
import type { Unsent } from '../core/index.js';
import { PROXY_NICK } from './session-io.js';
import { ProxySessionKeybot } from './session-keybot.js';

function isChannel(name: string): boolean {
  return name.startsWith('#') || name.startsWith('&');
}

/** Rewrite what the client sends. */
export abstract class ProxySessionClientSide extends ProxySessionKeybot {
  protected fromClient(raw: Buffer): void {
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

  protected checkAccount(nick: string): boolean {
    const want = this.o.account;
    if (want === undefined || casefold(nick) === casefold(want)) return true;
    const why = `this sealchat proxy holds the key of ${want}; log in as ${want}, not ${nick}`;
    this.notice('*', why);
    this.toClient(`ERROR :Closing link: ${why}`);
    this.up.destroy();
    this.close();
    return false;
  }

  protected outgoingText(m: IrcMessage): void {
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

  protected roomText(command: string, room: string, text: string): void {
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
  protected flushOutbox(): void {
    for (const r of this.outbox?.release() ?? []) {
      this.heldTexts.delete(r.id);
      for (const line of r.lines) this.toServer(serializeBody(null, 'PRIVMSG', [r.room, line]));
      this.notice(r.room, `sent: a held message went out under epoch ${r.epoch} (held ${(r.heldMs / 1000).toFixed(1)} s)`);
    }
  }

  /** Held text given up: tell the user, with the text. */
  protected unsent(list: Unsent[]): void {
    for (const u of list) {
      const text = this.heldTexts.get(u.id);
      this.heldTexts.delete(u.id);
      this.notice(u.room, `NOT SENT: ${u.reason}${text !== undefined ? `: ${JSON.stringify(text)}` : ''}`);
    }
  }

  /** `/msg *sealchat <command>`: what the proxy knows, without asking the server. */
  protected localCommand(text: string): void {
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
}
