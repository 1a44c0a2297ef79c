/**
 * The presence and channel methods of the control socket (keybot's view of the live server):
 * who is online, what a channel holds, and the server-side join and kick keybot uses for its rooms.
 */
import { type ChannelInfo, type JoinOutcome, type RoomAccount } from '../../protocol/control.js';
import { casefold, isValidChannelName, KEYBOT_NICK } from '../../protocol/names.js';
import type { Channel } from '../server/model.js';
import { addToRoom, removeFromRoom } from '../server/placement.js';
import { Relay } from '../server/relay.js';
import type { IrcServer } from '../server/server.js';
import { sendChannelBurst } from '../server/views.js';
import { ControlFailure, type ControlHandlers } from './server.js';

function channelInfo(server: IrcServer, channel: Channel): ChannelInfo {
  const { modes } = channel.modeString(false);
  const members: string[] = [];
  const operators: string[] = [];
  for (const [c, m] of channel.members) {
    members.push(c.nick);
    if (m.op) operators.push(c.nick);
  }
  const info: ChannelInfo = { name: channel.name, modes, topic: channel.topic, members, operators };
  const room = server.rooms.get(channel.folded);
  if (room) {
    // A room names its accounts, online or not (docs/PROTOCOL.md "Rooms that outlive a connection").
    info.accounts = [];
    for (const m of Object.values(room.members)) {
      if (m.state === 'left') continue;
      const client = server.findClient(m.account);
      const state: RoomAccount['state'] = m.state === 'pending' ? 'pending' : client && channel.members.has(client) ? 'joined' : 'offline';
      info.accounts.push({ account: m.account, state });
    }
  }
  return info;
}

/**
 * Put an online user into a channel, creating it if needed. Bypasses +i/+k/+l, since the key
 * service decided who is in the room. Throws ControlFailure('offline') for a user not online.
 */
function serverSideJoin(server: IrcServer, channel: string, nick: string): void {
  const client = server.findClient(nick);
  if (!client) throw new ControlFailure('offline', `${nick} is not online`);
  const { channel: ch, created } = server.getOrCreateChannel(channel);
  // The key service gets op in its rooms, also when it rejoins one after a restart.
  if (!ch.members.has(client)) server.join(client, ch, created || client.isService, (s) => sendChannelBurst(s, ch));
  else if (client.isService) ch.members.get(client)!.op = true;
}

/** Presence and channel methods of the control socket; they act on the live server state. */
export function makeChannelMethods(server: IrcServer): ControlHandlers {
  return {
    'presence.online': async () => server.onlineAccounts(),
    'channel.get': async ({ channel }) => {
      const ch = server.channels.get(casefold(channel));
      return ch ? channelInfo(server, ch) : null;
    },
    // member '*' lists every channel (keybot uses it to find its rooms after a restart).
    'channel.list': async ({ member }) => {
      if (member === '*') return [...server.channels.values()].map((ch) => channelInfo(server, ch));
      const who = server.findClient(member ?? KEYBOT_NICK);
      if (!who) return [];
      return [...who.channels.values()].map((ch) => channelInfo(server, ch));
    },
    // Rooms that outlive a connection: membership by account (docs/PROTOCOL.md).
    'room.add': async ({ room, accounts }) => {
      if (!isValidChannelName(room)) throw new ControlFailure('bad_request', `invalid room name ${room}`);
      // Look every account up first, then place them all in one synchronous step, so that
      // nobody's login falls between the check and the placement.
      const records = await Promise.all(accounts.map(async (asked) => ({ asked, name: (await server.accounts.get(asked))?.name ?? null })));
      const outcome = addToRoom(server, room, records);
      await server.rooms.flush();
      return outcome;
    },
    'room.remove': async ({ room, account, reason }) => {
      const folded = casefold(room);
      if (!server.rooms.isRoom(folded)) throw new ControlFailure('not_found', `${room} is not a room`);
      if (!removeFromRoom(server, folded, account, reason ?? 'Removed')) throw new ControlFailure('not_found', `${account} has no place in ${room}`);
      await server.rooms.flush();
      return { ok: true };
    },
    // Server-side join: bypasses +i/+k/+l, since the key service decided who is in the room.
    'channel.join': async ({ channel, nick }) => {
      if (!isValidChannelName(channel)) throw new ControlFailure('bad_request', `invalid channel name ${channel}`);
      serverSideJoin(server, channel, nick);
      return { ok: true };
    },
    // The same for many nicks in one call; each nick gets its own outcome, none stops the others.
    'channel.joinmany': async ({ channel, nicks }) => {
      if (!isValidChannelName(channel)) throw new ControlFailure('bad_request', `invalid channel name ${channel}`);
      return nicks.map((nick): JoinOutcome => {
        try {
          serverSideJoin(server, channel, nick);
          return { nick, ok: true };
        } catch (err) {
          if (!(err instanceof ControlFailure)) throw err;
          return { nick, ok: false, error: { code: err.code, message: err.message } };
        }
      });
    },
    'channel.kick': async ({ channel, nick, reason }) => {
      const ch = server.channels.get(casefold(channel));
      const client = server.findClient(nick);
      if (!ch || !client || !ch.members.has(client)) throw new ControlFailure('not_found', `${nick} is not in ${channel}`);
      server.leave(client, ch, new Relay(server.name, 'KICK', [ch.name, client.nick, reason ?? 'Removed'], Date.now()));
      return { ok: true };
    },
  };
}
