/**
 * PRIVMSG, NOTICE, TAGMSG (RFC 2812 §3.3, IRCv3 message-tags).
 *
 * The daemon relays text as it is: in sealchat rooms that text is ciphertext, and a relayed line
 * that would exceed 512 bytes after our prefix is refused with 417 rather than truncated,
 * since a cut ciphertext is worthless (docs/DESIGN.md "Rules the code keeps": Line length).
 */
import { casefold } from '../../protocol/names.js';
import { MAX_LINE_BYTES } from '../../protocol/message.js';
import {
  ERR_CANNOTSENDTOCHAN, ERR_INPUTTOOLONG, ERR_NORECIPIENT, ERR_NOSUCHCHANNEL, ERR_NOSUCHNICK,
  ERR_NOTEXTTOSEND, ERR_TOOMANYTARGETS, RPL_AWAY,
} from '../protocol/numerics.js';
import { Relay } from '../server/relay.js';
import type { StoredLine } from '../store/index.js';
import type { RegisteredContext } from './types.js';

let msgCounter = 0;
const msgPrefix = Date.now().toString(36);

/** Client-only tags (`+name`) pass through (IRCv3 message-tags); null when there are none. */
function clientOnlyTags(tags: ReadonlyMap<string, string>): Map<string, string> | null {
  if (tags.size === 0) return null;
  let out: Map<string, string> | null = null;
  for (const [k, v] of tags) if (k.startsWith('+')) (out ??= new Map()).set(k, v);
  return out;
}

/** A server message id (IRCv3 message-ids): unique per daemon start. */
function nextMsgid(): string {
  return `${msgPrefix}-${(++msgCounter).toString(36)}`;
}

function relayMessage(ctx: RegisteredContext, command: 'PRIVMSG' | 'NOTICE' | 'TAGMSG'): Promise<void> | undefined {
  const { server, session, client, params, msg } = ctx;
  const quiet = command === 'NOTICE'; // RFC 2812 §3.3.2: no automatic replies to NOTICE
  if (!params[0]) {
    if (!quiet) session.reply(ERR_NORECIPIENT, `No recipient given (${command})`);
    return;
  }
  const text = params[1] ?? '';
  if (command !== 'TAGMSG' && text === '') {
    if (!quiet) session.reply(ERR_NOTEXTTOSEND, 'No text to send');
    return;
  }
  // One target is the common case: skip the split (params[0] is not empty here).
  const targets = params[0].includes(',') ? params[0].split(',').filter(Boolean) : [params[0]];
  if (targets.length > server.config.limits.maxTargets) {
    if (!quiet) session.reply(ERR_TOOMANYTARGETS, params[0], `Too many targets (at most ${server.config.limits.maxTargets})`);
    return;
  }
  const tags = clientOnlyTags(msg.tags);
  const msgid = nextMsgid();
  const echo = session.caps.has('echo-message');
  /** keybot's NOTICEs to nicks that are not online: for the mailbox, if they are accounts. */
  let offline: string[] | null = null;
  for (const targetName of targets) {
    // STATUSMSG=@+ (modern.ircdocs.horse): @#chan reaches the channel's operators, +#chan its
    // operators and voiced members. The sender needs the same right as for #chan itself.
    const status = targetName[0] === '@' || targetName[0] === '+' ? targetName[0] : '';
    const channelName = status ? targetName.slice(1) : targetName;
    const isChannel = channelName.startsWith('#');
    const relayParams = command === 'TAGMSG' ? [targetName] : [targetName, text];
    if (isChannel) {
      // Keys are casefolded: a name that is already folded needs no folding (same result).
      const channel = server.channels.get(channelName) ?? server.channels.get(casefold(channelName));
      const membership = channel?.members.get(client);
      if (!channel || (channel.isSecret() && !membership)) {
        if (!quiet) session.reply(ERR_NOSUCHCHANNEL, targetName, 'No such channel');
        continue;
      }
      const mayTalk = membership?.op || membership?.voice;
      if ((channel.flags.has('n') && !membership) || (channel.flags.has('m') && !mayTalk) || (!mayTalk && channel.isMuted(client))) {
        if (!quiet) session.reply(ERR_CANNOTSENDTOCHAN, channel.name, 'Cannot send to channel');
        continue;
      }
      // +C: no CTCP but ACTION (/me) into the channel (modern.ircdocs.horse "No CTCP" mode).
      if (channel.flags.has('C') && text.startsWith('\x01') && !text.startsWith('\x01ACTION ')) {
        if (!quiet) session.reply(ERR_CANNOTSENDTOCHAN, channel.name, 'Cannot send CTCP to channel (+C)');
        continue;
      }
      relayParams[0] = status + channel.name;
      // A room line's time comes from the clock of membership intervals (RoomRegistry.now), so
      // that a line's time and a member's interval are always comparable.
      const isRoom = server.rooms.isRoom(channel.folded);
      const relay = new Relay(client.prefix, command, relayParams, isRoom ? server.rooms.now() : session.now, client.account, tags, msgid);
      if (relay.bodyBytes > MAX_LINE_BYTES) {
        session.reply(ERR_INPUTTOOLONG, `Message too long to relay without truncation; send at most ${MAX_LINE_BYTES - (relay.bodyBytes - Buffer.byteLength(text))} bytes of text`);
        continue;
      }
      const tagmsg = command === 'TAGMSG';
      for (const s of channel.sessions()) {
        if (s.client === client || (tagmsg && !s.caps.has('message-tags'))) continue;
        if (status) {
          const m = channel.members.get(s.client!);
          if (!m?.op && !(status === '+' && m?.voice)) continue;
        }
        s.relay(relay);
      }
      echoToSender(ctx, relay, echo);
      // A room's history (docs/PROTOCOL.md "Rooms that outlive a connection"): what was relayed
      // to all members, kept as relayed. STATUSMSG lines reached only some members: not kept.
      if (!tagmsg && !status && isRoom) {
        // `s` is set by record(); the key order is the stored one.
        const line: StoredLine = { s: 0, t: relay.time, id: msgid, src: client.prefix, cmd: command, params: relayParams, a: client.account };
        if (tags) line.tags = [...tags];
        server.rooms.record(channel.folded, line);
      }
    } else {
      const target = server.findClient(targetName);
      if (!target) {
        if (command === 'NOTICE' && client.isService) (offline ??= []).push(targetName);
        else if (!quiet) session.reply(ERR_NOSUCHNICK, targetName, 'No such nick (offline)');
        continue;
      }
      relayParams[0] = target.nick;
      const relay = new Relay(client.prefix, command, relayParams, session.now, client.account, tags, msgid);
      if (relay.bodyBytes > MAX_LINE_BYTES) {
        session.reply(ERR_INPUTTOOLONG, 'Message too long to relay without truncation');
        continue;
      }
      for (const s of target.sessions) {
        if (command === 'TAGMSG' && !s.caps.has('message-tags')) continue;
        if (target === client && s === session && !echo) continue;
        s.relay(relay);
      }
      if (target !== client) echoToSender(ctx, relay, echo);
      if (command === 'PRIVMSG' && target.away !== null) session.reply(RPL_AWAY, target.nick, target.away);
    }
  }
  return offline ? toMailbox(ctx, offline, text, tags, msgid) : undefined;
}

/**
 * The mailbox (docs/PROTOCOL.md "Rooms that outlive a connection"): a NOTICE from keybot to a
 * nick that is not online but is a registered account is kept for that account and delivered
 * at its next login with its original time and msgid. A nick that is no account is dropped, as
 * any NOTICE to a missing nick (no reply to a NOTICE, RFC 2812 §3.3.2). The session's next line
 * waits for this, so keybot's lines keep their order.
 */
async function toMailbox(ctx: RegisteredContext, nicks: string[], text: string, tags: Map<string, string> | null, msgid: string): Promise<void> {
  const { server, session, client } = ctx;
  const time = session.now;
  for (const nick of nicks) {
    const folded = casefold(nick);
    const name = server.rooms.knownAccount(folded) ?? (await server.accounts.get(nick))?.name;
    if (name === undefined) continue;
    const relay = new Relay(client.prefix, 'NOTICE', [name, text], time, client.account, tags, msgid);
    if (relay.bodyBytes > MAX_LINE_BYTES) {
      session.reply(ERR_INPUTTOOLONG, 'Message too long to relay without truncation');
      continue;
    }
    // It may have logged in while the account was looked up: then it gets the NOTICE now.
    const target = server.findClient(name);
    if (target) {
      server.deliverToClient(target, relay);
      continue;
    }
    server.rooms.storeMail(folded, {
      t: time, id: msgid, src: client.prefix, cmd: 'NOTICE', params: [name, text], a: client.account,
      ...(tags ? { tags: [...tags] } : {}),
    });
  }
}

/** The sender's other sessions always see what it sent; this one only with echo-message. */
function echoToSender(ctx: RegisteredContext, relay: Relay, echo: boolean): void {
  for (const s of ctx.client.sessions) {
    if (s === ctx.session && !echo) continue;
    s.relay(relay);
  }
}

// PRIVMSG <target>{,<target>} <text to be sent>
export function handlePrivmsg(ctx: RegisteredContext): Promise<void> | undefined {
  return relayMessage(ctx, 'PRIVMSG');
}

// NOTICE <target>{,<target>} <text to be sent>
export function handleNotice(ctx: RegisteredContext): Promise<void> | undefined {
  return relayMessage(ctx, 'NOTICE');
}

// TAGMSG <target>{,<target>}   (IRCv3 message-tags)
export function handleTagmsg(ctx: RegisteredContext): Promise<void> | undefined {
  return relayMessage(ctx, 'TAGMSG');
}
