/**
 * Placing accounts in rooms and taking them out (docs/PROTOCOL.md "Rooms that outlive a
 * connection", "The daemon"): at login, by keybot's `room.add` and `room.remove`, and when an
 * account is deleted. The login and the control socket share these, so they live in server/.
 */
import type { RoomAddOutcome } from '../../protocol/control.js';
import { casefold, KEYBOT_NICK } from '../../protocol/names.js';
import type { Channel, Client, Peer } from './model.js';
import { Relay } from './relay.js';
import type { IrcServer } from './server.js';
import { sendChannelBurst } from './views.js';

/** Put `client` in a room's channel, with the JOIN, topic and NAMES of an ordinary join. */
function joinRoom(server: IrcServer, client: Client, channel: Channel): void {
  if (channel.members.has(client)) {
    // keybot gets op in its rooms, also when it was already there.
    if (client.isService) channel.members.get(client)!.op = true;
    return;
  }
  server.join(client, channel, client.isService, (s) => sendChannelBurst(s, channel));
}

/**
 * A session of an account completed registration (after the welcome burst and MOTD): join it to
 * every room the account is a member or pending member of (keybot: every room, with op), then
 * deliver its mailbox oldest first. All in one synchronous block, so that nothing the client
 * sends after its JOIN is answered before this is done.
 */
export function placeAtLogin(server: IrcServer, session: Peer): void {
  const client = session.client;
  if (!client || client.account === null) return;
  const account = casefold(client.account);
  const rooms = client.isService ? server.rooms.all() : server.rooms.roomsOf(account);
  for (const room of rooms) {
    const channel = server.roomChannel(room.name);
    if (!client.isService) server.rooms.startMembership(channel.folded, client.account);
    joinRoom(server, client, channel);
  }
  for (const line of server.rooms.takeMail(account)) {
    const tags = line.tags ? new Map(line.tags) : null;
    session.relay(new Relay(line.src, line.cmd, line.params, line.t, line.a, tags, line.id));
  }
}

/**
 * `room.add`: make `roomName` a room and place the accounts (`records`: the accounts as stored,
 * in the order asked; null for one that does not exist). Online accounts join now with every
 * session; offline ones become pending.
 */
export function addToRoom(server: IrcServer, roomName: string, records: Array<{ asked: string; name: string | null }>): RoomAddOutcome[] {
  const room = server.rooms.ensure(roomName);
  const channel = server.roomChannel(room.name);
  // keybot is in every room (as at each of its logins), and first, so that it sees every JOIN.
  const keybot = server.findClient(KEYBOT_NICK);
  if (keybot?.isService) joinRoom(server, keybot, channel);
  return records.map(({ asked, name }): RoomAddOutcome => {
    if (name === null) return { account: asked, joined: false, error: { code: 'not_found', message: `no account named ${asked}` } };
    const client = server.findClient(name);
    const online = client !== undefined && client.account !== null && casefold(client.account) === casefold(name);
    const elsewhere = online ? undefined : server.clientOfAccount(name);
    if (elsewhere) {
      // forceNickEqualsAccount off: online under another nick, which a room cannot have
      // (docs/PROTOCOL.md "Room messages"). Refused rather than pending, so that keybot keeps
      // no one in a room it could not open.
      return { account: name, joined: false, error: { code: 'forbidden', message: `${name} is connected as ${elsewhere.nick}; encrypted rooms need the account name as nick` } };
    }
    if (online && client.isService) {
      joinRoom(server, client, channel);
      return { account: name, joined: true };
    }
    if (!online) {
      server.rooms.addPending(channel.folded, name);
      return { account: name, joined: false };
    }
    server.rooms.startMembership(channel.folded, name);
    joinRoom(server, client, channel);
    return { account: name, joined: true };
  });
}

/**
 * End an account's place in a room: online, a server KICK from the channel (every session);
 * an offline member, the room's present members get the KICK for its nick; pending, nothing is
 * sent. False when the account had no place in the room.
 */
export function removeFromRoom(server: IrcServer, roomFolded: string, account: string, reason: string): boolean {
  const folded = casefold(account);
  const member = server.rooms.member(roomFolded, folded);
  if (!member || member.state === 'left') return false;
  const channel = server.channels.get(roomFolded);
  const client = server.findClient(member.account);
  if (member.state === 'member' && channel) {
    const kick = (nick: string): Relay => new Relay(server.name, 'KICK', [channel.name, nick, reason], Date.now());
    if (client && channel.members.has(client)) {
      server.leave(client, channel, kick(client.nick)); // leave() ends the membership
      return true;
    }
    server.deliverToChannel(channel, kick(member.account));
  }
  server.rooms.endMembership(roomFolded, folded);
  return true;
}

/** An account was deleted: removed from every room as by `room.remove`, then forgotten. */
export function removeFromAllRooms(server: IrcServer, account: string, reason: string): void {
  const folded = casefold(account);
  for (const room of server.rooms.all()) {
    if (server.rooms.member(casefold(room.name), folded)) removeFromRoom(server, casefold(room.name), account, reason);
  }
  server.rooms.forgetAccount(folded);
}
