/**
 * Presence: AWAY (RFC 2812 §4.1, IRCv3 away-notify) and MONITOR (IRCv3 monitor: 730/731 are also
 * pushed by the server when a watched nick comes or goes; with extended-monitor, AWAY and ACCOUNT
 * too, server/notify.ts).
 */
import { casefold, isValidNick } from '../../protocol/names.js';
import { truncateUtf8 } from '../protocol/text.js';
import {
  ERR_MONLISTFULL, ERR_UNKNOWNCOMMAND, RPL_ENDOFMONLIST, RPL_MONLIST, RPL_MONOFFLINE, RPL_MONONLINE,
  RPL_NOWAWAY, RPL_UNAWAY,
} from '../protocol/numerics.js';
import { notifyWatchers } from '../server/notify.js';
import { Relay } from '../server/relay.js';
import type { Session } from '../server/session.js';
import type { RegisteredContext } from './types.js';

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
export function handleMonitor(ctx: RegisteredContext): void {
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
export function handleAway(ctx: RegisteredContext): void {
  const { session, client, params } = ctx;
  // AWAYLEN=390, counted in bytes so the relayed AWAY line always fits 512.
  const text = params[0] ? truncateUtf8(params[0], 390 - Math.max(0, Buffer.byteLength(client.prefix) - 60)) : null;
  client.away = text;
  if (text === null) session.reply(RPL_UNAWAY, 'You are no longer marked as being away');
  else session.reply(RPL_NOWAWAY, 'You have been marked as being away');
  // away-notify (IRCv3): co-members with the cap learn of the change, and so do watchers with
  // extended-monitor.
  notifyWatchers(ctx.server, client, new Relay(client.prefix, 'AWAY', text === null ? [] : [text], Date.now(), client.account), 'away-notify');
}
