/**
 * AUTHENTICATE: SASL PLAIN (IRCv3 sasl-3.1/3.2). A success sets the session's account, which
 * registration (server/login.ts) then uses without asking for a password again. After
 * registration only a guest may log in, and only with config forceNickEqualsAccount off.
 */
import { casefold } from '../../protocol/names.js';
import {
  ERR_ALREADYREGISTERED, ERR_SASLABORTED, ERR_SASLALREADY, ERR_SASLFAIL, ERR_SASLTOOLONG, RPL_LOGGEDIN, RPL_SASLMECHS,
  RPL_SASLSUCCESS,
} from '../protocol/numerics.js';
import type { AccountRecord } from '../store/index.js';
import type { Client } from '../server/model.js';
import { logInAfterRegistration } from '../server/login.js';
import type { Context } from './types.js';

const SASL_CHUNK = 400;
/** The longest response, in base64: 900 bytes, enough for MAX_PASSWORD_BYTES (accounts.ts) and two names. */
const SASL_MAX = 1200;

// AUTHENTICATE <mechanism> | <base64 chunk> | + | *   (IRCv3 sasl-3.1, sasl-3.2)
export async function handleAuthenticate(ctx: Context): Promise<void> {
  const { session, server, params } = ctx;
  const arg = params[0];
  if (session.client && server.config.forceNickEqualsAccount) {
    // sasl-3.2 lets servers allow a new AUTHENTICATE after registration. A nick here is its
    // account name (docs/DESIGN.md), so a guest logging in would have to become someone else
    // under the channels it sits in. 462 is the reply the spec's readers expect from a server
    // without it (irctest: SASL_AFTER_REGISTRATION not supported).
    session.reply(ERR_ALREADYREGISTERED, 'You may not reregister: SASL is only available before registration');
    return;
  }
  if (session.saslAccount || session.client?.account != null) {
    // No re-authentication (a SHOULD of sasl-3.2): it would move every session of the identity,
    // and its rooms, to another account. 907 is the spec's answer for it.
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
  if (arg.length > SASL_CHUNK) {
    // One line longer than a chunk breaks the framing (sasl-3.1: 905 ERR_SASLTOOLONG).
    session.sasl = null;
    session.reply(ERR_SASLTOOLONG, 'SASL message too long');
    return;
  }
  if (arg !== '+') session.sasl.buffer += arg;
  if (session.sasl.buffer.length > SASL_MAX) {
    // Well-formed chunks that never end: no PLAIN response is this long; fail the attempt.
    session.sasl = null;
    session.reply(ERR_SASLFAIL, 'SASL authentication failed: response too long');
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
  if (session.client) return logInGuest(ctx, session.client, record);
  session.saslAccount = record.name;
  const mask = `${session.nick ?? record.name}!${record.name}@${session.ip}`;
  session.reply(RPL_LOGGEDIN, mask, record.name, `You are now logged in as ${record.name}`);
  session.reply(RPL_SASLSUCCESS, 'SASL authentication successful');
}

/**
 * A guest logs in after registration (forceNickEqualsAccount off; server/login.ts). Not to the
 * key service's account (its nick is reserved) nor to an account already online: one identity per
 * account, and a guest's nick cannot become that identity's.
 */
function logInGuest(ctx: Context, client: Client, record: AccountRecord): void {
  const { session, server } = ctx;
  if (record.service === true || server.isOnline(record.name)) {
    session.reply(ERR_SASLFAIL, `SASL authentication failed: ${record.name} is already connected; log in before registering to share its nick`);
    return;
  }
  logInAfterRegistration(server, client, record.name);
  session.reply(RPL_LOGGEDIN, client.prefix, record.name, `You are now logged in as ${record.name}`);
  session.reply(RPL_SASLSUCCESS, 'SASL authentication successful');
}
