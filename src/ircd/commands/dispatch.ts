/**
 * parse → dispatch: one line in, one handler run. The checks every command shares are made here
 * once (malformed or overlong line, unknown command, not registered, not enough parameters,
 * operator only); handlers never repeat them. The table is passed in (commands/table.ts), and
 * the server receives the result, so neither the server nor the handlers import the table.
 */
import { parseLine, type IrcMessage } from '../../protocol/message.js';
import {
  ERR_INPUTTOOLONG, ERR_NEEDMOREPARAMS, ERR_NOPRIVILEGES, ERR_NOTREGISTERED, ERR_UNKNOWNCOMMAND,
} from '../protocol/numerics.js';
import type { IrcServer, LineDispatcher } from '../server/server.js';
import type { Session } from '../server/session.js';
import type { CommandTable, RegisteredContext } from './types.js';

/** labeled-response: "the label tag ... SHOULD NOT exceed 64 bytes" (IRCv3). */
const MAX_LABEL_BYTES = 64;

/** The label of a line the parser refused, when the session takes labeled responses; plain ASCII only. */
function labelOf(session: Session, line: string): string | undefined {
  if (line[0] !== '@' || !session.caps.has('labeled-response') || !session.caps.has('batch')) return undefined;
  return /^@(?:[^ ]*;)?label=([\x21-\x3a\x3c-\x5b\x5d-\x7e]{1,64})(?:[; ]|$)/.exec(line)?.[1];
}

export function makeDispatcher(table: CommandTable): LineDispatcher {
  return (server, session, line) => {
    // NUL and a bare CR never belong inside a line (RFC 1459 §2.3.1); relaying a CR would let a
    // sender forge a second line for every recipient that splits on CR.
    const bad = line.includes('\0') ? 'NUL byte' : line.includes('\r') ? 'bare CR' : null;
    const parsed = bad === null ? parseLine(line) : null;
    if (parsed?.ok === false && parsed.reason === 'empty') return undefined; // RFC 2812 §2.3.1: empty messages are ignored
    if (parsed === null || !parsed.ok) {
      const reply: [string, ...string[]] =
        parsed === null ? [ERR_UNKNOWNCOMMAND, '*', `Malformed line: ${bad}`]
        : parsed.reason === 'too_long' || parsed.reason === 'tags_too_long' ? [ERR_INPUTTOOLONG, 'Input line was too long']
        : parsed.reason === 'too_many_params' ? [ERR_UNKNOWNCOMMAND, '*', 'Malformed line: too many parameters']
        : [ERR_UNKNOWNCOMMAND, '*', 'Malformed line'];
      const refuse = (): undefined => {
        session.reply(...reply);
        return undefined;
      };
      // The refusal of a labeled line is labeled too (labeled-response), read from the raw line.
      const label = labelOf(session, line);
      return label === undefined ? refuse() : session.runLabeled(label, refuse);
    }
    const msg = parsed.message;
    // labeled-response (IRCv3): the replies to a line with a label carry it. Labels longer than
    // the spec's 64 bytes are ignored rather than copied onto every line of a long reply.
    const label = msg.tags.get('label');
    if (label !== undefined && Buffer.byteLength(label) <= MAX_LABEL_BYTES && session.caps.has('labeled-response') && session.caps.has('batch')) {
      return session.runLabeled(label, () => runCommand(table, server, session, msg));
    }
    return runCommand(table, server, session, msg);
  };
}

/** The shared checks, in order, then the table entry's handler. */
function runCommand(table: CommandTable, server: IrcServer, session: Session, msg: IrcMessage): Promise<void> | undefined {
  const cmd = table.get(msg.command);
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
  if (cmd.operOnly && !client?.isOper) {
    session.reply(ERR_NOPRIVILEGES, "Permission Denied- You're not an IRC operator");
    return undefined;
  }
  if (client && msg.command !== 'PING' && msg.command !== 'PONG') client.lastActiveAt = session.now;
  const ctx = { server, session, msg, params: msg.params, client, commands: table } as RegisteredContext;
  const result = cmd.handler(ctx);
  return result instanceof Promise ? result : undefined;
}
