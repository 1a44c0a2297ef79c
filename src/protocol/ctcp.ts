/**
 * CTCP ACTION (`/me`), the one CTCP message sealchat reads and writes, for every companion and
 * the terminal client.
 *
 * Framing (CTCP spec, modern.ircdocs.horse/ctcp "Message syntax"): `\x01ACTION <text>\x01`. The
 * spec says the final `\x01` MUST be sent but parsers SHOULD accept a message that lacks it, since
 * some clients (and servers that cut long lines) drop it. Before this file the companions had four
 * regexes: two required the final `\x01`, two accepted it missing. The lenient rule is the
 * spec's, and it is what src/crypto/sanitize.ts keeps as a `/me` too; so one rule for all.
 */

/** The text of a CTCP ACTION (`/me`), or undefined if `text` is not one. */
export function parseAction(text: string): string | undefined {
  const m = /^\x01ACTION ([\s\S]*?)\x01?$/.exec(text);
  return m ? m[1]! : undefined;
}

/** Frame `text` as a CTCP ACTION, with the final `\x01` the spec says to send. */
export function formatAction(text: string): string {
  return `\x01ACTION ${text}\x01`;
}
