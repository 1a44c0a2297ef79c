/**
 * MODE for users (+i, +w, -o) and channels (i s n t m C k l o v b e I) — RFC 2812 §3.1.5 and §3.2.3,
 * modern.ircdocs.horse "Channel modes". ISUPPORT says CHANMODES=beI,k,l,Cimnst and PREFIX=(ov)@+.
 */
import { casefold } from '../../protocol/names.js';
import {
  ERR_BANLISTFULL, ERR_CHANOPRIVSNEEDED, ERR_INVALIDMODEPARAM, ERR_NOSUCHNICK, RPL_BANLIST, RPL_ENDOFBANLIST,
  RPL_ENDOFEXCEPTLIST, RPL_ENDOFINVEXLIST, RPL_EXCEPTLIST, RPL_INVEXLIST,
  ERR_UMODEUNKNOWNFLAG, ERR_UNKNOWNMODE, ERR_USERNOTINCHANNEL, ERR_USERSDONTMATCH, RPL_CHANNELMODEIS,
  RPL_CREATIONTIME, RPL_UMODEIS,
} from '../protocol/numerics.js';
import { Relay } from '../server/relay.js';
import { MAX_LIST_ENTRIES, normaliseMask, type Channel, type ListMode, type Peer } from '../server/model.js';
import { visibleChannel } from '../server/views.js';
import type { RegisteredContext } from './types.js';

const FLAG_MODES = new Set(['C', 'i', 'm', 'n', 's', 't']);

/** How each list mode is shown (modern.ircdocs.horse: 367/368, 348/349, 346/347) and who may read it. */
const LIST_MODES: Record<ListMode, { item: string; end: string; what: string; opsOnly: boolean }> = {
  b: { item: RPL_BANLIST, end: RPL_ENDOFBANLIST, what: 'ban', opsOnly: false },
  // Exceptions say who gets past +b and +i: only the channel's operators read them (as Solanum does).
  e: { item: RPL_EXCEPTLIST, end: RPL_ENDOFEXCEPTLIST, what: 'ban exception', opsOnly: true },
  I: { item: RPL_INVEXLIST, end: RPL_ENDOFINVEXLIST, what: 'invite exception', opsOnly: true },
};

function isListMode(c: string): c is ListMode {
  return c === 'b' || c === 'e' || c === 'I';
}
/** How many parameterised modes one MODE command may change (ISUPPORT MODES=4). */
const MAX_PARAM_MODES = 4;

// MODE <target> [<modestring> [<mode arguments>...]]
export function handleMode(ctx: RegisteredContext): void {
  if (ctx.params[0].startsWith('#')) channelMode(ctx);
  else userMode(ctx);
}

function userMode(ctx: RegisteredContext): void {
  const { session, client, params, server } = ctx;
  if (casefold(params[0]) !== client.folded) {
    if (!server.findClient(params[0])) session.reply(ERR_NOSUCHNICK, params[0], 'No such nick');
    else session.reply(ERR_USERSDONTMATCH, "Can't change mode for other users");
    return;
  }
  if (params.length < 2) {
    session.reply(RPL_UMODEIS, '+' + [...client.modes].sort().join(''));
    return;
  }
  let adding = true;
  let applied = '';
  let lastSign = '';
  let unknown = false;
  for (const c of params[1]) {
    if (c === '+' || c === '-') {
      adding = c === '+';
      continue;
    }
    // +o only through OPER; everyone may drop it. +i hides from WHO masks; +w receives WALLOPS.
    if (c === 'i' || c === 'w' || (c === 'o' && !adding)) {
      if (adding === client.hasMode(c)) continue;
      if (adding) client.modes.add(c);
      else client.modes.delete(c);
      const sign = adding ? '+' : '-';
      applied += (sign !== lastSign ? sign : '') + c;
      lastSign = sign;
    } else if (c !== 'o') {
      unknown = true;
    }
  }
  if (unknown) session.reply(ERR_UMODEUNKNOWNFLAG, 'Unknown MODE flag');
  if (applied) server.deliverToClient(client, new Relay(client.prefix, 'MODE', [client.nick, applied]));
}

function channelMode(ctx: RegisteredContext): void {
  const { session, client, params, server } = ctx;
  const channel = visibleChannel(server, session, client, params[0]);
  if (!channel) return;
  const membership = channel.members.get(client);
  if (params.length < 2) {
    const { modes, params: mp } = channel.modeString(Boolean(membership));
    session.reply(RPL_CHANNELMODEIS, channel.name, modes, ...mp);
    session.reply(RPL_CREATIONTIME, channel.name, String(channel.createdAt));
    return;
  }
  const modestring = params[1];
  // List queries that clients send on join (MODE #c b / e / I); anyone who can see the channel
  // may read its ban list (RFC 2812 §3.2.3), only its operators the exception lists.
  if (/^[+]?[beI]$/.test(modestring) && params.length === 2) {
    const m = modestring.replace('+', '') as ListMode;
    if (LIST_MODES[m].opsOnly && !membership?.op) session.reply(ERR_CHANOPRIVSNEEDED, channel.name, "You're not a channel operator");
    else sendList(session, channel, m);
    return;
  }
  if (!membership?.op) {
    session.reply(ERR_CHANOPRIVSNEEDED, channel.name, "You're not a channel operator");
    return;
  }
  const args = params.slice(2);
  let adding = true;
  let appliedModes = '';
  let lastSign = '';
  const appliedArgs: string[] = [];
  let paramModes = 0;
  const record = (sign: string, c: string, arg?: string): void => {
    appliedModes += (sign !== lastSign ? sign : '') + c;
    lastSign = sign;
    if (arg !== undefined) appliedArgs.push(arg);
  };
  for (const c of modestring) {
    if (c === '+' || c === '-') {
      adding = c === '+';
      continue;
    }
    const sign = adding ? '+' : '-';
    if (FLAG_MODES.has(c)) {
      if (adding === channel.flags.has(c)) continue;
      if (adding) channel.flags.add(c);
      else channel.flags.delete(c);
      record(sign, c);
    } else if (isListMode(c) && args.length === 0) {
      sendList(session, channel, c); // +b (+e, +I) without a mask lists the entries
    } else if (c === 'k' || c === 'l' || c === 'o' || c === 'v' || isListMode(c)) {
      const takesArg = c === 'o' || c === 'v' || isListMode(c) || adding || c === 'k';
      const arg = takesArg ? args.shift() : undefined;
      if (takesArg && arg === undefined && !(c === 'k' && !adding)) {
        session.reply(ERR_INVALIDMODEPARAM, channel.name, c, '*', `Mode ${c} needs a parameter`);
        continue;
      }
      if (++paramModes > MAX_PARAM_MODES) break;
      if (isListMode(c)) {
        const list = channel.lists[c];
        // An extban with nothing after its prefix (`m:`, `a:`, `m:a:`) names nobody.
        if (/^(?:m:)?(?:a:)?$/.test(arg!)) {
          session.reply(ERR_INVALIDMODEPARAM, channel.name, c, '*', 'An extban needs a mask or an account after its prefix');
          continue;
        }
        const mask = normaliseMask(arg!);
        const folded = casefold(mask);
        if (adding) {
          if (list.has(folded) || /\s/.test(mask)) continue;
          if (list.size >= MAX_LIST_ENTRIES) {
            session.reply(ERR_BANLISTFULL, channel.name, mask, `Channel ${LIST_MODES[c].what} list is full`);
            continue;
          }
          list.set(folded, { mask, setBy: client.prefix, setAt: Math.floor(Date.now() / 1000) });
          record(sign, c, mask);
        } else {
          const entry = list.get(folded);
          if (!entry) continue;
          list.delete(folded);
          record(sign, c, entry.mask);
        }
      } else if (c === 'k') {
        if (adding) {
          // ERR_INVALIDMODEPARAM <client> <target> <mode char> <parameter> :<description>; the
          // parameter is '*' so a key with spaces (or none) cannot break the reply's shape.
          if (!arg || /[\s,:]/.test(arg) || arg.length > 32) {
            session.reply(ERR_INVALIDMODEPARAM, channel.name, 'k', '*', 'Invalid key: 1 to 32 characters, no spaces, commas or colons');
            continue;
          }
          channel.key = arg;
          record(sign, c, arg);
        } else if (channel.key !== null) {
          channel.key = null;
          record(sign, c, '*');
        }
      } else if (c === 'l') {
        if (adding) {
          const n = Number(arg);
          if (!Number.isInteger(n) || n <= 0) {
            session.reply(ERR_INVALIDMODEPARAM, channel.name, 'l', arg && !/\s/.test(arg) ? arg : '*', 'Limit must be a positive integer');
            continue;
          }
          channel.limit = n;
          record(sign, c, String(n));
        } else if (channel.limit !== null) {
          channel.limit = null;
          record(sign, c);
        }
      } else {
        const target = server.findClient(arg!);
        if (!target) {
          session.reply(ERR_NOSUCHNICK, arg!, 'No such nick/channel');
          continue;
        }
        const tm = channel.members.get(target);
        if (!tm) {
          session.reply(ERR_USERNOTINCHANNEL, arg!, channel.name, "They aren't on that channel");
          continue;
        }
        const key = c === 'o' ? 'op' : 'voice';
        if (tm[key] === adding) continue;
        tm[key] = adding;
        record(sign, c, target.nick);
      }
    } else {
      session.reply(ERR_UNKNOWNMODE, c, `is an unknown mode char for ${channel.name}`);
    }
  }
  if (appliedModes) {
    server.deliverToChannel(channel, new Relay(client.prefix, 'MODE', [channel.name, appliedModes, ...appliedArgs], Date.now(), client.account));
  }
}

/** One line per entry (<channel> <mask> <who> <when>, modern.ircdocs.horse), then the end numeric. */
function sendList(session: Peer, channel: Channel, mode: ListMode): void {
  const { item, end, what } = LIST_MODES[mode];
  for (const e of channel.lists[mode].values()) session.reply(item, channel.name, e.mask, e.setBy, String(e.setAt));
  session.reply(end, channel.name, `End of channel ${what} list`);
}
