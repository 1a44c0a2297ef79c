/**
 * The command table and its dispatcher. The checks every command shares (registered or not,
 * enough parameters, unknown command) are made here once; handlers never repeat them.
 */
import type { IrcMessage } from '../../protocol/message.js';
import { ERR_NEEDMOREPARAMS, ERR_NOTREGISTERED, ERR_UNKNOWNCOMMAND } from '../protocol/numerics.js';
import type { IrcServer } from '../server/server.js';
import type { Session } from '../server/session.js';
import type { Command, RegisteredContext } from './types.js';
import { registrationCommands } from './registration.js';
import { messagingCommands } from './messaging.js';
import { channelCommands } from './channels.js';
import { modeCommands } from './modes.js';
import { queryCommands } from './queries.js';

export const Commands: ReadonlyMap<string, Command> = new Map<string, Command>([
  ...Object.entries(registrationCommands),
  ...Object.entries(messagingCommands),
  ...Object.entries(channelCommands),
  ...Object.entries(modeCommands),
  ...Object.entries(queryCommands),
]);

export function dispatch(server: IrcServer, session: Session, msg: IrcMessage): Promise<void> | undefined {
  const cmd = Commands.get(msg.command);
  const client = session.client;
  if (!cmd) {
    // Before registration, unknown commands get 451 like other registered-only ones
    // (modern.ircdocs.horse, "Connection Registration").
    if (!client) session.reply(ERR_NOTREGISTERED, 'You have not registered');
    else session.reply(ERR_UNKNOWNCOMMAND, msg.command, 'Unknown command');
    return undefined;
  }
  if (!client && !cmd.preRegistration) {
    session.reply(ERR_NOTREGISTERED, 'You have not registered');
    return undefined;
  }
  if (msg.params.length < cmd.minParams) {
    session.reply(ERR_NEEDMOREPARAMS, msg.command, 'Not enough parameters');
    return undefined;
  }
  if (client && msg.command !== 'PING' && msg.command !== 'PONG') client.lastActiveAt = session.now;
  const ctx = { server, session, msg, params: msg.params, client } as RegisteredContext;
  const result = cmd.handler(ctx);
  return result instanceof Promise ? result : undefined;
}
