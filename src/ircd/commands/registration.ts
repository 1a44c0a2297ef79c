/**
 * Connection registration: PASS, NICK, USER (RFC 2812 §3.1), and NICK changes afterwards.
 * Order as clients really send it: irssi sends CAP LS first and PASS only after CAP END;
 * WeeChat sends PASS, CAP LS, NICK, USER (test/realclients). Registration completes once NICK
 * and USER are in and no capability negotiation is open (server/login.ts).
 */
import { casefold, isValidNick, KEYBOT_NICK } from '../../protocol/names.js';
import {
  ERR_ALREADYREGISTERED, ERR_ERRONEUSNICKNAME, ERR_NEEDMOREPARAMS, ERR_NICKNAMEINUSE, ERR_NONICKNAMEGIVEN,
} from '../protocol/numerics.js';
import { completeRegistration } from '../server/login.js';
import type { Client } from '../server/model.js';
import type { IrcServer } from '../server/server.js';
import type { Context, RegisteredContext } from './types.js';

// PASS <password>   or   PASS <account>:<password>  (bouncer convention)
export function handlePass(ctx: Context): void {
  if (ctx.session.client) {
    ctx.session.reply(ERR_ALREADYREGISTERED, 'You may not reregister');
    return;
  }
  ctx.session.password = ctx.params[0];
}

// NICK <nickname>
export function handleNick(ctx: Context): void | Promise<void> {
  const { session, server, params } = ctx;
  const nick = params[0];
  if (!nick) {
    session.reply(ERR_NONICKNAMEGIVEN, 'No nickname given');
    return;
  }
  if (!isValidNick(nick)) {
    session.reply(ERR_ERRONEUSNICKNAME, nick, 'Erroneous nickname');
    return;
  }
  const client = session.client;
  if (!client) {
    session.nick = nick;
    return completeRegistration(server, session);
  }
  return changeNick(ctx as RegisteredContext, nick);
}

async function changeNick(ctx: RegisteredContext, nick: string): Promise<void> {
  const { session, server, client } = ctx;
  const folded = casefold(nick);
  if (client.account) {
    const own = folded === casefold(client.account);
    if (server.config.forceNickEqualsAccount) {
      // nick = account name (docs/DESIGN.md "Rules the code keeps"); only the case may differ, and we keep the registered one.
      if (folded !== client.folded) session.reply(ERR_ERRONEUSNICKNAME, nick, 'Your nick is your account name; it cannot be changed');
      return;
    }
    if (own) {
      // Back to the account's own name (in its registered case); its rooms follow at the next login.
      if (folded !== client.folded) server.rename(client, client.account);
      return;
    }
    if (folded !== client.folded && inRoom(server, client)) {
      // Companions and keybot know a room member by its nick = account (docs/PROTOCOL.md "Room messages").
      session.reply(ERR_ERRONEUSNICKNAME, nick, 'You are in an encrypted room: there your nick must stay your account name');
      return;
    }
  }
  if (nick === client.nick) return;
  if (folded !== client.folded) {
    if (folded === KEYBOT_NICK || server.clients.has(folded) || (await server.accounts.get(nick))) {
      session.reply(ERR_NICKNAMEINUSE, nick, 'Nickname is already in use');
      return;
    }
    if (session.closed || server.clients.has(folded)) return;
  }
  // A change of case only is a change too: the client and its channels see the new spelling.
  server.rename(client, nick);
}

function inRoom(server: IrcServer, client: Client): boolean {
  for (const folded of client.channels.keys()) if (server.rooms.isRoom(folded)) return true;
  return false;
}

// USER <username> <mode> <unused> :<realname>   (RFC 2812 §3.1.3)
export function handleUser(ctx: Context): void | Promise<void> {
  const { session, params } = ctx;
  if (session.client) {
    session.reply(ERR_ALREADYREGISTERED, 'You may not reregister');
    return;
  }
  // The realname may not be empty (RFC 2812 §3.1.3 grammar; modern.ircdocs.horse "USER").
  if (params[0] === '' || params[3] === '') {
    session.reply(ERR_NEEDMOREPARAMS, 'USER', 'Not enough parameters');
    return;
  }
  session.username = params[0].replace(/[^A-Za-z0-9_.-]/g, '').slice(0, 30) || 'user';
  session.realname = params[3].slice(0, 100);
  return completeRegistration(ctx.server, session);
}
