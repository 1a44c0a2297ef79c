/** About the server: MOTD, LUSERS, VERSION, TIME, INFO, LINKS (RFC 2812 §3.4), HELP (modern.ircdocs.horse). */
import {
  ERR_HELPNOTFOUND, ERR_NOSUCHSERVER, RPL_ENDOFHELP, RPL_ENDOFINFO, RPL_ENDOFLINKS, RPL_HELPSTART, RPL_HELPTXT, RPL_INFO,
  RPL_LINKS, RPL_TIME, RPL_VERSION,
} from '../protocol/numerics.js';
import { globMatch } from '../protocol/text.js';
import { sendIsupport, sendLusers, sendMotd } from '../server/views.js';
import type { RegisteredContext } from './types.js';

/**
 * These commands may name a server (RFC 2812 §3.4): we are the only one, so any other name is
 * 402 ERR_NOSUCHSERVER and true is returned.
 */
function otherServer(ctx: RegisteredContext): boolean {
  const target = ctx.params[0];
  if (target === undefined || target === '' || target.toLowerCase() === ctx.server.name.toLowerCase()) return false;
  ctx.session.reply(ERR_NOSUCHSERVER, target, 'No such server');
  return true;
}

// MOTD [<target>]
export function handleMotd(ctx: RegisteredContext): void {
  if (otherServer(ctx)) return;
  sendMotd(ctx.server, ctx.session);
}

// LUSERS
export function handleLusers(ctx: RegisteredContext): void {
  sendLusers(ctx.server, ctx.session);
}

// VERSION [<target>]
export function handleVersion(ctx: RegisteredContext): void {
  if (otherServer(ctx)) return;
  const { server, session } = ctx;
  session.reply(RPL_VERSION, server.version, server.name, 'sealchat: end-to-end encrypted rooms over IRC');
  sendIsupport(server, session);
}

// TIME [<server>]   → 391 <client> <server> <timestamp> <TS offset> :<human-readable time>
// (modern.ircdocs.horse "RPL_TIME"; the timestamp form is what ircu and Ergo send.)
export function handleTime(ctx: RegisteredContext): void {
  if (otherServer(ctx)) return;
  const now = new Date(ctx.session.now);
  ctx.session.reply(RPL_TIME, ctx.server.name, String(Math.floor(now.getTime() / 1000)), '0', now.toUTCString());
}

/** What INFO tells: the software, where its design is written, and its licence. */
const INFO_LINES = [
  'sealchat: secure group chat over IRC.',
  'The daemon relays end-to-end encrypted rooms; it never holds room keys.',
  'Room keys come from keybot; see docs/DESIGN.md and docs/SECURITY.md.',
  'Licence: MIT.',
];

// INFO [<target>]   → RPL_INFO lines, then RPL_ENDOFINFO (RFC 2812 §3.4.10)
export function handleInfo(ctx: RegisteredContext): void {
  if (otherServer(ctx)) return;
  const { server, session } = ctx;
  session.reply(RPL_INFO, `${server.version} on ${server.name}, up since ${server.createdAt.toUTCString()}`);
  for (const line of INFO_LINES) session.reply(RPL_INFO, line);
  session.reply(RPL_ENDOFINFO, 'End of INFO list');
}

// LINKS [[<remote server>] <server mask>]   (RFC 2812 §3.4.5, modern.ircdocs.horse "LINKS")
// → 364 <server> <server it links through> :<hopcount> <server info> (what servers send: itself
// twice, hop count 0), then 365 * :End of /LINKS list. sealchat is one server with no links,
// so the list is this server alone (when the mask matches it).
export function handleLinks(ctx: RegisteredContext): void {
  const { server, session, params } = ctx;
  const mask = params[params.length - 1];
  if (mask === undefined || globMatch(mask.toLowerCase(), server.name.toLowerCase())) {
    session.reply(RPL_LINKS, server.name, server.name, `0 ${server.config.serverInfo}`);
  }
  session.reply(RPL_ENDOFLINKS, '*', 'End of /LINKS list');
}

/** Bytes of command names per RPL_HELPTXT line of the index: well under 512 with the prefix. */
const HELP_INDEX_BUDGET = 300;

// HELP [<subject>]   and   HELPOP [<subject>]   (modern.ircdocs.horse "HELP")
// → 704 <subject> :<first line>, 705 <subject> :<line>…, 706 <subject> :<last line>; an unknown
// subject gets 524 ERR_HELPNOTFOUND. The text comes from the command table, so it cannot go stale.
export function handleHelp(ctx: RegisteredContext): void {
  const { session, params, commands } = ctx;
  const asked = (params[0] ?? '').trim().split(' ')[0]!;
  if (asked === '') {
    session.reply(RPL_HELPSTART, '*', 'sealchat: secure group chat over IRC. Commands (HELP <command> for one):');
    let line: string[] = [];
    let len = 0;
    for (const name of [...commands.keys()].sort()) {
      if (len + name.length + 1 > HELP_INDEX_BUDGET && line.length) {
        session.reply(RPL_HELPTXT, '*', line.join(' '));
        line = [];
        len = 0;
      }
      line.push(name);
      len += name.length + 1;
    }
    if (line.length) session.reply(RPL_HELPTXT, '*', line.join(' '));
    session.reply(RPL_ENDOFHELP, '*', 'Rooms are end-to-end encrypted: message keybot with "help" to open one.');
    return;
  }
  const subject = asked.toUpperCase();
  const entry = commands.get(subject);
  if (!entry) {
    // The subject is echoed as a middle parameter: only a plain word may be (no ':' first, ≤ 32 bytes).
    const shown = /^[\x21-\x39\x3b-\x7e][\x21-\x7e]{0,31}$/.test(asked) ? asked : '*';
    session.reply(ERR_HELPNOTFOUND, shown, 'No help available on this topic');
    return;
  }
  session.reply(RPL_HELPSTART, subject, entry.help.syntax);
  session.reply(RPL_HELPTXT, subject, entry.help.text);
  if (entry.operOnly) session.reply(RPL_HELPTXT, subject, 'Only IRC operators may use it.');
  session.reply(RPL_ENDOFHELP, subject, 'End of /HELP');
}
