/**
 * Questions about users: WHOIS, WHOWAS, WHO, ISON, USERHOST (RFC 2812 §3.6, modern.ircdocs.horse).
 * Presence rule (docs/DESIGN.md "Rules the code keeps"): a user is online while at least one authenticated session exists;
 * WHOIS of an offline user answers 401 then 318.
 */
import { casefold } from '../../protocol/names.js';
import { globMatch } from '../protocol/text.js';
import {
  ERR_NONICKNAMEGIVEN, ERR_NOSUCHNICK, ERR_WASNOSUCHNICK, RPL_AWAY, RPL_ENDOFWHO, RPL_ENDOFWHOIS,
  RPL_ENDOFWHOWAS, RPL_ISON, RPL_USERHOST, RPL_WHOISACCOUNT, RPL_WHOISCHANNELS, RPL_WHOISIDLE,
  RPL_WHOISOPERATOR, RPL_WHOISSERVER, RPL_WHOISUSER, RPL_WHOREPLY, RPL_WHOSPCRPL, RPL_WHOWASUSER,
} from '../protocol/numerics.js';
import type { Channel, Client } from '../server/model.js';
import type { RegisteredContext } from './types.js';

/** Channels of `target` that `viewer` may see, with prefixes, for RPL_WHOISCHANNELS. */
function visibleChannels(viewer: Client, target: Client, multiPrefix: boolean): string[] {
  const out: string[] = [];
  for (const ch of target.channels.values()) {
    if (ch.visibleTo(viewer)) out.push(ch.prefixOf(target, multiPrefix) + ch.name);
  }
  return out;
}

// WHOIS [<server>] <nick>
export async function handleWhois(ctx: RegisteredContext): Promise<void> {
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
  session.reply(RPL_WHOISSERVER, target.nick, server.name, server.config.serverInfo);
  if (target.away !== null) session.reply(RPL_AWAY, target.nick, target.away);
  if (target.isOper) session.reply(RPL_WHOISOPERATOR, target.nick, 'is an IRC operator');
  if (target.account) session.reply(RPL_WHOISACCOUNT, target.nick, target.account, 'is logged in as');
  const idle = Math.floor((Date.now() - target.lastActiveAt) / 1000);
  session.reply(RPL_WHOISIDLE, target.nick, String(idle), String(target.signonAt), 'seconds idle, signon time');
  session.reply(RPL_ENDOFWHOIS, target.nick, 'End of /WHOIS list');
}

// WHOWAS <nick>{,<nick>} [<count>]   (RFC 2812 §3.6.3, modern.ircdocs.horse "WHOWAS")
// Newest entry first; at most <count> entries per nick, all of them when <count> is not positive.
export function handleWhowas(ctx: RegisteredContext): void {
  const { server, session, params } = ctx;
  const count = params[1] === undefined ? 0 : Number.parseInt(params[1], 10) || 0;
  for (const nick of params[0].split(',')) {
    if (!nick) continue;
    const entries = server.whowas(casefold(nick), count);
    if (entries.length === 0) session.reply(ERR_WASNOSUCHNICK, nick, 'There was no such nickname');
    for (const e of entries) {
      session.reply(RPL_WHOWASUSER, e.nick, e.username, e.hostname, '*', e.realname);
      session.reply(RPL_WHOISSERVER, e.nick, server.name, new Date(e.at * 1000).toUTCString());
    }
    session.reply(RPL_ENDOFWHOWAS, nick, 'End of WHOWAS');
  }
}

function whoFlags(target: Client, channel: Channel | null, multiPrefix: boolean): string {
  let flags = target.away !== null ? 'G' : 'H';
  if (target.isOper) flags += '*';
  if (channel) flags += channel.prefixOf(target, multiPrefix);
  return flags;
}

/**
 * WHOX (IRCv3 whox): `WHO <mask> %<fields>[,<token>]` asks for these fields, always answered in
 * this order in RPL_WHOSPCRPL whatever order they were asked in. Every field shows what WHOIS
 * already shows anyone (the same user, host, account and idle time), so WHOX tells no more.
 */
const WHOX_FIELDS = 'tcuihsnfdlaor';

interface WhoxQuery {
  fields: Set<string>;
  /** The client's token: 1 to 3 digits (anything else reads as 0). */
  token: string;
}

function parseWhox(arg: string | undefined): WhoxQuery | null {
  if (!arg?.startsWith('%')) return null;
  const [fields = '', token = ''] = arg.slice(1).split(',', 2);
  return { fields: new Set([...fields].filter((f) => WHOX_FIELDS.includes(f))), token: /^[0-9]{1,3}$/.test(token) ? token : '0' };
}

// WHO <mask> [%<fields>[,<token>]]   (a channel, a nick, or a nick mask with * and ?;
// modern.ircdocs.horse "WHO", IRCv3 whox)
export function handleWho(ctx: RegisteredContext): void {
  const { server, session, client, params } = ctx;
  const mask = params[0] || '*';
  const multi = session.caps.has('multi-prefix');
  const whox = parseWhox(params[1]);
  const row = (target: Client, channel: Channel | null): void => {
    const flags = whoFlags(target, channel, multi);
    if (!whox) {
      session.reply(RPL_WHOREPLY, channel?.name ?? '*', target.username, target.hostname, server.name, target.nick,
        flags, `0 ${target.realname}`);
      return;
    }
    const out: string[] = [];
    for (const f of WHOX_FIELDS) {
      if (!whox.fields.has(f)) continue;
      switch (f) {
        case 't': out.push(whox.token); break;
        case 'c': out.push(channel?.name ?? '*'); break;
        case 'u': out.push(target.username); break;
        // The address, exactly as the host field and WHOIS 311 already show it.
        case 'i': out.push(target.hostname); break;
        case 'h': out.push(target.hostname); break;
        case 's': out.push(server.name); break;
        case 'n': out.push(target.nick); break;
        case 'f': out.push(flags); break;
        case 'd': out.push('0'); break;
        case 'l': out.push(String(Math.floor((Date.now() - target.lastActiveAt) / 1000))); break;
        case 'a': out.push(target.account ?? '0'); break;
        case 'o': out.push('n/a'); break;
        case 'r': out.push(target.realname); break;
      }
    }
    session.reply(RPL_WHOSPCRPL, ...out);
  };
  if (mask.startsWith('#')) {
    const channel = server.channels.get(casefold(mask));
    if (channel && channel.visibleTo(client)) for (const m of channel.members.keys()) row(m, channel);
  } else if (!/[*?]/.test(mask)) {
    const target = server.findClient(mask);
    if (target) row(target, null);
  } else {
    const pattern = casefold(mask);
    const shares = (t: Client): boolean => [...t.channels.values()].some((ch) => ch.members.has(client));
    for (const t of server.clients.values()) {
      if (!globMatch(pattern, t.folded)) continue;
      if (t.hasMode('i') && t !== client && !shares(t)) continue; // +i hides from global WHO
      row(t, null);
    }
  }
  // The mask goes back as a middle parameter: one with a space or a leading ':' would break the line.
  session.reply(RPL_ENDOFWHO, /^[^:][^ ]*$/.test(mask) ? mask : '*', 'End of WHO list');
}

// ISON <nick>{ <nick>}
export function handleIson(ctx: RegisteredContext): void {
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
export function handleUserhost(ctx: RegisteredContext): void {
  const { server, session, params } = ctx;
  const out: string[] = [];
  for (const nick of params.slice(0, 5)) {
    const c = server.findClient(nick);
    if (c) out.push(`${c.nick}${c.isOper ? '*' : ''}=${c.away !== null ? '-' : '+'}${c.username}@${c.hostname}`);
  }
  session.reply(RPL_USERHOST, out.join(' '));
}
