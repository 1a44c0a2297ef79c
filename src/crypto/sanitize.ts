/**
 * Decrypted text is attacker-controlled (any room member chooses it) and goes straight into an IRC
 * client's PRIVMSG handling, so it is cleaned before it leaves src/crypto.
 */

// Kept C0 codes: the mIRC-style formatting every IRC client renders (modern.ircdocs.horse,
// "Formatting"): \x02 bold, \x03 colour, \x0f reset, \x16 reverse, \x1d italics, \x1e strikethrough,
// \x1f underline. \x01 is kept only as the framing of one leading CTCP ACTION (`/me`), see below.
const STRIP_RE = /[\x00-\x01\x04-\x08\x0a-\x0e\x10-\x15\x17-\x1c\x7f-\x9f]/g;
const ACTION_RE = /^\x01ACTION ([^\x01]*)\x01?$/;

/**
 * Clean decrypted text before it reaches a client. Removed: CR, LF and NUL (they would end or
 * truncate the line the companion writes); every other C0 control except the IRC formatting codes
 * \x02 \x03 \x0f \x16 \x1d \x1e \x1f; DEL; the C1 controls U+0080-U+009F (NEL among them); and
 * \x01 (CTCP framing), so a member cannot make others' clients answer CTCP or open DCC. Kept as
 * is: a whole-message `\x01ACTION text\x01` (`/me`). A tab becomes a space rather than vanishing.
 */
export function sanitizeText(text: string): string {
  if (typeof text !== 'string') throw new TypeError('sanitizeText: expected a string');
  const action = ACTION_RE.exec(text);
  if (action) return `\x01ACTION ${clean(action[1]!)}\x01`;
  return clean(text);
}

function clean(text: string): string {
  return text.replace(/\t/g, ' ').replace(STRIP_RE, '');
}
