/** About the server: MOTD, LUSERS, VERSION, TIME, INFO (RFC 2812 §3.4). */
import { ERR_NOSUCHSERVER, RPL_ENDOFINFO, RPL_INFO, RPL_TIME, RPL_VERSION } from '../protocol/numerics.js';
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
