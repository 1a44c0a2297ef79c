/**
 * Telling others that a user changed (AWAY, ACCOUNT): every session that shares a channel with
 * the user and enabled the capability for it (IRCv3 away-notify, account-notify), and every
 * session that MONITORs the user's nick with extended-monitor and that same capability (IRCv3
 * extended-monitor). Each session once; the user's own sessions not. AWAY (commands/presence.ts)
 * and a login after registration (login.ts) share it.
 */
import type { Client, Peer } from './model.js';
import type { Relay } from './relay.js';
import type { IrcServer } from './server.js';

export function notifyWatchers(server: IrcServer, client: Client, relay: Relay, cap: string): void {
  const told = new Set<Peer>(client.sessions);
  const tell = (s: Peer): void => {
    if (told.has(s)) return;
    told.add(s);
    if (s.caps.has(cap)) s.relay(relay);
  };
  for (const ch of client.channels.values()) for (const s of ch.sessions()) tell(s);
  const watchers = server.monitoredBy.get(client.folded);
  if (watchers) for (const s of watchers) if (s.caps.has('extended-monitor')) tell(s);
}
