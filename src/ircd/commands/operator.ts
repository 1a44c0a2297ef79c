/**
 * IRC operators: OPER (RFC 2812 §3.1.4) and what only they may do, KILL (RFC 2812 §3.7.1) and
 * WALLOPS (RFC 2812 §4.7). Operators are configured (config `operators`); the table marks KILL
 * and WALLOPS operOnly, so 481 for everyone else comes from the dispatcher.
 */
import { casefold } from '../../protocol/names.js';
import { ERR_NEEDMOREPARAMS, ERR_NOSUCHNICK, ERR_PASSWDMISMATCH, RPL_YOUREOPER } from '../protocol/numerics.js';
import { fitLastParam, truncateUtf8 } from '../protocol/text.js';
import { Relay } from '../server/relay.js';
import type { RegisteredContext } from './types.js';

// OPER <name> <password>
export async function handleOper(ctx: RegisteredContext): Promise<void> {
  const { server, session, client, params } = ctx;
  const op = server.config.operators.find((o) => casefold(o.name) === casefold(params[0]));
  // Per address (an IPv6 /64) and per operator name, as for account logins: guesses spread over
  // many addresses still run into the name's limit. Unknown names count too, so the replies
  // say nothing about which names exist.
  const from = server.throttleKey(session.ip);
  const name = `oper\n${casefold(params[0])}`;
  if (!server.loginsPerIp.take(from) || !server.loginsPerAccount.take(name)) {
    session.reply(ERR_PASSWDMISMATCH, 'Too many attempts; try again in a minute');
    return;
  }
  if (!op) {
    // Same work as a real check, so the reply time says nothing about which names exist.
    const anyHash = server.config.operators[0]?.passwordHash;
    if (anyHash) await server.accounts.verifyPasswordHash(anyHash, params[1]);
    session.reply(ERR_PASSWDMISMATCH, 'Password incorrect');
    return;
  }
  const ok = await server.accounts.verifyPasswordHash(op.passwordHash, params[1]);
  if (session.closed) return;
  if (!ok) {
    session.reply(ERR_PASSWDMISMATCH, 'Password incorrect');
    return;
  }
  server.loginsPerIp.refund(from);
  server.loginsPerAccount.refund(name);
  client.modes.add('o');
  session.reply(RPL_YOUREOPER, 'You are now an IRC operator');
  server.deliverToClient(client, new Relay(client.prefix, 'MODE', [client.nick, '+o']));
  server.log.info(`oper ${op.name} by ${client.nick} ip=${session.ip}`);
}

// KILL <nickname> [<comment>]   (the comment is optional, as in Ergo)
export function handleKill(ctx: RegisteredContext): void {
  const { server, session, client, params } = ctx;
  const target = server.findClient(params[0]);
  if (!target) {
    session.reply(ERR_NOSUCHNICK, params[0], 'No such nick/channel');
    return;
  }
  const comment = truncateUtf8(params[1] || 'no reason given', 200);
  server.log.info(`kill ${target.nick} by ${client.nick} ip=${session.ip}`);
  // The victim reads ERROR :Closing link … (Killed (<oper> (<comment>))); co-members a QUIT.
  server.disconnect(target, `Killed (${client.nick} (${comment}))`);
}

// WALLOPS <text>   (RFC 2812 §4.7, modern.ircdocs.horse "WALLOPS")
// To every user with user mode +w, from the operator, cut to fit one line. Only operators may
// send it, so it cannot become a way for anyone to message every user at once.
export function handleWallops(ctx: RegisteredContext): void {
  const { server, session, client, params } = ctx;
  if (!params[0]) {
    session.reply(ERR_NEEDMOREPARAMS, 'WALLOPS', 'Not enough parameters');
    return;
  }
  const text = fitLastParam(client.prefix, 'WALLOPS', [params[0]!], 400);
  const relay = new Relay(client.prefix, 'WALLOPS', text, Date.now(), client.account);
  for (const c of server.clients.values()) if (c.hasMode('w')) server.deliverToClient(c, relay);
}
