/** The connection itself: PING, PONG, QUIT (RFC 2812 §3.7.2, §3.7.3, §3.1.7). */
import { truncateUtf8 } from '../protocol/text.js';
import type { Context } from './types.js';

// PING <token>
export function handlePing(ctx: Context): void {
  ctx.session.sendFrom(ctx.server.name, 'PONG', [ctx.server.name, ctx.params[0]]);
}

// PONG <token>
export function handlePong(ctx: Context): void {
  ctx.session.pingSentAt = 0;
}

// QUIT [:<reason>]
export function handleQuit(ctx: Context): void {
  const reason = ctx.params[0] ? `Quit: ${truncateUtf8(ctx.params[0], 300)}` : 'Quit';
  ctx.session.close(reason, true);
}
