/**
 * Replies that show state and are sent from more than one place: the topic and NAMES burst after
 * a JOIN (JOIN, a second session of an account, a server-side join by keybot), LUSERS and MOTD
 * (registration and their own commands), ISUPPORT (registration and VERSION), and the one rule
 * for naming a channel a client may not see. Handler files import these instead of each other.
 */
import { casefold } from '../../protocol/names.js';
import {
  ERR_NOMOTD, ERR_NOSUCHCHANNEL, RPL_ENDOFMOTD, RPL_ENDOFNAMES, RPL_GLOBALUSERS, RPL_ISUPPORT,
  RPL_LOCALUSERS, RPL_LUSERCHANNELS, RPL_LUSERCLIENT, RPL_LUSERME, RPL_LUSEROP, RPL_LUSERUNKNOWN,
  RPL_MOTD, RPL_MOTDSTART, RPL_NAMREPLY, RPL_TOPIC, RPL_TOPICWHOTIME,
} from '../protocol/numerics.js';
import type { Channel, Client, Peer } from './model.js';
import type { IrcServer } from './server.js';

/** Bytes of names per RPL_NAMREPLY: well under 512 with the prefix, nick and channel. */
const NAMES_LINE_BUDGET = 400;

/** Topic and NAMES for one session, sent after it joins (RFC 2812 §3.2.1). */
export function sendChannelBurst(session: Peer, channel: Channel): void {
  if (channel.topic) {
    session.reply(RPL_TOPIC, channel.name, channel.topic);
    session.reply(RPL_TOPICWHOTIME, channel.name, channel.topicSetBy, String(channel.topicSetAt));
  }
  sendNames(session, channel);
}

/**
 * RPL_NAMREPLY lines and (unless `end` is false: NAMES of several channels ends once) RPL_ENDOFNAMES;
 * a secret channel's members only to those who may see it.
 */
export function sendNames(session: Peer, channel: Channel, end = true): void {
  const me = session.client!;
  if (channel.visibleTo(me)) {
    const symbol = channel.isSecret() ? '@' : '=';
    const multi = session.caps.has('multi-prefix');
    const uhnames = session.caps.has('userhost-in-names');
    let line: string[] = [];
    let len = 0;
    for (const m of channel.members.keys()) {
      const entry = channel.prefixOf(m, multi) + (uhnames ? m.prefix : m.nick);
      if (len + entry.length + 1 > NAMES_LINE_BUDGET && line.length) {
        session.reply(RPL_NAMREPLY, symbol, channel.name, line.join(' '));
        line = [];
        len = 0;
      }
      line.push(entry);
      len += entry.length + 1;
    }
    if (line.length) session.reply(RPL_NAMREPLY, symbol, channel.name, line.join(' '));
  }
  if (end) session.reply(RPL_ENDOFNAMES, channel.name, 'End of /NAMES list');
}

/**
 * The channel named `name` if `client` may see it; otherwise answer 403 ERR_NOSUCHCHANNEL
 * (the same for a secret channel as for none, so names cannot be probed) and return undefined.
 */
export function visibleChannel(server: IrcServer, session: Peer, client: Client, name: string): Channel | undefined {
  const channel = server.channels.get(casefold(name));
  if (channel && channel.visibleTo(client)) return channel;
  session.reply(ERR_NOSUCHCHANNEL, name, 'No such channel');
  return undefined;
}

/** RPL_LUSER* (RFC 2812 §3.4.2) and the local/global counts (modern.ircdocs.horse 265/266). */
export function sendLusers(server: IrcServer, session: Peer): void {
  // Only clients with user modes can be invisible or operators: a walk over those, not over
  // every client and session at every login (issue 14: registration cost).
  let invisible = 0;
  let opers = 0;
  for (const c of server.clientsWithModes) {
    if (c.hasMode('i')) invisible++;
    if (c.isOper) opers++;
  }
  const users = server.clients.size;
  const unknown = server.unregisteredSessions;
  const max = server.maxUsersSeen;
  session.reply(RPL_LUSERCLIENT, `There are ${users - invisible} users and ${invisible} invisible on 1 servers`);
  session.reply(RPL_LUSEROP, String(opers), 'operator(s) online');
  session.reply(RPL_LUSERUNKNOWN, String(unknown), 'unknown connection(s)');
  session.reply(RPL_LUSERCHANNELS, String(server.channels.size), 'channels formed');
  session.reply(RPL_LUSERME, `I have ${users} clients and 0 servers`);
  session.reply(RPL_LOCALUSERS, String(users), String(max), `Current local users ${users}, max ${max}`);
  session.reply(RPL_GLOBALUSERS, String(users), String(max), `Current global users ${users}, max ${max}`);
}

/** RPL_MOTDSTART, RPL_MOTD…, RPL_ENDOFMOTD, or ERR_NOMOTD when none is configured. */
export function sendMotd(server: IrcServer, session: Peer): void {
  const lines = server.config.motd;
  if (lines.length === 0) {
    session.reply(ERR_NOMOTD, 'MOTD File is missing');
    return;
  }
  session.reply(RPL_MOTDSTART, `- ${server.name} Message of the day - `);
  for (const line of lines) session.reply(RPL_MOTD, `- ${line}`);
  session.reply(RPL_ENDOFMOTD, 'End of /MOTD command.');
}

/** RPL_ISUPPORT, 12 tokens a line. */
export function sendIsupport(server: IrcServer, session: Peer): void {
  const tokens = server.isupport;
  for (let i = 0; i < tokens.length; i += 12) {
    session.reply(RPL_ISUPPORT, ...tokens.slice(i, i + 12), 'are supported by this server');
  }
}
