/**
 * Channel commands: JOIN, PART, NAMES, TOPIC, INVITE, KICK, LIST (RFC 2812 §3.2,
 * modern.ircdocs.horse "Channel Operations").
 */
import { casefold, isValidChannelName, SERVICE_ROOM_PREFIX } from '../../protocol/names.js';
import {
  ERR_BADCHANNELKEY, ERR_BANNEDFROMCHAN, ERR_CHANNELISFULL, ERR_CHANOPRIVSNEEDED, ERR_INVITEONLYCHAN, ERR_NOSUCHCHANNEL,
  ERR_NEEDMOREPARAMS, ERR_NOSUCHNICK, ERR_NOTONCHANNEL, ERR_TOOMANYCHANNELS, ERR_TOOMANYTARGETS, ERR_USERNOTINCHANNEL,
  ERR_USERONCHANNEL, RPL_ENDOFINVITELIST, RPL_ENDOFNAMES, RPL_INVITELIST, RPL_INVITING, RPL_LIST, RPL_LISTEND,
  RPL_LISTSTART, RPL_NOTOPIC,
  RPL_TOPIC, RPL_TOPICWHOTIME,
} from '../protocol/numerics.js';
import { Relay } from '../server/relay.js';
import { sendChannelBurst, sendNames, visibleChannel } from '../server/views.js';
import type { RegisteredContext } from './types.js';
import { fitLastParam, globMatch } from '../protocol/text.js';
import type { Channel } from '../server/model.js';

const TOPIC_MAX = 390;

// JOIN <channel>{,<channel>} [<key>{,<key>}]   |   JOIN 0
export function handleJoin(ctx: RegisteredContext): void {
  const { server, session, client, params } = ctx;
  if (params[0] === '0') {
    for (const channel of [...client.channels.values()]) {
      server.leave(client, channel, new Relay(client.prefix, 'PART', [channel.name], Date.now(), client.account));
    }
    return;
  }
  const names = params[0].split(',');
  const keys = (params[1] ?? '').split(',');
  names.forEach((name, i) => {
    if (!name) return;
    if (!isValidChannelName(name)) {
      session.reply(ERR_NOSUCHCHANNEL, name, 'No such channel (channel names start with # and have no spaces or commas)');
      return;
    }
    const existing = server.channels.get(casefold(name));
    if (existing?.members.has(client)) return;
    if (client.channels.size >= server.config.limits.channelsPerUser) {
      session.reply(ERR_TOOMANYCHANNELS, name, 'You have joined too many channels');
      return;
    }
    // An invitation lets its holder past +i, +k, +l and +b (modern.ircdocs.horse "INVITE"); an
    // invite exception (+I) only past +i, a ban exception (+e) only past +b.
    // keybot is never banned from a room it operates; its server-side joins (control/channels.ts)
    // do not come through here at all.
    if (existing && client.account !== null && client.folded !== casefold(client.account) && server.rooms.isRoom(existing.folded)) {
      // Companions and keybot know a room member by its nick = account (docs/PROTOCOL.md "Room
      // messages"); with forceNickEqualsAccount off an account may hold another nick, not in a room.
      session.reply(ERR_INVITEONLYCHAN, existing.name, `Cannot join channel: an encrypted room needs your account name ${client.account} as nick`);
      return;
    }
    if (existing && !existing.invited.has(client.folded)) {
      if (existing.flags.has('i') && !existing.listMatches('I', client)) {
        session.reply(ERR_INVITEONLYCHAN, existing.name, 'Cannot join channel (+i): it is invite-only');
        return;
      }
      if (!client.isService && existing.isBanned(client)) {
        session.reply(ERR_BANNEDFROMCHAN, existing.name, 'Cannot join channel (+b): you are banned');
        return;
      }
      if (existing.key !== null && keys[i] !== existing.key) {
        session.reply(ERR_BADCHANNELKEY, existing.name, 'Cannot join channel (+k): wrong key');
        return;
      }
      if (existing.limit !== null && existing.members.size >= existing.limit) {
        session.reply(ERR_CHANNELISFULL, existing.name, 'Cannot join channel (+l): it is full');
        return;
      }
    }
    if (!existing && !client.isService && casefold(name).startsWith(SERVICE_ROOM_PREFIX)) {
      session.reply(ERR_NOSUCHCHANNEL, name, `Channels named ${SERVICE_ROOM_PREFIX}* are encrypted rooms opened by keybot; ask keybot: /msg keybot help`);
      return;
    }
    const { channel, created } = server.getOrCreateChannel(name);
    server.join(client, channel, created, (s) => sendChannelBurst(s, channel));
  });
}

// PART <channel>{,<channel>} [:<reason>]
export function handlePart(ctx: RegisteredContext): void {
  const { server, session, client, params } = ctx;
  for (const name of params[0].split(',')) {
    if (!name) continue;
    const channel = visibleChannel(server, session, client, name);
    if (!channel) continue;
    if (!channel.members.has(client)) {
      session.reply(ERR_NOTONCHANNEL, channel.name, "You're not on that channel");
      continue;
    }
    const p = params[1] ? fitLastParam(client.prefix, 'PART', [channel.name, params[1]], 300) : [channel.name];
    server.leave(client, channel, new Relay(client.prefix, 'PART', p, Date.now(), client.account));
  }
}

// NAMES [<channel>{,<channel>}]
export function handleNames(ctx: RegisteredContext): void {
  const { server, session, client, params } = ctx;
  if (!params[0]) {
    // Listing every channel is costly and rarely useful; ELIST-style servers answer 366 *.
    session.reply(RPL_ENDOFNAMES, '*', 'End of /NAMES list');
    return;
  }
  const names = params[0].split(',').filter(Boolean);
  if (names.length > server.config.limits.maxTargets) {
    session.reply(ERR_TOOMANYTARGETS, '*', `Too many channels (at most ${server.config.limits.maxTargets}, TARGMAX NAMES)`);
    return;
  }
  if (names.length === 1) {
    const channel = server.channels.get(casefold(names[0]!));
    if (channel && channel.visibleTo(client)) sendNames(session, channel);
    else session.reply(RPL_ENDOFNAMES, names[0]!, 'End of /NAMES list');
    return;
  }
  // Several channels: their 353 lines, then one 366 naming the list as asked
  // (modern.ircdocs.horse "NAMES"); the list goes back as one parameter or as '*'.
  for (const name of names) {
    const channel = server.channels.get(casefold(name));
    if (channel && channel.visibleTo(client)) sendNames(session, channel, false);
  }
  session.reply(RPL_ENDOFNAMES, /^[^:][^ ]*$/.test(params[0]) ? params[0] : '*', 'End of /NAMES list');
}

// TOPIC <channel> [:<topic>]
export function handleTopic(ctx: RegisteredContext): void {
  const { server, session, client, params } = ctx;
  const channel = visibleChannel(server, session, client, params[0]);
  if (!channel) return;
  const membership = channel.members.get(client);
  if (params.length < 2) {
    if (channel.isSecret() && !membership) {
      session.reply(ERR_NOTONCHANNEL, channel.name, "You're not on that channel");
    } else if (channel.topic) {
      session.reply(RPL_TOPIC, channel.name, channel.topic);
      session.reply(RPL_TOPICWHOTIME, channel.name, channel.topicSetBy, String(channel.topicSetAt));
    } else {
      session.reply(RPL_NOTOPIC, channel.name, 'No topic is set');
    }
    return;
  }
  if (!membership) {
    session.reply(ERR_NOTONCHANNEL, channel.name, "You're not on that channel");
    return;
  }
  if (channel.flags.has('t') && !membership.op) {
    session.reply(ERR_CHANOPRIVSNEEDED, channel.name, "You're not a channel operator");
    return;
  }
  channel.topic = fitLastParam(client.prefix, 'TOPIC', [channel.name, params[1]], TOPIC_MAX)[1]!;
  channel.topicSetBy = client.nick;
  channel.topicSetAt = Math.floor(Date.now() / 1000);
  server.deliverToChannel(channel, new Relay(client.prefix, 'TOPIC', [channel.name, channel.topic], Date.now(), client.account));
}

// INVITE <nickname> <channel>   |   INVITE   (no arguments: the channels one is invited to,
// 336 each then 337, as modern.ircdocs.horse "INVITE" describes)
export function handleInvite(ctx: RegisteredContext): void {
  const { server, session, client, params } = ctx;
  if (params.length === 0) {
    for (const channel of server.channels.values()) {
      if (channel.invited.has(client.folded)) session.reply(RPL_INVITELIST, channel.name);
    }
    session.reply(RPL_ENDOFINVITELIST, 'End of /INVITE list');
    return;
  }
  if (params.length < 2) {
    session.reply(ERR_NEEDMOREPARAMS, 'INVITE', 'Not enough parameters');
    return;
  }
  const target = server.findClient(params[0]);
  if (!target) {
    session.reply(ERR_NOSUCHNICK, params[0], 'No such nick (offline)');
    return;
  }
  const channel = server.channels.get(casefold(params[1]));
  if (!channel) {
    session.reply(ERR_NOSUCHCHANNEL, params[1], 'No such channel');
    return;
  }
  const membership = channel.members.get(client);
  if (!membership) {
    session.reply(ERR_NOTONCHANNEL, channel.name, "You're not on that channel");
    return;
  }
  if (channel.flags.has('i') && !membership.op) {
    session.reply(ERR_CHANOPRIVSNEEDED, channel.name, "You're not a channel operator");
    return;
  }
  if (channel.members.has(target)) {
    session.reply(ERR_USERONCHANNEL, target.nick, channel.name, 'is already on channel');
    return;
  }
  channel.invited.add(target.folded);
  session.reply(RPL_INVITING, target.nick, channel.name);
  const relay = new Relay(client.prefix, 'INVITE', [target.nick, channel.name], Date.now(), client.account);
  server.deliverToClient(target, relay);
  // invite-notify (IRCv3): other members with the cap see the invitation too.
  for (const m of channel.members.keys()) {
    if (m === client) continue;
    for (const s of m.sessions) if (s.caps.has('invite-notify')) s.relay(relay);
  }
}

// KICK <channel>{,<channel>} <user>{,<user>} [:<comment>]
// One channel and several users, or as many channels as users, paired in order (RFC 2812 §3.2.8).
export function handleKick(ctx: RegisteredContext): void {
  const { server, session, client, params } = ctx;
  const channels = params[0].split(',');
  const nicks = params[1].split(',');
  if (nicks.length > server.config.limits.maxTargets) {
    session.reply(ERR_TOOMANYTARGETS, '*', `Too many users (at most ${server.config.limits.maxTargets}, TARGMAX KICK)`);
    return;
  }
  if (channels.length !== 1 && channels.length !== nicks.length) {
    session.reply(ERR_NEEDMOREPARAMS, 'KICK', 'Give one channel, or one channel per user');
    return;
  }
  nicks.forEach((nick, i) => {
    const channel = visibleChannel(server, session, client, channels[channels.length === 1 ? 0 : i]!);
    if (!channel) return;
    const membership = channel.members.get(client);
    if (!membership) {
      session.reply(ERR_NOTONCHANNEL, channel.name, "You're not on that channel");
      return;
    }
    if (!membership.op) {
      session.reply(ERR_CHANOPRIVSNEEDED, channel.name, "You're not a channel operator");
      return;
    }
    const target = server.findClient(nick);
    if (!target || !channel.members.has(target)) {
      session.reply(ERR_USERNOTINCHANNEL, nick, channel.name, "They aren't on that channel");
      return;
    }
    const kickParams = fitLastParam(client.prefix, 'KICK', [channel.name, target.nick, params[2] ?? client.nick], 300);
    server.leave(target, channel, new Relay(client.prefix, 'KICK', kickParams, Date.now(), client.account));
  });
}

/**
 * What LIST may be asked to match (ISUPPORT ELIST=CMNTU, modern.ircdocs.horse "ELIST"): channel
 * names and masks (M) of which one must match, negated masks `!mask` (N) of which none may, and
 * conditions that must all hold: `>n`/`<n` members (U), `C>n`/`C<n` created more or less than n
 * minutes ago (C), `T>n`/`T<n` topic set more or less than n minutes ago (T).
 */
interface ListFilter {
  names: string[];
  notMasks: string[];
  conditions: Array<(channel: Channel, nowSeconds: number) => boolean>;
}

function parseListFilter(items: string[]): ListFilter {
  const filter: ListFilter = { names: [], notMasks: [], conditions: [] };
  for (const item of items) {
    if (!item) continue;
    const cond = /^([CT]?)([<>])([0-9]{1,9})$/.exec(item);
    if (cond) {
      const [, kind, op, num] = cond;
      const n = Number(num);
      if (!kind) {
        filter.conditions.push((ch) => (op === '>' ? ch.members.size > n : ch.members.size < n));
      } else {
        // Minutes ago; a channel without a topic has no topic time and matches no T condition.
        const at = (ch: Channel): number | null => (kind === 'C' ? ch.createdAt : ch.topic ? ch.topicSetAt : null);
        filter.conditions.push((ch, now) => {
          const t = at(ch);
          if (t === null) return false;
          const ageMinutes = (now - t) / 60;
          return op === '>' ? ageMinutes > n : ageMinutes < n;
        });
      }
    } else if (item.startsWith('!')) {
      filter.notMasks.push(casefold(item.slice(1)));
    } else {
      filter.names.push(casefold(item));
    }
  }
  return filter;
}

function listMatches(filter: ListFilter, channel: Channel, now: number): boolean {
  if (filter.names.length && !filter.names.some((m) => globMatch(m, channel.folded))) return false;
  if (filter.notMasks.some((m) => globMatch(m, channel.folded))) return false;
  return filter.conditions.every((c) => c(channel, now));
}

// LIST [<channel or mask or condition>{,…}] [<condition>{,…}]
export function handleList(ctx: RegisteredContext): void {
  const { server, session, client, params } = ctx;
  session.reply(RPL_LISTSTART, 'Channel', 'Users  Name');
  const filter = parseListFilter(params.slice(0, 2).flatMap((p) => p.split(',')));
  const now = Math.floor(session.now / 1000);
  for (const channel of server.channels.values()) {
    if (!channel.visibleTo(client)) continue;
    if (!listMatches(filter, channel, now)) continue;
    session.reply(RPL_LIST, channel.name, String(channel.members.size), channel.topic);
  }
  session.reply(RPL_LISTEND, 'End of /LIST');
}
