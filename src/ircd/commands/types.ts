/** The shape of a command table entry (after ergo's irc/commands.go) and of a handler's context. */
import type { IrcMessage } from '../../protocol/message.js';
import type { Client } from '../server/model.js';
import type { IrcServer } from '../server/server.js';
import type { Session } from '../server/session.js';

export interface Context {
  server: IrcServer;
  session: Session;
  msg: IrcMessage;
  params: string[];
  /** The command table itself, so HELP reads the same entries the dispatcher runs. */
  commands: CommandTable;
}

/** Context of a command that needs registration: the dispatcher guarantees `client`. */
export interface RegisteredContext extends Context {
  client: Client;
}

export interface Command {
  /** Handlers may be async (logins hash passwords); lines of one session still run in order. */
  handler: (ctx: RegisteredContext) => void | Promise<void>;
  /** Fewer parameters than this → 461 ERR_NEEDMOREPARAMS, handled once in the dispatcher. */
  minParams: number;
  /** Usable before registration completes (otherwise 451 ERR_NOTREGISTERED). */
  preRegistration?: boolean;
  /** Only for IRC operators (otherwise 481 ERR_NOPRIVILEGES), checked once in the dispatcher. */
  operOnly?: boolean;
  /** What HELP shows: the syntax, then one line on what the command does here. */
  help: { syntax: string; text: string };
}

export type CommandTable = ReadonlyMap<string, Command>;
