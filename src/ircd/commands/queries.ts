/**
 * Queries and presence: WHOIS, WHOWAS, WHO, ISON, USERHOST, MONITOR, AWAY, and server info:
 * MOTD, LUSERS, VERSION, OPER. Presence rule (DESIGN.md): a user is online while at least one
 * authenticated session exists; WHOIS of an offline user answers 401 then 318.
 */
import { casefold, isValidNick } from '../../protocol/names.js';
import { globMatch, truncateUtf8 } from '../protocol/text.js';
import {
  ERR_MONLISTFULL, ERR_NOMOTD, ERR_NONICKNAMEGIVEN, ERR_NOSUCHNICK, ERR_PASSWDMISMATCH,
  ERR_UNKNOWNCOMMAND, ERR_WASNOSUCHNICK, RPL_AWAY, RPL_ENDOFMONLIST, RPL_ENDOFMOTD, RPL_ENDOFWHO, RPL_ENDOFWHOIS,
  RPL_ENDOFWHOWAS, RPL_GLOBALUSERS, RPL_ISON, RPL_ISUPPORT, RPL_LOCALUSERS, RPL_LUSERCHANNELS,
  RPL_LUSERCLIENT, RPL_LUSERME, RPL_LUSEROP, RPL_LUSERUNKNOWN, RPL_MONLIST, RPL_MONOFFLINE,
  RPL_MONONLINE, RPL_MOTD, RPL_MOTDSTART, RPL_NOWAWAY, RPL_UNAWAY, RPL_USERHOST, RPL_VERSION,
  RPL_WHOISACCOUNT, RPL_WHOISCHANNELS, RPL_WHOISIDLE, RPL_WHOISOPERATOR, RPL_WHOISSERVER,
  RPL_WHOISUSER, RPL_WHOREPLY, RPL_YOUREOPER,
} from '../protocol/numerics.js';
import type { Channel } from '../server/channel.js';
import type { Client } from '../server/client.js';
import { Relay } from '../server/relay.js';
import { VERSION, type IrcServer } from '../server/server.js';
import type { Session } from '../server/session.js';
import { canSee } from './channels.js';
import type { Command, RegisteredContext } from './types.js';

export function sendLusers(server: IrcServer, session: Session): void {
  let invisible = 0;
  let opers = 0;
  for (const c of server.clients.values()) {
    if (c.modes.has('i')) invisible++;
    if (c.isOper) opers++;
  }
  const users = server.clients.size;
  const unknown = [...server.sessions].filter((s) => !s.client).length;
  session.reply(RPL_LUSERCLIENT, `There are ${users - invisible} users and ${invisible} invisible on 1 servers`);
  session.reply(RPL_LUSEROP, String(opers), 'operator(s) online');
  session.reply(RPL_LUSERUNKNOWN, String(unknown), 'unknown connection(s)');
  session.reply(RPL_LUSERCHANNELS, String(server.channels.size), 'channels formed');
  session.reply(RPL_LUSERME, `I have ${users} clients and 0 servers`);
  session.reply(RPL_LOCALUSERS, String(users), String(server.config.limits.maxClients), `Current local users ${users}, max ${server.config.limits.maxClients}`);
  session.reply(RPL_GLOBALUSERS, String(users), String(server.config.limits.maxClients), `Current global users ${users}, max ${server.config.limits.maxClients}`);
}

export function sendMotd(server: IrcServer, session: Session): void {
  const lines = server.config.motd;
  if (lines.length === 0) {
    session.reply(ERR_NOMOTD, 'MOTD File is missing');
    return;
  }
  session.reply(RPL_MOTDSTART, `- ${server.name} Message of the day - `);
  for (const line of lines) session.reply(RPL_MOTD, `- ${line}`);
  session.reply(RPL_ENDOFMOTD, 'End of /MOTD command.');
}

/** Channels of `target` that `viewer` may see, with prefixes, for RPL_WHOISCHANNELS. */
function visibleChannels(viewer: Client, target: Client, multiPrefix: boolean): string[] {
  const out: string[] = [];
  for (const ch of target.channels.values()) {
    if (canSee(viewer, ch)) out.push(ch.prefixOf(target, multiPrefix) + ch.name);
  }
  return out;
}

// WHOIS [<server>] <nick>
async function handleWhois(ctx: RegisteredContext): Promise<void> {
  const { server, session, client, params } = ctx;
  const nick = (params[params.length - 1] ?? '').split(',')[0];
  if (!nick) {
    session.reply(ERR_NONICKNAMEGIVEN, 'No nickname given');
    return;
  }
  const target = server.findClient(nick);
  if (!target) {
    const known = await server.accounts.get(nick);
    if (session.closed) return;
    session.reply(ERR_NOSUCHNICK, nick, known ? `${known.name} is offline` : 'No such nick/channel');
    session.reply(RPL_ENDOFWHOIS, nick, 'End of /WHOIS list');
    return;
  }
  session.reply(RPL_WHOISUSER, target.nick, target.username, target.hostname, '*', target.realname);
  const chans = visibleChannels(client, target, session.caps.has('multi-prefix'));
  if (chans.length) session.reply(RPL_WHOISCHANNELS, target.nick, chans.join(' '));
  session.reply(RPL_WHOISSERVER, target.nick, server.name, server.config.networkName);
  if (target.away !== null) session.reply(RPL_AWAY, target.nick, target.away);
  if (target.isOper) session.reply(RPL_WHOISOPERATOR, target.nick, 'is an IRC operator');
  if (target.account) session.reply(RPL_WHOISACCOUNT, target.nick, target.account, 'is logged in as');
  const idle = Math.floor((Date.now() - target.lastActiveAt) / 1000);
  session.reply(RPL_WHOISIDLE, target.nick, String(idle), String(target.signonAt), 'seconds idle, signon time');
  session.reply(RPL_ENDOFWHOIS, target.nick, 'End of /WHOIS list');
}

// WHOWAS <nick>: we keep no nick history.
function handleWhowas(ctx: RegisteredContext): void {
  ctx.session.reply(ERR_WASNOSUCHNICK, ctx.params[0], 'There was no such nickname');
  ctx.session.reply(RPL_ENDOFWHOWAS, ctx.params[0], 'End of WHOWAS');
}

function whoFlags(target: Client, channel: Channel | null, multiPrefix: boolean): string {
  let flags = target.away !== null ? 'G' : 'H';
  if (target.isOper) flags += '*';
  if (channel) flags += channel.prefixOf(target, multiPrefix);
  return flags;
}

// WHO <mask>   (a channel, a nick, or a nick mask with * and ?)
function handleWho(ctx: RegisteredContext): void {
  const { server, session, client, params } = ctx;
  const mask = params[0] || '*';
  const multi = session.caps.has('multi-prefix');
  const row = (target: Client, channel: Channel | null): void => {
    session.reply(RPL_WHOREPLY, channel?.name ?? '*', target.username, target.hostname, server.name, target.nick,
      whoFlags(target, channel, multi), `0 ${target.realname}`);
  };
  if (mask.startsWith('#')) {
    const channel = server.channels.get(casefold(mask));
    if (channel && canSee(client, channel)) for (const m of channel.members.keys()) row(m, channel);
  } else if (!/[*?]/.test(mask)) {
    const target = server.findClient(mask);
    if (target) row(target, null);
  } else {
    const pattern = casefold(mask);
    const shares = (t: Client): boolean => [...t.channels.values()].some((ch) => ch.members.has(client));
    for (const t of server.clients.values()) {
      if (!globMatch(pattern, t.folded)) continue;
      if (t.modes.has('i') && t !== client && !shares(t)) continue; // +i hides from global WHO
      row(t, null);
    }
  }
  session.reply(RPL_ENDOFWHO, mask, 'End of WHO list');
}

// ISON <nick>{ <nick>}
function handleIson(ctx: RegisteredContext): void {
  const { server, session, params } = ctx;
  const online: string[] = [];
  for (const nick of params.join(' ').split(' ')) {
    if (!nick) continue;
    const c = server.findClient(nick);
    if (c) online.push(c.nick);
  }
  session.reply(RPL_ISON, online.join(' '));
}

// USERHOST <nick>{ <nick>}   (at most 5)
function handleUserhost(ctx: RegisteredContext): void {
  const { server, session, params } = ctx;
  const out: string[] = [];
  for (const nick of params.slice(0, 5)) {
    const c = server.findClient(nick);
    if (c) out.push(`${c.nick}${c.isOper ? '*' : ''}=${c.away !== null ? '-' : '+'}${c.username}@${c.hostname}`);
  }
  session.reply(RPL_USERHOST, out.join(' '));
}

/** Bytes of list text per reply line: well under 512 with the prefix and the nick. */
const LIST_BUDGET = 400;

/** Send `items` joined by commas over as many `numeric` lines as keep each under 512 bytes. */
function replyList(session: Session, numeric: string, items: string[]): void {
  let line: string[] = [];
  let len = 0;
  for (const item of items) {
    if (len + item.length + 1 > LIST_BUDGET && line.length) {
      session.reply(numeric, line.join(','));
      line = [];
      len = 0;
    }
    line.push(item);
    len += item.length + 1;
  }
  if (line.length) session.reply(numeric, line.join(','));
}

// MONITOR + <targets> | - <targets> | C | L | S   (IRCv3 monitor)
function handleMonitor(ctx: RegisteredContext): void {
  const { server, session, params } = ctx;
  const sub = params[0].toUpperCase();
  const targets = (params[1] ?? '').split(',').filter(Boolean);
  const limit = server.config.limits.monitorLimit;
  const report = (folds: Iterable<string>, names?: Map<string, string>): void => {
    const online: string[] = [];
    const offline: string[] = [];
    for (const folded of folds) {
      const c = server.clients.get(folded);
      if (c) online.push(c.prefix);
      else offline.push(names?.get(folded) ?? folded);
    }
    replyList(session, RPL_MONONLINE, online);
    replyList(session, RPL_MONOFFLINE, offline);
  };
  switch (sub) {
    case '+': {
      const added = new Map<string, string>();
      for (let i = 0; i < targets.length; i++) {
        const nick = targets[i];
        // Only names that could ever be online are watched: bounds the index by real nicks.
        if (!isValidNick(nick)) continue;
        const folded = casefold(nick);
        if (!session.monitors.has(folded)) {
          if (session.monitors.size >= limit) {
            session.reply(ERR_MONLISTFULL, String(limit), truncateUtf8(targets.slice(i).join(','), LIST_BUDGET), 'Monitor list is full.');
            break;
          }
          session.monitors.add(folded);
          let set = server.monitoredBy.get(folded);
          if (!set) server.monitoredBy.set(folded, (set = new Set()));
          set.add(session);
        }
        added.set(folded, nick);
      }
      report(added.keys(), added);
      return;
    }
    case '-':
      for (const nick of targets) server.unmonitor(session, casefold(nick));
      return;
    case 'C':
      server.unmonitorAll(session);
      return;
    case 'L':
      replyList(session, RPL_MONLIST, [...session.monitors]);
      session.reply(RPL_ENDOFMONLIST, 'End of MONITOR list');
      return;
    case 'S':
      report(session.monitors);
      return;
    default:
      session.reply(ERR_UNKNOWNCOMMAND, 'MONITOR', `Unknown MONITOR subcommand ${truncateUtf8(params[0], 32)}`);
  }
}

// AWAY [:<text>]
function handleAway(ctx: RegisteredContext): void {
  const { server, session, client, params } = ctx;
  // AWAYLEN=390, counted in bytes so the relayed AWAY line always fits 512.
  const text = params[0] ? truncateUtf8(params[0], 390 - Math.max(0, Buffer.byteLength(client.prefix) - 60)) : null;
  client.away = text;
  if (text === null) session.reply(RPL_UNAWAY, 'You are no longer marked as being away');
  else session.reply(RPL_NOWAWAY, 'You have been marked as being away');
  // away-notify (IRCv3): co-members with the cap learn of the change.
  const relay = new Relay(client.prefix, 'AWAY', text === null ? [] : [text], Date.now(), client.account);
  const told = new Set<Client>();
  for (const ch of client.channels.values()) {
    for (const m of ch.members.keys()) {
      if (m === client || told.has(m)) continue;
      told.add(m);
      for (const s of m.sessions) if (s.caps.has('away-notify')) s.relay(relay);
    }
  }
}

// MOTD [<target>]
function handleMotd(ctx: RegisteredContext): void {
  sendMotd(ctx.server, ctx.session);
}

// LUSERS
function handleLusers(ctx: RegisteredContext): void {
  sendLusers(ctx.server, ctx.session);
}

// VERSION [<target>]
function handleVersion(ctx: RegisteredContext): void {
  const { server, session } = ctx;
  session.reply(RPL_VERSION, VERSION, server.name, 'sealchat: end-to-end encrypted rooms over IRC');
  const tokens = server.isupport;
  for (let i = 0; i < tokens.length; i += 12) session.reply(RPL_ISUPPORT, ...tokens.slice(i, i + 12), 'are supported by this server');
}

// OPER <name> <password>
async function handleOper(ctx: RegisteredContext): Promise<void> {
  const { server, session, client, params } = ctx;
  const op = server.config.operators.find((o) => casefold(o.name) === casefold(params[0]));
  if (!server.loginsPerIp.take(session.ip)) {
    session.reply(ERR_PASSWDMISMATCH, 'Too many attempts; try again in a minute');
    return;
  }
  if (!op) {
    // Same work as a real check, so the reply time says nothing about which names exist.
    const anyHash = server.config.operators[0]?.passwordHash;
    if (anyHash) await server.accounts.verifyPasswordHash(anyHash, params[1]);
    session.reply(ERR_PASSWDMISMATCH, 'Password incorrect');
    return;
  }
  const ok = await server.accounts.verifyPasswordHash(op.passwordHash, params[1]);
  if (session.closed) return;
  if (!ok) {
    session.reply(ERR_PASSWDMISMATCH, 'Password incorrect');
    return;
  }
  server.loginsPerIp.refund(session.ip);
  client.modes.add('o');
  session.reply(RPL_YOUREOPER, 'You are now an IRC operator');
  server.deliverToClient(client, new Relay(client.prefix, 'MODE', [client.nick, '+o']));
  server.log.info(`oper ${op.name} by ${client.nick} ip=${session.ip}`);
}

export const queryCommands: Record<string, Command> = {
  WHOIS: { handler: handleWhois, minParams: 1 },
  WHOWAS: { handler: handleWhowas, minParams: 1 },
  WHO: { handler: handleWho, minParams: 0 },
  ISON: { handler: handleIson, minParams: 1 },
  USERHOST: { handler: handleUserhost, minParams: 1 },
  MONITOR: { handler: handleMonitor, minParams: 1 },
  AWAY: { handler: handleAway, minParams: 0 },
  MOTD: { handler: handleMotd, minParams: 0 },
  LUSERS: { handler: handleLusers, minParams: 0 },
  VERSION: { handler: handleVersion, minParams: 0 },
  OPER: { handler: handleOper, minParams: 2 },
};
