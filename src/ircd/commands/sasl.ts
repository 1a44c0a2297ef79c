/**
 * AUTHENTICATE: SASL PLAIN (IRCv3 sasl-3.1/3.2). A success sets the session's account, which
 * registration (server/login.ts) then uses without asking for a password again.
 */
import { casefold } from '../../protocol/names.js';
import {
  ERR_SASLABORTED, ERR_SASLALREADY, ERR_SASLFAIL, ERR_SASLTOOLONG, RPL_LOGGEDIN, RPL_SASLMECHS,
  RPL_SASLSUCCESS,
} from '../protocol/numerics.js';
import type { Context } from './types.js';

const SASL_CHUNK = 400;
const SASL_MAX = 1200;

// AUTHENTICATE <mechanism> | <base64 chunk> | + | *   (IRCv3 sasl-3.1)
export async function handleAuthenticate(ctx: Context): Promise<void> {
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
