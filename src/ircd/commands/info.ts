/** About the server: MOTD, LUSERS, VERSION (RFC 2812 §3.4). */
import { RPL_VERSION } from '../protocol/numerics.js';
import { sendIsupport, sendLusers, sendMotd } from '../server/views.js';
import type { RegisteredContext } from './types.js';

// MOTD [<target>]
export function handleMotd(ctx: RegisteredContext): void {
  sendMotd(ctx.server, ctx.session);
}

// LUSERS
export function handleLusers(ctx: RegisteredContext): void {
  sendLusers(ctx.server, ctx.session);
}

// VERSION [<target>]
export function handleVersion(ctx: RegisteredContext): void {
  const { server, session } = ctx;
  session.reply(RPL_VERSION, server.version, server.name, 'sealchat: end-to-end encrypted rooms over IRC');
  sendIsupport(server, session);
}
