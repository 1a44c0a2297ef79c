/**
 * CAP: IRCv3 capability negotiation (capability-negotiation, cap-notify). Registration waits
 * while a negotiation is open (between CAP LS/REQ and CAP END).
 */
import { ERR_INVALIDCAPCMD } from '../protocol/numerics.js';
import { completeRegistration } from '../server/login.js';
import type { Context } from './types.js';

/** Capabilities we implement, with their CAP LS 302 values. */
export const SUPPORTED_CAPS: ReadonlyMap<string, string> = new Map([
  ['account-notify', ''],
  ['account-tag', ''],
  ['away-notify', ''],
  ['batch', ''],
  ['cap-notify', ''],
  ['draft/chathistory', ''],
  ['echo-message', ''],
  ['extended-join', ''],
  ['extended-monitor', ''],
  ['invite-notify', ''],
  ['labeled-response', ''],
  ['message-tags', ''],
  ['multi-prefix', ''],
  ['sasl', 'PLAIN'],
  ['server-time', ''],
  ['userhost-in-names', ''],
]);

// CAP <subcommand> [:<capabilities>]
export function handleCap(ctx: Context): void {
  const { session, params } = ctx;
  const sub = params[0].toUpperCase();
  const nick = session.target;
  switch (sub) {
    case 'LS': {
      const version = Number(params[1] ?? 0) || 0;
      if (version > session.capVersion) session.capVersion = version;
      // cap-notify is implicit from 302 (IRCv3 capability-negotiation).
      if (version >= 302) session.setCap('cap-notify', true);
      if (!session.client) session.capNegotiating = true;
      const list = [...SUPPORTED_CAPS].map(([k, v]) => (v && session.capVersion >= 302 ? `${k}=${v}` : k)).join(' ');
      session.sendFrom(ctx.server.name, 'CAP', [nick, 'LS', list]);
      return;
    }
    case 'LIST':
      session.sendFrom(ctx.server.name, 'CAP', [nick, 'LIST', [...session.caps].join(' ')]);
      return;
    case 'REQ': {
      if (!session.client) session.capNegotiating = true;
      const wanted = (params[1] ?? '').trim().split(/ +/).filter(Boolean);
      // All or nothing: one unknown capability NAKs the whole request.
      const ok = wanted.length > 0 && wanted.every((c) => SUPPORTED_CAPS.has(c.replace(/^-/, '')));
      if (!ok) {
        session.sendFrom(ctx.server.name, 'CAP', [nick, 'NAK', params[1] ?? '']);
        return;
      }
      for (const c of wanted) {
        if (c.startsWith('-')) session.setCap(c.slice(1), false);
        else session.setCap(c, true);
      }
      session.sendFrom(ctx.server.name, 'CAP', [nick, 'ACK', wanted.join(' ')]);
      return;
    }
    case 'END':
      if (session.client) return;
      session.capNegotiating = false;
      void completeRegistration(ctx.server, session);
      return;
    default:
      session.reply(ERR_INVALIDCAPCMD, params[0], 'Invalid CAP command');
  }
}
