/**
 * Completing registration, called by NICK, USER and CAP END once the last piece is in.
 * Who is this connection? Credentials, in order of preference:
 *   1. SASL PLAIN, already verified by AUTHENTICATE;
 *   2. PASS <account>:<password> (bouncer convention);
 *   3. PASS <password> with NICK as the account name.
 * Unknown account and wrong password get the same 464 ERR_PASSWDMISMATCH and the same work
 * (Accounts.authenticate verifies a dummy hash for unknown names), so replies do not reveal
 * which accounts exist. Attempts are rate-limited per IP and per account name.
 */
import { casefold, KEYBOT_NICK } from '../../protocol/names.js';
import {
  ERR_ERRONEUSNICKNAME, ERR_NICKNAMEINUSE, ERR_PASSWDMISMATCH, ERR_SASLABORTED, RPL_CREATED,
  RPL_MYINFO, RPL_WELCOME, RPL_YOURHOST,
} from '../protocol/numerics.js';
import type { Client } from './model.js';
import { notifyWatchers } from './notify.js';
import { placeAtLogin } from './placement.js';
import { Relay } from './relay.js';
import type { IrcServer } from './server.js';
import type { Session } from './session.js';
import { sendChannelBurst, sendIsupport, sendLusers, sendMotd } from './views.js';

function refuse(session: Session, text: string): void {
  session.reply(ERR_PASSWDMISMATCH, text);
  session.close('Bad password', true);
}

export async function completeRegistration(server: IrcServer, session: Session): Promise<void> {
  if (session.client || session.registering || session.capNegotiating || !session.nick || !session.username) return;
  if (session.sasl) {
    // Registration completed while SASL was still in progress: abort it and register without
    // it (IRCv3 sasl-3.1, "If the client completes registration … the server SHOULD abort it").
    session.sasl = null;
    session.reply(ERR_SASLABORTED, 'SASL authentication aborted');
  }
  session.registering = true;
  try {
    await register(server, session);
  } finally {
    session.registering = false;
  }
}

async function register(server: IrcServer, session: Session): Promise<void> {
  const nick = session.nick!;
  let account: string | null = session.saslAccount;
  let isService = false;

  if (!account && session.password !== null) {
    const pass = session.password;
    const colon = pass.indexOf(':');
    const name = colon > 0 ? pass.slice(0, colon) : nick;
    const password = colon > 0 ? pass.slice(colon + 1) : pass;
    session.password = null; // do not keep a plaintext password around longer than needed
    const record = await server.attemptLogin(session, name, password);
    if (session.closed) return;
    if (record === 'throttled') {
      session.reply(ERR_PASSWDMISMATCH, 'Too many login attempts; try again in a minute');
      session.close('Too many login attempts', true);
      return;
    }
    if (!record) {
      // With requireAccount=false a wrong PASS may still be the server password for a guest.
      if (!server.config.requireAccount && colon <= 0 && (await guestPasswordOk(server, pass))) {
        return registerGuest(server, session);
      }
      return refuse(session, 'Password incorrect');
    }
    account = record.name;
    isService = record.service === true;
  } else if (account) {
    const record = await server.accounts.get(account);
    if (session.closed) return;
    if (!record) return refuse(session, 'Password incorrect');
    isService = record.service === true;
  }

  if (!account) {
    if (server.config.requireAccount) {
      return refuse(session, 'Password required: connect with PASS <account>:<password> (or SASL PLAIN)');
    }
    if (server.config.serverPasswordHash) return refuse(session, 'Password required');
    return registerGuest(server, session);
  }
  if (isService && server.isOnline(account)) {
    // Two keybots would hand out different keys under the same epoch numbers: one at a time.
    session.reply(ERR_NICKNAMEINUSE, account, 'The key service is already connected');
    session.close('Key service already connected', true);
    return;
  }
  welcome(server, session, account, isService, await nickWanted(server, session, account, isService));
}

/**
 * The nick an account holder asks to register under. The nick is the account (docs/DESIGN.md
 * "Nick is the account"), unless config forceNickEqualsAccount is off (Ergo's
 * force-nick-equals-account): then the NICK it sent, if that is no account's name and not
 * keybot's. welcome() makes the final, synchronous choice.
 */
async function nickWanted(server: IrcServer, session: Session, account: string, isService: boolean): Promise<string> {
  const wanted = session.nick!;
  const folded = casefold(wanted);
  if (server.config.forceNickEqualsAccount || isService || folded === casefold(account) || folded === KEYBOT_NICK) return account;
  return (await server.accounts.get(wanted)) === null ? wanted : account;
}

async function guestPasswordOk(server: IrcServer, password: string): Promise<boolean> {
  const hash = server.config.serverPasswordHash;
  return hash !== null && (await server.accounts.verifyPasswordHash(hash, password));
}

async function registerGuest(server: IrcServer, session: Session): Promise<void> {
  const nick = session.nick!;
  const folded = casefold(nick);
  if (folded === KEYBOT_NICK) {
    session.reply(ERR_ERRONEUSNICKNAME, nick, 'This nick is reserved for the key service');
    session.nick = null;
    return;
  }
  // A guest may not take a registered account's nick, online or not.
  const taken = server.clients.has(folded) || (await server.accounts.get(nick)) !== null;
  if (session.closed) return;
  if (taken) {
    session.reply(ERR_NICKNAMEINUSE, nick, 'Nickname is registered or in use; choose another');
    session.nick = null;
    return;
  }
  welcome(server, session, null, false, nick);
}

function welcome(server: IrcServer, session: Session, account: string | null, isService: boolean, wanted: string): void {
  if (session.closed) return;
  let nick = wanted;
  let attached: ReturnType<IrcServer['attach']>;
  if (account === null) {
    attached = server.attach(session, { nick, account, isService });
  } else {
    // One identity per account: a further session joins the one online, under its nick. A nick
    // taken meanwhile, or any nick but the account's own while forceNickEqualsAccount is on,
    // gives way to the account name, which no one else may hold (001 says which it is).
    const online = server.clientOfAccount(account);
    if (online) nick = online.nick;
    attached = server.attach(session, { nick, account, isService });
    if (!attached && casefold(nick) !== casefold(account)) attached = server.attach(session, { nick: (nick = account), account, isService });
  }
  if (!attached) {
    // Another connection took this nick while ours was being checked: it keeps it, this one
    // stays unregistered and may choose another (RFC 2812 §3.1.2).
    session.reply(ERR_NICKNAMEINUSE, nick, 'Nickname is already in use');
    session.nick = null;
    return;
  }
  const { client, isNew } = attached;
  const name = server.name;
  session.reply(RPL_WELCOME, `Welcome to the ${server.config.networkName} IRC network, ${client.prefix}`);
  session.reply(RPL_YOURHOST, `Your host is ${name}, running version ${server.version}`);
  session.reply(RPL_CREATED, `This server was created ${server.createdAt.toUTCString()}`);
  session.reply(RPL_MYINFO, name, server.version, 'iow', 'beiCIklmnost', 'beIkl');
  sendIsupport(server, session);
  sendLusers(server, session);
  sendMotd(server, session);
  if (!isNew) {
    // Another session of this account is already here: bring this one up to date.
    for (const channel of client.channels.values()) {
      session.sendFrom(client.prefix, 'JOIN', [channel.name]);
      sendChannelBurst(session, channel);
    }
  }
  // Rooms that outlive a connection: the account's rooms, then its mailbox (docs/PROTOCOL.md).
  // Companions and keybot know a room member by a nick that is its account name (docs/PROTOCOL.md
  // "Room messages"), so an identity under another nick (forceNickEqualsAccount off) is placed in
  // none, and its mailbox waits for a login under the account's name.
  if (account === null || client.folded === casefold(account)) placeAtLogin(server, session);
  else if (server.rooms.roomsOf(casefold(account)).length > 0) {
    session.sendFrom(name, 'NOTICE', [client.nick, `Your encrypted rooms need your account name as nick: they wait until you connect as ${account}`]);
  }
  server.log.info(`login ${account ? `account=${account} nick=${client.nick}` : `guest=${nick}`} ip=${session.ip} session=${session.id}`);
}

/**
 * A SASL login after registration (IRCv3 sasl-3.2), which commands/sasl.ts allows only with
 * config forceNickEqualsAccount off, only for a guest, and only to an account not online: the
 * guest's identity becomes the account's under the nick it has, which no account owns (guests
 * cannot hold an account's name), so it stays out of rooms (welcome above). Co-members with
 * account-notify, and watchers with extended-monitor and account-notify, see ACCOUNT (IRCv3);
 * the account comes online.
 */
export function logInAfterRegistration(server: IrcServer, client: Client, account: string): void {
  client.account = account;
  notifyWatchers(server, client, new Relay(client.prefix, 'ACCOUNT', [account], Date.now(), account), 'account-notify');
  server.emit('presence', { name: account, online: true });
  server.log.info(`login account=${account} nick=${client.nick} after registration`);
}
