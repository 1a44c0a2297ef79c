/**
 * Connection registration: CAP, AUTHENTICATE (SASL PLAIN), PASS, NICK, USER, and the
 * connection-level PING, PONG, QUIT.
 * Order as clients really send it: irssi sends CAP LS first and PASS only after CAP END;
 * WeeChat sends PASS, CAP LS, NICK, USER (see shared/REAL_CLIENTS.md). Registration completes
 * once NICK and USER are in and no capability negotiation is open (IRCv3 capability-negotiation).
 */
import { casefold, isValidNick, KEYBOT_NICK } from '../../protocol/names.js';
import {
  ERR_ALREADYREGISTERED, ERR_ERRONEUSNICKNAME, ERR_NICKNAMEINUSE, ERR_NONICKNAMEGIVEN,
  ERR_SASLABORTED, ERR_SASLALREADY, ERR_SASLFAIL, ERR_SASLTOOLONG, RPL_LOGGEDIN, RPL_SASLMECHS,
  RPL_SASLSUCCESS,
} from '../protocol/numerics.js';
import { Relay } from '../server/relay.js';
import { truncateUtf8 } from '../protocol/text.js';
import type { Command, Context, RegisteredContext } from './types.js';
import { completeRegistration } from './login.js';

/** Capabilities we implement, with their CAP LS 302 values. */
export const SUPPORTED_CAPS: ReadonlyMap<string, string> = new Map([
  ['account-notify', ''],
  ['account-tag', ''],
  ['away-notify', ''],
  ['cap-notify', ''],
  ['echo-message', ''],
  ['extended-join', ''],
  ['invite-notify', ''],
  ['message-tags', ''],
  ['multi-prefix', ''],
  ['sasl', 'PLAIN'],
  ['server-time', ''],
  ['userhost-in-names', ''],
]);

// CAP <subcommand> [:<capabilities>]
function handleCap(ctx: Context): void {
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
      // 410 ERR_INVALIDCAPCMD
      session.sendFrom(ctx.server.name, '410', [nick, params[0], 'Invalid CAP command']);
  }
}

const SASL_CHUNK = 400;
const SASL_MAX = 1200;

// AUTHENTICATE <mechanism> | <base64 chunk> | + | *   (IRCv3 sasl-3.1)
async function handleAuthenticate(ctx: Context): Promise<void> {
  const { session, server, params } = ctx;
  const arg = params[0];
  if (session.client || session.saslAccount) {
    session.reply(ERR_SASLALREADY, 'You have already authenticated using SASL');
    return;
  }
  if (!session.caps.has('sasl')) {
    session.reply(ERR_SASLFAIL, 'SASL authentication failed: request the sasl capability first');
    return;
  }
  if (arg === '*') {
    session.sasl = null;
    session.reply(ERR_SASLABORTED, 'SASL authentication aborted');
    return;
  }
  if (!session.sasl) {
    if (arg.toUpperCase() !== 'PLAIN') {
      session.reply(RPL_SASLMECHS, 'PLAIN', 'are available SASL mechanisms');
      session.reply(ERR_SASLFAIL, 'SASL authentication failed');
      return;
    }
    session.sasl = { mechanism: 'PLAIN', buffer: '' };
    session.sendFrom(null, 'AUTHENTICATE', ['+']);
    return;
  }
  if (arg !== '+') session.sasl.buffer += arg;
  if (session.sasl.buffer.length > SASL_MAX) {
    session.sasl = null;
    session.reply(ERR_SASLTOOLONG, 'SASL message too long');
    return;
  }
  if (arg.length === SASL_CHUNK) return; // more chunks follow
  const payload = Buffer.from(session.sasl.buffer, 'base64').toString('utf8');
  session.sasl = null;
  const [authzid, authcid, password] = payload.split('\0');
  if (authcid === undefined || password === undefined || (authzid && casefold(authzid) !== casefold(authcid))) {
    session.reply(ERR_SASLFAIL, 'SASL authentication failed');
    return;
  }
  const record = await server.attemptLogin(session, authcid, password);
  if (session.closed) return;
  if (record === 'throttled') {
    session.reply(ERR_SASLFAIL, 'SASL authentication failed: too many attempts, try again later');
    return;
  }
  session.saslAttempts++;
  if (!record) {
    session.reply(ERR_SASLFAIL, 'SASL authentication failed');
    if (session.saslAttempts >= 3) session.close('Too many failed SASL attempts', true);
    return;
  }
  session.saslAccount = record.name;
  const mask = `${session.nick ?? record.name}!${record.name}@${session.ip}`;
  session.reply(RPL_LOGGEDIN, mask, record.name, `You are now logged in as ${record.name}`);
  session.reply(RPL_SASLSUCCESS, 'SASL authentication successful');
}

// PASS <password>   or   PASS <account>:<password>  (bouncer convention)
function handlePass(ctx: Context): void {
  if (ctx.session.client) {
    ctx.session.reply(ERR_ALREADYREGISTERED, 'You may not reregister');
    return;
  }
  ctx.session.password = ctx.params[0];
}

// NICK <nickname>
function handleNick(ctx: Context): void | Promise<void> {
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
    // nick = account name (DESIGN.md); only the case may differ, and we keep the registered one.
    if (folded !== client.folded) session.reply(ERR_ERRONEUSNICKNAME, nick, 'Your nick is your account name; it cannot be changed');
    return;
  }
  if (folded === client.folded) return;
  if (folded === KEYBOT_NICK || server.clients.has(folded) || (await server.accounts.get(nick))) {
    session.reply(ERR_NICKNAMEINUSE, nick, 'Nickname is already in use');
    return;
  }
  if (session.closed || server.clients.has(folded)) return;
  const relay = new Relay(client.prefix, 'NICK', [nick], Date.now(), null);
  const told = new Set([client]);
  server.deliverToClient(client, relay);
  for (const ch of client.channels.values()) {
    for (const m of ch.members.keys()) {
      if (told.has(m)) continue;
      told.add(m);
      server.deliverToClient(m, relay);
    }
  }
  server.clients.delete(client.folded);
  for (const ch of client.channels.values()) ch.invited.delete(client.folded);
  client.nick = nick;
  client.folded = folded;
  server.clients.set(folded, client);
}

// USER <username> <mode> <unused> :<realname>   (RFC 2812 §3.1.3)
function handleUser(ctx: Context): void | Promise<void> {
  const { session, params } = ctx;
  if (session.client) {
    session.reply(ERR_ALREADYREGISTERED, 'You may not reregister');
    return;
  }
  session.username = params[0].replace(/[^A-Za-z0-9_.-]/g, '').slice(0, 30) || 'user';
  session.realname = params[3].slice(0, 100);
  return completeRegistration(ctx.server, session);
}

// PING <token>
function handlePing(ctx: Context): void {
  ctx.session.sendFrom(ctx.server.name, 'PONG', [ctx.server.name, ctx.params[0]]);
}

// PONG <token>
function handlePong(ctx: Context): void {
  ctx.session.pingSentAt = 0;
}

// QUIT [:<reason>]
function handleQuit(ctx: Context): void {
  const reason = ctx.params[0] ? `Quit: ${truncateUtf8(ctx.params[0], 300)}` : 'Quit';
  ctx.session.close(reason, true);
}


export const registrationCommands: Record<string, Command> = {
  CAP: { handler: handleCap, minParams: 1, preRegistration: true },
  AUTHENTICATE: { handler: handleAuthenticate, minParams: 1, preRegistration: true },
  PASS: { handler: handlePass, minParams: 1, preRegistration: true },
  NICK: { handler: handleNick, minParams: 1, preRegistration: true },
  USER: { handler: handleUser, minParams: 4, preRegistration: true },
  PING: { handler: handlePing, minParams: 1, preRegistration: true },
  PONG: { handler: handlePong, minParams: 0, preRegistration: true },
  QUIT: { handler: handleQuit, minParams: 0, preRegistration: true },
};
