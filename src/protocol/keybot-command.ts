/**
 * How a line to keybot reads as a command, for keybot (src/bot/commands.ts) and for the
 * companions that must recognise the user's own `invite` (src/client/core/operations.ts): one
 * reading on both ends of the wire. IRC formatting codes (bold, colour...) and other control
 * characters are dropped first, so a pasted coloured name still parses.
 */
export type ParsedCommand = { kind: 'command'; name: string; args: string[] } | { kind: 'empty' };

/** Split a message into a lowercased command name and its arguments. */
export function parseKeybotCommand(text: string): ParsedCommand {
  const clean = text
    .replace(/\x03(?:\d{1,2}(?:,\d{1,2})?)?/g, '')
    .replace(/[\x00-\x08\x0a-\x1f\x7f]/g, '')
    .trim();
  if (clean === '') return { kind: 'empty' };
  const [name, ...args] = clean.split(/\s+/);
  return { kind: 'command', name: name!.toLowerCase(), args };
}
