/**
 * The terminal client's input: one table of slash commands (it drives /help and argument
 * checks) and a pure parser from a typed line to text or a command.
 */

export type ChatCommandName =
  | 'help'
  | 'invite'
  | 'online'
  | 'whois'
  | 'status'
  | 'rooms'
  | 'join'
  | 'leave'
  | 'key'
  | 'msg'
  | 'me'
  | 'quit';

export interface ChatCommand {
  name: ChatCommandName;
  /** Other names that run it. */
  aliases?: string[];
  usage: string;
  summary: string;
  minArgs: number;
  /** Infinity for a free-text tail. */
  maxArgs: number;
}

export const CHAT_COMMANDS: readonly ChatCommand[] = [
  { name: 'invite', usage: '[#room] USER...', summary: 'open a new encrypted room with USERs (or add them to #room)', minArgs: 1, maxArgs: 21 },
  { name: 'online', usage: '', summary: 'who is online', minArgs: 0, maxArgs: 0 },
  { name: 'whois', usage: 'NICK', summary: 'whether NICK is online, and where', minArgs: 1, maxArgs: 1 },
  { name: 'status', usage: 'USER', summary: "USER's presence and key fingerprint (asks keybot)", minArgs: 1, maxArgs: 1 },
  { name: 'rooms', usage: '', summary: 'your rooms, and the keys this client holds', minArgs: 0, maxArgs: 0 },
  { name: 'join', usage: '#room', summary: 'talk in #room (one of your rooms; new rooms come from /invite)', minArgs: 1, maxArgs: 1 },
  { name: 'leave', aliases: ['part'], usage: '[#room]', summary: 'leave a room (the current one by default)', minArgs: 0, maxArgs: 1 },
  { name: 'key', usage: '[#room]', summary: "ask keybot to send the room's key again", minArgs: 0, maxArgs: 1 },
  { name: 'msg', usage: 'TARGET TEXT', summary: 'send TEXT to a room (encrypted) or a command to keybot', minArgs: 2, maxArgs: Infinity },
  { name: 'me', usage: 'TEXT', summary: 'an action in the current room (encrypted)', minArgs: 1, maxArgs: Infinity },
  { name: 'help', usage: '[COMMAND]', summary: 'this list, or one command', minArgs: 0, maxArgs: 1 },
  { name: 'quit', aliases: ['exit'], usage: '[MESSAGE]', summary: 'disconnect and exit', minArgs: 0, maxArgs: Infinity },
];

export type ChatInput =
  | { kind: 'empty' }
  /** Text for the current room. */
  | { kind: 'text'; text: string }
  | { kind: 'command'; command: ChatCommand; args: string[]; /** Everything after the command word. */ rest: string }
  | { kind: 'error'; message: string };

export function findChatCommand(word: string): ChatCommand | undefined {
  const w = word.toLowerCase().replace(/^\//, '');
  return CHAT_COMMANDS.find((c) => c.name === w || c.aliases?.includes(w));
}

/** What a typed line means. `//text` sends `/text` as text. */
export function parseChatInput(line: string): ChatInput {
  const trimmed = line.replace(/[\r\n]+$/, '');
  if (trimmed.trim() === '') return { kind: 'empty' };
  if (trimmed.startsWith('//')) return { kind: 'text', text: trimmed.slice(1) };
  if (!trimmed.startsWith('/')) return { kind: 'text', text: trimmed };
  const m = /^\/(\S+)\s*([\s\S]*)$/.exec(trimmed.trimEnd());
  if (!m) return { kind: 'error', message: 'a command name must follow "/" (//text sends text that starts with "/")' };
  const command = findChatCommand(m[1]!);
  if (!command) return { kind: 'error', message: `unknown command /${m[1]}; /help lists them` };
  const rest = m[2]!;
  const args = rest === '' ? [] : rest.split(/\s+/);
  if (args.length < command.minArgs || args.length > command.maxArgs) {
    return { kind: 'error', message: `usage: ${usageLine(command)}` };
  }
  return { kind: 'command', command, args, rest };
}

export function usageLine(c: ChatCommand): string {
  return `/${c.name}${c.usage ? ' ' + c.usage : ''}`;
}

/** /help: every command, or one. */
export function chatHelp(name?: string): string[] {
  if (name !== undefined) {
    const c = findChatCommand(name);
    if (!c) return [`no command /${name.replace(/^\//, '')}; /help lists them`];
    return [`usage: ${usageLine(c)}`, `  ${c.summary}${c.aliases ? ` (also /${c.aliases.join(', /')})` : ''}`];
  }
  const width = Math.max(...CHAT_COMMANDS.map((c) => usageLine(c).length));
  return [
    'Type text to send it to the current room, encrypted. Commands:',
    ...CHAT_COMMANDS.map((c) => `  ${usageLine(c).padEnd(width)}  ${c.summary}`),
    '  //text  sends text that starts with "/"',
  ];
}
